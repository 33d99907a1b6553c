-- patchgrid:min-server 23.8
-- Which current findings an approved, unexpired exception covers. Old
-- servers keep the exceptions themselves (0011) without this view.
--
-- finding_exceptions: one row per (finding of finding_risk, exception that
-- covers it). A finding is covered when the exception's advisory is the
-- finding's advisory_id or one of its CVEs, its effective status is
-- approved, and its scope matches: the host (id or hostname), the installed
-- package name, or every label of its group selector (a label the selector
-- leaves out matches anything; hostname is a LIKE pattern made from the
-- selector's glob). Readers that show findings LEFT JOIN this view on
-- (host_id, source, advisory_id, package) and mark the finding accepted:
-- exceptions never hide a finding.
CREATE VIEW IF NOT EXISTS finding_exceptions AS
SELECT f.host_id AS host_id, f.source AS source, f.advisory_id AS advisory_id, f.package AS package,
    e.exception_id AS exception_id, e.expires_at AS exception_expires_at, e.owner AS exception_owner
FROM (
    SELECT host_id, hostname, ring, owner, os, criticality, internet_facing, source, advisory_id, package,
        arrayJoin(arrayDistinct(arrayConcat([advisory_id], cves))) AS vuln_id
    FROM finding_risk
) AS f
INNER JOIN (
    SELECT exception_id, advisory, scope, host, package, sel_ring, sel_owner, sel_os, sel_criticality,
        sel_internet_facing, sel_hostname_like, owner, expires_at
    FROM exceptions_current
    WHERE effective_status = 'approved'
) AS e ON e.advisory = f.vuln_id
WHERE (e.scope = 'host' AND (e.host = f.host_id OR e.host = f.hostname))
   OR (e.scope = 'package' AND e.package = f.package)
   OR (e.scope = 'group'
       AND (e.sel_ring = '' OR e.sel_ring = f.ring)
       AND (e.sel_owner = '' OR e.sel_owner = f.owner)
       AND (e.sel_os = '' OR e.sel_os = f.os)
       AND (e.sel_criticality < 0 OR e.sel_criticality = f.criticality)
       AND (e.sel_internet_facing < 0 OR e.sel_internet_facing = f.internet_facing)
       AND (e.sel_hostname_like = '' OR f.hostname LIKE e.sel_hostname_like));
