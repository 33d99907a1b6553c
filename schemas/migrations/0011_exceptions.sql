-- Exceptions (risk acceptance): who accepted which exposure, why, with what
-- compensating control, until when. 18.16-compatible DDL (see 0001); the
-- views that apply exceptions to findings and KPIs are in 0012.
-- Written only by analytics/exception, which appends a new version of the
-- row for every state change (and an audit_log entry for it):
--   exception_id   EX-<12 hex digits>
--   version        1 when requested, +1 per change (the highest is current)
--   advisory       an advisory id or a CVE id; matches a finding whose
--                  advisory_id is that id or whose CVEs include it
--   scope          'host' (host id or hostname in host), 'package' (the
--                  installed package name in package, every host), or
--                  'group' (the label selector in selector, e.g.
--                  "ring=prod,owner=web,hostname=web-*", decomposed into the
--                  sel_* columns: '' or -1 for a label not constrained)
--   status         requested, approved, rejected, revoked (the state last
--                  set; an approved exception past expires_at is expired,
--                  see exceptions_current)
--   requested_at, decided_at (approval or rejection), expires_at
CREATE TABLE IF NOT EXISTS exceptions (
    exception_id         String,
    version              UInt32,
    advisory             String,
    scope                String,
    host                 String,
    package              String,
    selector             String,
    sel_ring             String,
    sel_owner            String,
    sel_os               String,
    sel_criticality      Int16,
    sel_internet_facing  Int8,
    sel_hostname_like    String,
    owner                String,
    reason               String,
    compensating_control String,
    requester            String,
    approver             String,
    status               String,
    status_reason        String,
    requested_at         DateTime,
    decided_at           DateTime,
    expires_at           DateTime,
    updated_at           DateTime,
    updated_by           String
) ENGINE = ReplacingMergeTree(version)
ORDER BY exception_id;

-- The current version of every exception, with its effective status:
-- 'expired' once an approved exception's expires_at has passed (now() of
-- the reading query), else the status last set.
CREATE VIEW IF NOT EXISTS exceptions_current AS
SELECT *,
    if(status = 'approved' AND expires_at <= now(), 'expired', status) AS effective_status
FROM exceptions FINAL;
