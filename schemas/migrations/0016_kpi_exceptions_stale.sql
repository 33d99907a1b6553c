-- patchgrid:min-server 23.8
-- The KPI and risk views honour exceptions (0011, 0012), stale hosts and
-- end-of-life releases (0007). Old servers have no KPI views (0004..0006
-- are skipped there) and skip this file too. Definitions for readers:
-- schemas/VIEWS.md ("Exceptions, stale hosts and end of life in the KPIs").
--
-- Exceptions: every KPI view doubles its rows with a last column
-- exceptions = 'honoured' | 'ignored'. Under 'honoured' an open exposure
-- that approved, unexpired exceptions cover entirely (every finding of it)
-- is counted in the KPI's accepted column instead of open/overdue; under
-- 'ignored' accepted is 0 and the figures are those of the views before
-- this migration. Exceptions never change first_seen, clock_start or
-- sla_deadline: when one expires (or is revoked) the next refresh shows
-- the exposure with its original clock, overdue if it is past due.
-- finding_risk and host_risk keep one row per finding or host and mark
-- instead (exception_id, accepted; accepted_exposures, host_risk_unaccepted).
-- Like every KPI, acceptance is as of the last refresh.
--
-- Stale hosts: a host whose latest scan is older than the stale limit
-- (kpi_settings 'stale_after_hours', default 72) at the refresh. Its open
-- exposures are never met, open in SLA, overdue or accepted in the KPIs:
-- they are 'stale' (kpi_sla_compliance.stale, in compliance_pct's
-- denominator), and the host is never covered (kpi_patch_coverage.stale_hosts).
--
-- End of life: a host whose latest scan is of a release past its end of
-- life (eol_findings) has one exposure of its own, source 'endoflife.date',
-- advisory_id 'EOL-' || the release's ecosystem, severity 'high', open while
-- the host is on that release, clock from the later of the end-of-life
-- date and the host's first scan on it. It enters every KPI, finding_risk
-- (status 'end_of_life', package the release), host_risk and exports.

-- Settings of the KPI views, as data (ReplacingMergeTree: the row with the
-- latest updated_at wins). stale_after_hours: a host whose latest scan is
-- older than this at a refresh is stale. The default row carries a fixed
-- updated_at so re-running the migration changes nothing and any later
-- insert wins (analytics/kpi SetStaleAfter writes one).
CREATE TABLE IF NOT EXISTS kpi_settings (
    name       String,
    value      Float64,
    updated_at DateTime
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY name;

INSERT INTO kpi_settings (name, value, updated_at) VALUES ('stale_after_hours', 72, '2026-01-01 00:00:00');

-- The stale limit as a point in time: scans before stale_before are stale.
CREATE VIEW IF NOT EXISTS kpi_stale_limit AS
SELECT now() - toIntervalSecond(toInt64(3600 * hours)) AS stale_before, hours AS stale_after_hours
FROM (SELECT if(count() = 0, 72, argMax(value, updated_at)) AS hours FROM kpi_settings WHERE name = 'stale_after_hours');

-- One open exposure per host on an end-of-life release (eol_findings):
-- exposure_history's columns, then eol_at (the end-of-life date, 00:00
-- UTC), eol_source (the cited page), os_ecosystem and basis.
CREATE VIEW IF NOT EXISTS eol_exposures AS
SELECT e.host_id AS host_id, 'endoflife.date' AS source, concat('EOL-', e.os_ecosystem) AS advisory_id,
    greatest(eol_at, s.since) AS first_seen, e.last_scanned_at AS last_seen,
    toDateTime(0) AS resolved_at, toUInt32(0) AS reopened, toUInt8(1) AS exposed_now,
    toDateTime(toUInt32(toDateTime(e.eol_date, 'UTC'))) AS eol_at, e.source AS eol_source, e.os_ecosystem AS os_ecosystem, e.basis AS basis
FROM eol_findings AS e
INNER JOIN (SELECT host_id, os_ecosystem, min(scanned_at) AS since FROM scans GROUP BY host_id, os_ecosystem) AS s
    ON s.host_id = e.host_id AND s.os_ecosystem = e.os_ecosystem;

-- The finding of an end-of-life exposure, in match_inventory_findings'
-- shape, on the inventory of the host's latest segment: ecosystem and name
-- are the release's ecosystem, status 'end_of_life', no version or fix.
CREATE VIEW IF NOT EXISTS eol_inventory_findings AS
SELECT DISTINCT l.inventory_hash AS inventory_hash, x.source AS source, x.advisory_id AS advisory_id,
    x.os_ecosystem AS ecosystem, x.os_ecosystem AS name, '' AS version, '' AS arch,
    x.os_ecosystem AS match_name, '' AS match_version, 'end_of_life' AS status, '' AS fixed
FROM eol_exposures AS x
INNER JOIN (SELECT host_id, inventory_hash FROM host_segments FINAL WHERE is_last = 1) AS l ON l.host_id = x.host_id;

-- Every approved, unexpired exception (exceptions_current) with each
-- current advisory record it names: the record's id or one of its CVEs
-- (kpi_advisories.cves, resolved across aliases), or an end-of-life
-- exposure's advisory_id.
CREATE VIEW IF NOT EXISTS exception_targets AS
SELECT e.exception_id AS exception_id, e.scope AS scope, e.host AS ex_host, e.package AS ex_package,
    e.sel_ring AS sel_ring, e.sel_owner AS sel_owner, e.sel_os AS sel_os, e.sel_criticality AS sel_criticality,
    e.sel_internet_facing AS sel_internet_facing, e.sel_hostname_like AS sel_hostname_like,
    e.owner AS owner, e.expires_at AS expires_at, v.source AS source, v.advisory_id AS advisory_id
FROM (SELECT * FROM exceptions_current WHERE effective_status = 'approved') AS e
INNER JOIN (
    SELECT source, advisory_id, arrayJoin(arrayDistinct(arrayConcat([advisory_id], cves))) AS vuln_id FROM kpi_advisories
    UNION ALL
    SELECT DISTINCT source, advisory_id, advisory_id AS vuln_id FROM eol_exposures
) AS v ON v.vuln_id = e.advisory;

-- The findings (package level) of the hosts' latest segments of every
-- advisory record an exception names, with the host's labels; installed
-- kernel images that are not running are left out, as in finding_risk.
CREATE VIEW IF NOT EXISTS exception_target_findings AS
SELECT l.host_id AS host_id, h.hostname AS hostname, h.ring AS ring, h.owner AS owner, h.os AS os,
    h.criticality AS criticality, h.internet_facing AS internet_facing,
    m.source AS source, m.advisory_id AS advisory_id, m.name AS package
FROM (
    SELECT inventory_hash, source, advisory_id, name, version, arch
    FROM match_inventory_findings FINAL
    WHERE (source, advisory_id) IN (SELECT source, advisory_id FROM exception_targets)
      AND (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0)
    UNION ALL
    SELECT inventory_hash, source, advisory_id, name, version, arch FROM eol_inventory_findings
    WHERE (source, advisory_id) IN (SELECT source, advisory_id FROM exception_targets)
) AS m
INNER JOIN (SELECT host_id, inventory_hash, kernel_running FROM host_segments FINAL WHERE is_last = 1) AS l
    ON l.inventory_hash = m.inventory_hash
INNER JOIN kpi_hosts AS h ON h.host_id = l.host_id
WHERE patchgrid_kernel_state(m.name, m.version, m.arch, l.kernel_running) != 'not_running'
GROUP BY host_id, hostname, ring, owner, os, criticality, internet_facing, source, advisory_id, package;

-- One row per (finding, exception that covers it): the one place where an
-- exception's scope is matched. Scope: the host (id or hostname), the
-- installed package name, or every label of the group selector (a label the
-- selector leaves out matches anything; hostname is a LIKE pattern).
CREATE VIEW IF NOT EXISTS exception_coverage AS
SELECT f.host_id AS host_id, f.source AS source, f.advisory_id AS advisory_id, f.package AS package,
    e.exception_id AS exception_id, e.expires_at AS exception_expires_at, e.owner AS exception_owner
FROM exception_target_findings AS f
INNER JOIN exception_targets AS e ON e.source = f.source AND e.advisory_id = f.advisory_id
WHERE (e.scope = 'host' AND (e.ex_host = f.host_id OR e.ex_host = f.hostname))
   OR (e.scope = 'package' AND e.ex_package = f.package)
   OR (e.scope = 'group'
       AND (e.sel_ring = '' OR e.sel_ring = f.ring)
       AND (e.sel_owner = '' OR e.sel_owner = f.owner)
       AND (e.sel_os = '' OR e.sel_os = f.os)
       AND (e.sel_criticality < 0 OR e.sel_criticality = f.criticality)
       AND (e.sel_internet_facing < 0 OR e.sel_internet_facing = f.internet_facing)
       AND (e.sel_hostname_like = '' OR f.hostname LIKE e.sel_hostname_like));

-- finding_exceptions (0012) with its columns and meaning, from
-- exception_coverage: scope is matched in one place.
DROP VIEW IF EXISTS finding_exceptions;
CREATE VIEW IF NOT EXISTS finding_exceptions AS
SELECT host_id, source, advisory_id, package, exception_id, exception_expires_at, exception_owner
FROM exception_coverage;

-- Per finding (host, advisory, package): the exception that covers it
-- longest (latest expiry; ties by id).
CREATE VIEW IF NOT EXISTS finding_exception_best AS
SELECT host_id, source, advisory_id, package, ex.1 AS exception_id, ex.2 AS exception_expires_at
FROM (
    SELECT host_id, source, advisory_id, package,
        argMax((exception_id, exception_expires_at), (exception_expires_at, exception_id)) AS ex
    FROM exception_coverage
    GROUP BY host_id, source, advisory_id, package
);

-- Open exposures (host, advisory) whose every finding an exception covers:
-- exception_id and exception_expires_at are those of the finding whose
-- cover ends first (the exposure is accepted until then). An exposure with
-- one uncovered finding (a package exception naming another package) is
-- not accepted.
CREATE VIEW IF NOT EXISTS exposure_exceptions AS
SELECT c.host_id AS host_id, c.source AS source, c.advisory_id AS advisory_id,
    argMin(c.exception_id, (c.exception_expires_at, c.exception_id)) AS exception_id,
    min(c.exception_expires_at) AS exception_expires_at
FROM finding_exception_best AS c
INNER JOIN (
    SELECT host_id, source, advisory_id, count() AS packages
    FROM exception_target_findings
    GROUP BY host_id, source, advisory_id
) AS t ON t.host_id = c.host_id AND t.source = c.source AND t.advisory_id = c.advisory_id
GROUP BY c.host_id, c.source, c.advisory_id
HAVING count() = any(t.packages);

-- kpi_exposures_live: 0006's columns, same order and meaning, now with
-- end-of-life exposures (eol_exposures: severity 'high', severity_source
-- 'endoflife.date:<cited page>', published, fix_published, known_at and
-- disclosed_at the end-of-life date, epss_band 'none'), then
--   exception_id, exception_expires_at  exposure_exceptions ('' / epoch: none)
--   accepted  1 when open and covered (exposure_exceptions)
--   stale     1 when the host's latest scan is older than the stale limit
DROP VIEW IF EXISTS kpi_exposures_live;
CREATE VIEW IF NOT EXISTS kpi_exposures_live AS
SELECT x.host_id AS host_id, h.hostname AS hostname, h.owner AS owner, h.ring AS ring,
    h.criticality AS criticality, h.internet_facing AS internet_facing, h.os AS os, h.dims AS dims,
    x.source AS source, x.advisory_id AS advisory_id,
    if(x.eol = 1, 'high', a.severity) AS severity, a.cvss_version AS cvss_version, a.cvss_score AS cvss_score,
    if(x.eol = 1, x.eol_at, a.published) AS published, if(x.eol = 1, x.eol_at, a.fix_published) AS fix_published, a.cves AS cves,
    a.kev AS kev, a.kev_due_date AS kev_due_date,
    a.has_epss AS has_epss, a.epss AS epss, a.epss_percentile AS epss_percentile, if(x.eol = 1, 'none', a.epss_band) AS epss_band,
    x.first_seen AS first_seen, x.last_seen AS last_seen, x.resolved_at AS resolved_at,
    x.reopened AS reopened, x.exposed_now AS is_open,
    if(is_open = 1, now(), x.resolved_at) AS window_end,
    (toInt64(window_end) - toInt64(x.first_seen)) / 86400 AS window_days,
    if(is_open = 1, nan, (toInt64(x.resolved_at) - toInt64(x.first_seen)) / 86400) AS remediation_days,
    if(is_open = 1, nan, greatest(toInt64(x.resolved_at) - toInt64(published), 0) / 86400) AS ttp_publication_days,
    if(is_open = 1 OR fix_published = toDateTime(0), nan,
        greatest(toInt64(x.resolved_at) - toInt64(fix_published), 0) / 86400) AS ttp_fix_days,
    if(x.eol = 1, concat('endoflife.date:', x.eol_source), a.severity_source) AS severity_source, a.ssvc_exploitation AS ssvc_exploitation,
    if(x.eol = 1, x.eol_at, a.known_at) AS known_at, if(x.eol = 1, x.eol_at, a.disclosed_at) AS disclosed_at,
    toUInt8(if(is_open = 1, nf.no_fix = 0, 1)) AS fix_available,
    greatest(x.first_seen, known_at, fix_published) AS clock_start,
    if(is_open = 1, nan, greatest(toInt64(x.resolved_at) - toInt64(disclosed_at), 0) / 86400) AS ttp_disclosure_days,
    ee.exception_id AS exception_id, ee.exception_expires_at AS exception_expires_at,
    toUInt8(is_open = 1 AND ee.exception_id != '') AS accepted,
    toUInt8(h.last_scan_at < (SELECT stale_before FROM kpi_stale_limit)) AS stale
FROM (
    SELECT host_id, source, advisory_id, first_seen, last_seen, resolved_at, reopened, exposed_now,
        toUInt8(0) AS eol, toDateTime(0) AS eol_at, '' AS eol_source
    FROM exposure_history
    UNION ALL
    SELECT host_id, source, advisory_id, first_seen, last_seen, resolved_at, reopened, exposed_now,
        toUInt8(1) AS eol, eol_at, eol_source
    FROM eol_exposures
) AS x
INNER JOIN kpi_hosts AS h ON h.host_id = x.host_id
LEFT JOIN kpi_advisories AS a ON a.source = x.source AND a.advisory_id = x.advisory_id
LEFT JOIN (SELECT host_id, inventory_hash FROM host_segments FINAL WHERE is_last = 1) AS l ON l.host_id = x.host_id
LEFT JOIN (
    -- (inventory, advisory) pairs none of whose findings has a fix (0006).
    SELECT inventory_hash, source, advisory_id, toUInt8(1) AS no_fix
    FROM match_inventory_findings FINAL
    WHERE (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0)
    GROUP BY inventory_hash, source, advisory_id
    HAVING max(status = 'affected') = 0
) AS nf ON nf.inventory_hash = l.inventory_hash AND nf.source = x.source AND nf.advisory_id = x.advisory_id
LEFT JOIN exposure_exceptions AS ee ON ee.host_id = x.host_id AND ee.source = x.source AND ee.advisory_id = x.advisory_id
WHERE x.eol = 1 OR a.advisory_id != ''
SETTINGS join_use_nulls = 0;
ALTER TABLE exposure_facts ADD COLUMN IF NOT EXISTS exception_id String;
ALTER TABLE exposure_facts ADD COLUMN IF NOT EXISTS exception_expires_at DateTime;
ALTER TABLE exposure_facts ADD COLUMN IF NOT EXISTS accepted UInt8;
ALTER TABLE exposure_facts ADD COLUMN IF NOT EXISTS stale UInt8;
DROP VIEW IF EXISTS kpi_exposures;
CREATE VIEW IF NOT EXISTS kpi_exposures AS
SELECT host_id, hostname, owner, ring, criticality, internet_facing, os,
    patchgrid_kpi_dims(ring, owner, os, criticality) AS dims,
    * EXCEPT (host_id, hostname, owner, ring, criticality, internet_facing, os)
FROM exposure_facts;

-- An exposure's state in a KPI read with exceptions honoured (honoured = 1)
-- or ignored: open on a stale host 'stale'; open, accepted and honoured
-- 'accepted'; else its sla_state (a KPI without a policy passes '').
CREATE OR REPLACE FUNCTION patchgrid_kpi_state AS (sla_state, is_open, stale, accepted, honoured) ->
    multiIf(is_open = 1 AND stale = 1, 'stale', is_open = 1 AND accepted = 1 AND honoured = 1, 'accepted', sla_state);

-- kpi_exposure_sla (0006) reads kpi_exposures, so its e.* now ends with
-- exception_id, exception_expires_at, accepted and stale; its own columns
-- and sla_state (without exceptions or staleness) are unchanged.
DROP VIEW IF EXISTS kpi_exposure_sla;
CREATE VIEW IF NOT EXISTS kpi_exposure_sla AS
SELECT e.*, p.policy AS policy, p.sla_days AS sla_days,
    toUInt8(p.kev_due_date = 1 AND e.kev = 1 AND e.kev_due_date > toDate(0)) AS kev_deadline,
    if(kev_deadline = 1,
        greatest(toDateTime(e.kev_due_date, 'UTC') + 86399, e.clock_start),
        e.clock_start + toIntervalDay(p.sla_days)) AS sla_deadline,
    multiIf(e.is_open = 1 AND e.fix_available = 0, 'no_fix',
            e.is_open = 0 AND e.resolved_at <= sla_deadline, 'met',
            e.is_open = 0, 'missed',
            now() > sla_deadline, 'overdue',
            'open') AS sla_state,
    if(sla_state = 'no_fix', 0, greatest(toInt64(e.window_end) - toInt64(sla_deadline), 0) / 86400) AS days_past_sla
FROM kpi_exposures AS e
INNER JOIN (SELECT * FROM sla_policy FINAL) AS p ON p.severity = e.severity;

-- exposure_risk (0006), over the redefined kpi_exposure_sla.
DROP VIEW IF EXISTS exposure_risk;
CREATE VIEW IF NOT EXISTS exposure_risk AS
SELECT *,
    round(3.5 * if(cvss_score > 0, cvss_score,
        multiIf(severity = 'critical', 9.5, severity = 'high', 7.5, severity IN ('medium', 'unknown'), 5.0, severity = 'low', 2.5, 0.0)), 2) AS risk_cvss,
    round(10 * epss + 5 * epss_percentile, 2) AS risk_epss,
    if(kev = 1, 15.0 + if(kev_due_date > toDate(0) AND window_end > toDateTime(kev_due_date, 'UTC') + 86399, 5.0, 0.0),
        multiIf(ssvc_exploitation = 'active', 15.0, ssvc_exploitation = 'poc', 7.5, 0.0)) AS risk_kev,
    2.5 * if(criticality = 0, 2, least(criticality, 4)) AS risk_asset,
    if(internet_facing = 1, 10.0, 0.0) AS risk_internet,
    round(10 * least(days_past_sla, 30) / 30, 2) AS risk_sla,
    risk_cvss + risk_epss + risk_kev + risk_asset + risk_internet + risk_sla AS risk_score,
    multiIf(risk_score >= 70, 'critical', risk_score >= 50, 'high', risk_score >= 25, 'medium', 'low') AS risk_level
FROM kpi_exposure_sla
WHERE policy = 'default';

-- finding_risk_live: 0006's columns, then
--   exception_id, exception_expires_at  the exception that covers this
--                 finding longest ('' / epoch: none)
--   accepted      1 when an exception covers the finding
--   stale         1 when the host is stale
-- End-of-life exposures have one finding each (eol_inventory_findings).
-- sla_state and risk_score are those without exceptions: readers honour
-- exceptions through accepted (analytics/risk ranks accepted findings after
-- every unaccepted one).
DROP VIEW IF EXISTS finding_risk_live;
CREATE VIEW IF NOT EXISTS finding_risk_live AS
SELECT r.host_id AS host_id, r.hostname AS hostname, r.owner AS owner, r.ring AS ring,
    r.criticality AS criticality, r.internet_facing AS internet_facing, r.os AS os,
    r.source AS source, r.advisory_id AS advisory_id, r.cves AS cves, r.severity AS severity,
    r.cvss_score AS cvss_score, r.has_epss AS has_epss, r.epss AS epss, r.epss_percentile AS epss_percentile,
    r.kev AS kev, r.kev_due_date AS kev_due_date,
    f.ecosystem AS ecosystem, f.name AS package, f.version AS installed_version, f.arch AS arch,
    f.match_name AS match_name, f.match_version AS match_version,
    f.status AS status, f.fixed AS fixed_version,
    patchgrid_kernel_state(f.name, f.version, f.arch, l.kernel_running) AS kernel_state,
    r.published AS published, r.fix_published AS fix_published,
    r.first_seen AS first_seen, r.sla_deadline AS sla_deadline, r.sla_state AS sla_state, r.days_past_sla AS days_past_sla,
    r.risk_cvss AS risk_cvss, r.risk_epss AS risk_epss, r.risk_kev AS risk_kev, r.risk_asset AS risk_asset,
    r.risk_internet AS risk_internet, r.risk_sla AS risk_sla, r.risk_score AS risk_score, r.risk_level AS risk_level,
    r.severity_source AS severity_source, r.ssvc_exploitation AS ssvc_exploitation,
    r.known_at AS known_at, r.clock_start AS clock_start,
    fe.exception_id AS exception_id, fe.exception_expires_at AS exception_expires_at,
    toUInt8(fe.exception_id != '') AS accepted, r.stale AS stale
FROM (SELECT * FROM exposure_risk WHERE is_open = 1) AS r
INNER JOIN (SELECT host_id, inventory_hash, kernel_running FROM host_segments FINAL WHERE is_last = 1) AS l
    ON l.host_id = r.host_id
INNER JOIN (
    SELECT inventory_hash, source, advisory_id, ecosystem, name, version, arch, match_name, match_version, toString(status) AS status, fixed
    FROM match_inventory_findings FINAL
    WHERE (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0)
    UNION ALL
    SELECT inventory_hash, source, advisory_id, ecosystem, name, version, arch, match_name, match_version, status, fixed
    FROM eol_inventory_findings
) AS f ON f.inventory_hash = l.inventory_hash AND f.source = r.source AND f.advisory_id = r.advisory_id
LEFT JOIN (SELECT host_id, source, advisory_id, package, exception_id, exception_expires_at FROM finding_exception_best) AS fe
    ON fe.host_id = r.host_id AND fe.source = r.source AND fe.advisory_id = r.advisory_id AND fe.package = f.name
WHERE kernel_state != 'not_running'
SETTINGS join_use_nulls = 0;
ALTER TABLE finding_risk_snapshot ADD COLUMN IF NOT EXISTS exception_id String;
ALTER TABLE finding_risk_snapshot ADD COLUMN IF NOT EXISTS exception_expires_at DateTime;
ALTER TABLE finding_risk_snapshot ADD COLUMN IF NOT EXISTS accepted UInt8;
ALTER TABLE finding_risk_snapshot ADD COLUMN IF NOT EXISTS stale UInt8;
DROP VIEW IF EXISTS finding_risk;
CREATE VIEW IF NOT EXISTS finding_risk AS SELECT * FROM finding_risk_snapshot;

-- host_risk_live: 0005's columns (over all open exposures, accepted ones
-- included: the reading without exceptions), then
--   stale                 1 when the host is stale
--   accepted_exposures    open exposures exceptions cover entirely
--   host_risk_unaccepted  the highest risk_score of its open exposures no
--                         exception covers (the reading with exceptions)
DROP VIEW IF EXISTS host_risk_live;
CREATE VIEW IF NOT EXISTS host_risk_live AS
SELECT h.host_id AS host_id, h.hostname AS hostname, h.owner AS owner, h.ring AS ring,
    h.criticality AS criticality, h.internet_facing AS internet_facing, h.os AS os, h.last_scan_at AS last_scan_at,
    ifNull(r.open_exposures, 0) AS open_exposures, ifNull(r.overdue, 0) AS overdue, ifNull(r.kev_exposures, 0) AS kev_exposures,
    ifNull(r.host_risk, 0.0) AS host_risk, ifNull(r.risk_total, 0.0) AS risk_total,
    multiIf(host_risk >= 70, 'critical', host_risk >= 50, 'high', host_risk >= 25, 'medium', 'low') AS host_risk_level,
    ifNull(r.top.1, '') AS top_source, ifNull(r.top.2, '') AS top_advisory_id,
    ifNull(r.top.3, 0.0) AS top_risk_cvss, ifNull(r.top.4, 0.0) AS top_risk_epss, ifNull(r.top.5, 0.0) AS top_risk_kev,
    ifNull(r.top.6, 0.0) AS top_risk_asset, ifNull(r.top.7, 0.0) AS top_risk_internet, ifNull(r.top.8, 0.0) AS top_risk_sla,
    toUInt8(h.last_scan_at < (SELECT stale_before FROM kpi_stale_limit)) AS stale,
    ifNull(r.accepted_exposures, 0) AS accepted_exposures, ifNull(r.host_risk_unaccepted, 0.0) AS host_risk_unaccepted
FROM kpi_hosts AS h
LEFT JOIN (
    SELECT host_id, count() AS open_exposures, countIf(sla_state = 'overdue') AS overdue, countIf(kev = 1) AS kev_exposures,
        max(risk_score) AS host_risk, sum(risk_score) AS risk_total,
        argMax((source, advisory_id, risk_cvss, risk_epss, risk_kev, risk_asset, risk_internet, risk_sla), (risk_score, source, advisory_id)) AS top,
        countIf(accepted = 1) AS accepted_exposures, maxIf(risk_score, accepted = 0) AS host_risk_unaccepted
    FROM exposure_risk
    WHERE is_open = 1
    GROUP BY host_id
) AS r ON r.host_id = h.host_id
SETTINGS join_use_nulls = 0;
ALTER TABLE host_risk_snapshot ADD COLUMN IF NOT EXISTS stale UInt8;
ALTER TABLE host_risk_snapshot ADD COLUMN IF NOT EXISTS accepted_exposures UInt64;
ALTER TABLE host_risk_snapshot ADD COLUMN IF NOT EXISTS host_risk_unaccepted Float64;
DROP VIEW IF EXISTS host_risk;
CREATE VIEW IF NOT EXISTS host_risk AS SELECT * FROM host_risk_snapshot;

-- kpi_mttr_live: 0006's columns, then accepted (open exposures accepted
-- under 'honoured'; 0 under 'ignored') and exceptions. MTTR is over
-- resolved exposures, which exceptions do not cover: both readings agree.
DROP VIEW IF EXISTS kpi_mttr_live;
CREATE VIEW IF NOT EXISTS kpi_mttr_live AS
SELECT dimension, dim_value, severity, resolved, mttr_days, median_days, mttr_disclosure_days, median_disclosure_days,
    if(exceptions = 'honoured', accepted_open, 0) AS accepted, exceptions
FROM (
    SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity,
        toUInt64(sumIf(n, is_open = 0)) AS resolved,
        sumIf(rem * n, is_open = 0) / resolved AS mttr_days,
        arraySort(groupArrayIf((rem, n), is_open = 0)) AS rem_hist,
        if(resolved = 0, nan, rem_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(x -> x.2, rem_hist)))].1) AS median_days,
        sumIf(dis * n, is_open = 0) / resolved AS mttr_disclosure_days,
        arraySort(groupArrayIf((dis, n), is_open = 0)) AS dis_hist,
        if(resolved = 0, nan, dis_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(x -> x.2, dis_hist)))].1) AS median_disclosure_days,
        toUInt64(sumIf(n, acc = 1)) AS accepted_open
    FROM (
        SELECT ring, owner, os, criticality, severity, is_open, if(is_open = 1, 0, remediation_days) AS rem,
            if(is_open = 1, 0, ttp_disclosure_days) AS dis,
            toUInt8(patchgrid_kpi_state('', is_open, stale, accepted, 1) = 'accepted') AS acc, count() AS n
        FROM kpi_exposures
        GROUP BY ring, owner, os, criticality, severity, is_open, rem, dis, acc
    )
    ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
    ARRAY JOIN [severity, 'all'] AS sev
    GROUP BY dimension, dim_value, severity
)
ARRAY JOIN ['honoured', 'ignored'] AS exceptions;
ALTER TABLE kpi_mttr_snapshot ADD COLUMN IF NOT EXISTS accepted UInt64;
ALTER TABLE kpi_mttr_snapshot ADD COLUMN IF NOT EXISTS exceptions String;
DROP VIEW IF EXISTS kpi_mttr;
CREATE VIEW IF NOT EXISTS kpi_mttr AS SELECT * FROM kpi_mttr_snapshot;

-- kpi_time_to_patch_live: 0006's columns, then accepted and exceptions, as
-- kpi_mttr (time to patch is over resolved exposures: both readings agree).
DROP VIEW IF EXISTS kpi_time_to_patch_live;
CREATE VIEW IF NOT EXISTS kpi_time_to_patch_live AS
SELECT dimension, dim_value, severity, resolved, with_fix_date,
    from_publication_avg_days, from_publication_median_days, from_fix_avg_days, from_fix_median_days,
    from_disclosure_avg_days, from_disclosure_median_days, from_first_seen_avg_days, from_first_seen_median_days,
    if(exceptions = 'honoured', accepted_open, 0) AS accepted, exceptions
FROM (
    SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity,
        toUInt64(sumIf(n, is_open = 0)) AS resolved,
        toUInt64(sumIf(n, has_fix = 1)) AS with_fix_date,
        sumIf(pub * n, is_open = 0) / resolved AS from_publication_avg_days,
        arraySort(groupArrayIf((pub, n), is_open = 0)) AS pub_hist,
        if(resolved = 0, nan, pub_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(x -> x.2, pub_hist)))].1) AS from_publication_median_days,
        sumIf(fix * n, has_fix = 1) / with_fix_date AS from_fix_avg_days,
        arraySort(groupArrayIf((fix, n), has_fix = 1)) AS fix_hist,
        if(with_fix_date = 0, nan, fix_hist[arrayFirstIndex(c -> c > floor(0.5 * with_fix_date), arrayCumSum(arrayMap(x -> x.2, fix_hist)))].1) AS from_fix_median_days,
        sumIf(dis * n, is_open = 0) / resolved AS from_disclosure_avg_days,
        arraySort(groupArrayIf((dis, n), is_open = 0)) AS dis_hist,
        if(resolved = 0, nan, dis_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(x -> x.2, dis_hist)))].1) AS from_disclosure_median_days,
        sumIf(rem * n, is_open = 0) / resolved AS from_first_seen_avg_days,
        arraySort(groupArrayIf((rem, n), is_open = 0)) AS rem_hist,
        if(resolved = 0, nan, rem_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(x -> x.2, rem_hist)))].1) AS from_first_seen_median_days,
        toUInt64(sumIf(n, acc = 1)) AS accepted_open
    FROM (
        SELECT ring, owner, os, criticality, severity, is_open, if(is_open = 1, 0, ttp_publication_days) AS pub,
            toUInt8(isFinite(ttp_fix_days)) AS has_fix, if(has_fix = 1, ttp_fix_days, 0) AS fix,
            if(is_open = 1, 0, ttp_disclosure_days) AS dis, if(is_open = 1, 0, remediation_days) AS rem,
            toUInt8(patchgrid_kpi_state('', is_open, stale, accepted, 1) = 'accepted') AS acc, count() AS n
        FROM kpi_exposures
        GROUP BY ring, owner, os, criticality, severity, is_open, pub, has_fix, fix, dis, rem, acc
    )
    ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
    ARRAY JOIN [severity, 'all'] AS sev
    GROUP BY dimension, dim_value, severity
)
ARRAY JOIN ['honoured', 'ignored'] AS exceptions;
ALTER TABLE kpi_time_to_patch_snapshot ADD COLUMN IF NOT EXISTS accepted UInt64;
ALTER TABLE kpi_time_to_patch_snapshot ADD COLUMN IF NOT EXISTS exceptions String;
DROP VIEW IF EXISTS kpi_time_to_patch;
CREATE VIEW IF NOT EXISTS kpi_time_to_patch AS SELECT * FROM kpi_time_to_patch_snapshot;

-- kpi_sla_compliance_live: 0006's columns, then
--   stale        open exposures of stale hosts (never met, open_in_sla,
--                overdue, no_fix or accepted)
--   stale_hosts  distinct stale hosts among the row's exposures
--   accepted     open exposures accepted (under 'honoured'; 0 under 'ignored')
--   exceptions   'honoured' | 'ignored'
-- compliance_pct = met / (met + missed + overdue + stale): a stale host's
-- exposures never count as compliant; accepted and no_fix ones are left out.
DROP VIEW IF EXISTS kpi_sla_compliance_live;
CREATE VIEW IF NOT EXISTS kpi_sla_compliance_live AS
SELECT policy, d.1 AS dimension, d.2 AS dim_value, sev AS severity,
    toUInt64(sum(n)) AS exposures,
    toUInt64(sumIf(n, state = 'met')) AS met,
    toUInt64(sumIf(n, state = 'missed')) AS missed,
    toUInt64(sumIf(n, state = 'overdue')) AS overdue,
    toUInt64(sumIf(n, state = 'open')) AS open_in_sla,
    100 * met / (met + missed + overdue + stale) AS compliance_pct,
    toUInt64(sumIf(n, state = 'no_fix')) AS no_fix,
    toUInt64(sumIf(n, state = 'stale')) AS stale,
    toUInt64(uniqExactIfMerge(stale_host_set)) AS stale_hosts,
    toUInt64(sumIf(n, state = 'accepted')) AS accepted,
    exceptions
FROM (
    SELECT policy, ring, owner, os, criticality, severity, exceptions,
        patchgrid_kpi_state(sla_state, is_open, stale, accepted, exceptions = 'honoured') AS state,
        count() AS n, uniqExactIfState(host_id, state = 'stale') AS stale_host_set
    FROM kpi_exposure_sla
    ARRAY JOIN ['honoured', 'ignored'] AS exceptions
    GROUP BY policy, ring, owner, os, criticality, severity, exceptions, state
)
ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
ARRAY JOIN [severity, 'all'] AS sev
GROUP BY policy, dimension, dim_value, severity, exceptions;
ALTER TABLE kpi_sla_compliance_snapshot ADD COLUMN IF NOT EXISTS stale UInt64;
ALTER TABLE kpi_sla_compliance_snapshot ADD COLUMN IF NOT EXISTS stale_hosts UInt64;
ALTER TABLE kpi_sla_compliance_snapshot ADD COLUMN IF NOT EXISTS accepted UInt64;
ALTER TABLE kpi_sla_compliance_snapshot ADD COLUMN IF NOT EXISTS exceptions String;
DROP VIEW IF EXISTS kpi_sla_compliance;
CREATE VIEW IF NOT EXISTS kpi_sla_compliance AS SELECT * FROM kpi_sla_compliance_snapshot;

-- kpi_patch_coverage_live: 0005's columns, then
--   stale_hosts     hosts whose latest scan is older than the stale limit:
--                   never covered, never in hosts_overdue
--   hosts_accepted  hosts covered only because exceptions cover every
--                   exposure of theirs past due (under 'honoured')
--   exceptions      'honoured' | 'ignored'
-- coverage_pct = (hosts - hosts_overdue - stale_hosts) / hosts.
DROP VIEW IF EXISTS kpi_patch_coverage_live;
CREATE VIEW IF NOT EXISTS kpi_patch_coverage_live AS
SELECT hp.policy AS policy, d.1 AS dimension, d.2 AS dim_value,
    count() AS hosts,
    countIf(hp.stale = 0 AND o.overdue > 0) AS hosts_overdue,
    100 * (hosts - hosts_overdue - stale_hosts) / hosts AS coverage_pct,
    countIf(hp.stale = 1) AS stale_hosts,
    countIf(hp.stale = 0 AND o.overdue = 0 AND o.accepted > 0) AS hosts_accepted,
    hp.exceptions AS exceptions
FROM (
    SELECT h.host_id AS host_id, h.dims AS dims, p.policy AS policy,
        toUInt8(h.last_scan_at < (SELECT stale_before FROM kpi_stale_limit)) AS stale, x AS exceptions
    FROM kpi_hosts AS h
    CROSS JOIN (SELECT DISTINCT policy FROM sla_policy FINAL) AS p
    ARRAY JOIN ['honoured', 'ignored'] AS x
) AS hp
LEFT JOIN (
    SELECT policy, host_id, exceptions, countIf(state = 'overdue') AS overdue, countIf(state = 'accepted') AS accepted
    FROM (
        SELECT policy, host_id, exceptions, patchgrid_kpi_state(sla_state, is_open, stale, accepted, exceptions = 'honoured') AS state
        FROM kpi_exposure_sla
        ARRAY JOIN ['honoured', 'ignored'] AS exceptions
        WHERE sla_state = 'overdue'
    )
    GROUP BY policy, host_id, exceptions
) AS o ON o.policy = hp.policy AND o.host_id = hp.host_id AND o.exceptions = hp.exceptions
ARRAY JOIN hp.dims AS d
GROUP BY policy, dimension, dim_value, exceptions
SETTINGS join_use_nulls = 0;
ALTER TABLE kpi_patch_coverage_snapshot ADD COLUMN IF NOT EXISTS stale_hosts UInt64;
ALTER TABLE kpi_patch_coverage_snapshot ADD COLUMN IF NOT EXISTS hosts_accepted UInt64;
ALTER TABLE kpi_patch_coverage_snapshot ADD COLUMN IF NOT EXISTS exceptions String;
DROP VIEW IF EXISTS kpi_patch_coverage;
CREATE VIEW IF NOT EXISTS kpi_patch_coverage AS SELECT * FROM kpi_patch_coverage_snapshot;

-- kpi_open_exposure_live: 0005's columns over the open exposures not
-- accepted (under 'ignored': all open exposures), then
--   accepted     open exposures accepted (0 under 'ignored')
--   stale        open exposures (of open_exposures) on stale hosts
--   stale_hosts  distinct stale hosts among them
--   exceptions   'honoured' | 'ignored'
DROP VIEW IF EXISTS kpi_open_exposure_live;
CREATE VIEW IF NOT EXISTS kpi_open_exposure_live AS
SELECT d.1 AS dimension, d.2 AS dim_value, severity, kev, epss_band,
    countIf(state != 'accepted') AS open_exposures,
    uniqExactIf(host_id, state != 'accepted') AS hosts,
    uniqExactIf(tuple(source, advisory_id), state != 'accepted') AS advisories,
    countIf(state = 'accepted') AS accepted,
    countIf(state = 'stale') AS stale,
    uniqExactIf(host_id, state = 'stale') AS stale_hosts,
    exceptions
FROM (
    SELECT dims, host_id, source, advisory_id, severity, kev, epss_band, exceptions,
        patchgrid_kpi_state('open', is_open, stale, accepted, exceptions = 'honoured') AS state
    FROM kpi_exposures
    ARRAY JOIN ['honoured', 'ignored'] AS exceptions
    WHERE is_open = 1
)
ARRAY JOIN dims AS d
GROUP BY dimension, dim_value, severity, kev, epss_band, exceptions;
ALTER TABLE kpi_open_exposure_snapshot ADD COLUMN IF NOT EXISTS accepted UInt64;
ALTER TABLE kpi_open_exposure_snapshot ADD COLUMN IF NOT EXISTS stale UInt64;
ALTER TABLE kpi_open_exposure_snapshot ADD COLUMN IF NOT EXISTS stale_hosts UInt64;
ALTER TABLE kpi_open_exposure_snapshot ADD COLUMN IF NOT EXISTS exceptions String;
DROP VIEW IF EXISTS kpi_open_exposure;
CREATE VIEW IF NOT EXISTS kpi_open_exposure AS SELECT * FROM kpi_open_exposure_snapshot;

-- kpi_remediation_rate_live: 0005's columns with accepted exposures out of
-- exposures and open (under 'honoured'), then accepted and exceptions.
DROP VIEW IF EXISTS kpi_remediation_rate_live;
CREATE VIEW IF NOT EXISTS kpi_remediation_rate_live AS
SELECT d.1 AS dimension, d.2 AS dim_value, risk_level,
    toUInt64(sumIf(n, acc = 0)) AS exposures,
    toUInt64(sumIf(n, is_open = 0)) AS resolved,
    toUInt64(sumIf(n, is_open = 1 AND acc = 0)) AS open,
    toUInt64(sumIf(n, recent = 1)) AS resolved_30d,
    100 * resolved / exposures AS remediation_rate_pct,
    100 * resolved_30d / (resolved_30d + open) AS remediation_rate_30d_pct,
    toUInt64(sumIf(n, acc = 1)) AS accepted,
    exceptions
FROM (
    SELECT ring, owner, os, criticality, risk_level, is_open, exceptions,
        toUInt8(is_open = 0 AND resolved_at > now() - toIntervalDay(30)) AS recent,
        toUInt8(patchgrid_kpi_state('', is_open, stale, accepted, exceptions = 'honoured') = 'accepted') AS acc, count() AS n
    FROM exposure_risk
    ARRAY JOIN ['honoured', 'ignored'] AS exceptions
    GROUP BY ring, owner, os, criticality, risk_level, is_open, exceptions, recent, acc
)
ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
GROUP BY dimension, dim_value, risk_level, exceptions;
ALTER TABLE kpi_remediation_rate_snapshot ADD COLUMN IF NOT EXISTS accepted UInt64;
ALTER TABLE kpi_remediation_rate_snapshot ADD COLUMN IF NOT EXISTS exceptions String;
DROP VIEW IF EXISTS kpi_remediation_rate;
CREATE VIEW IF NOT EXISTS kpi_remediation_rate AS SELECT * FROM kpi_remediation_rate_snapshot;

-- kpi_exposure_window_live: 0005's columns; under 'honoured' an accepted
-- exposure's state is 'accepted' (rows 'accepted' and 'all'), not 'open'.
-- Then accepted (accepted exposures in the row) and exceptions.
DROP VIEW IF EXISTS kpi_exposure_window_live;
CREATE VIEW IF NOT EXISTS kpi_exposure_window_live AS
SELECT dimension, dim_value, severity, state, exposures, p50_days, p90_days, p95_days, p99_days, max_days, accepted, exceptions
FROM (
    SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity, st AS state, exceptions,
        toUInt64(sum(n)) AS exposures,
        arraySort(groupArray((window_days, n))) AS win_hist,
        arrayCumSum(arrayMap(x -> x.2, win_hist)) AS win_cum,
        win_hist[arrayFirstIndex(c -> c > floor(0.5 * exposures), win_cum)].1 AS p50_days,
        win_hist[arrayFirstIndex(c -> c > floor(0.9 * exposures), win_cum)].1 AS p90_days,
        win_hist[arrayFirstIndex(c -> c > floor(0.95 * exposures), win_cum)].1 AS p95_days,
        win_hist[arrayFirstIndex(c -> c > floor(0.99 * exposures), win_cum)].1 AS p99_days,
        max(window_days) AS max_days,
        toUInt64(sumIf(n, acc = 1)) AS accepted
    FROM (
        SELECT ring, owner, os, criticality, severity, is_open, window_days, exceptions,
            toUInt8(patchgrid_kpi_state('', is_open, stale, accepted, exceptions = 'honoured') = 'accepted') AS acc, count() AS n
        FROM kpi_exposures
        ARRAY JOIN ['honoured', 'ignored'] AS exceptions
        GROUP BY ring, owner, os, criticality, severity, is_open, window_days, exceptions, acc
    )
    ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
    ARRAY JOIN [severity, 'all'] AS sev
    ARRAY JOIN ['all', multiIf(acc = 1, 'accepted', is_open = 1, 'open', 'resolved')] AS st
    GROUP BY dimension, dim_value, severity, state, exceptions
);
ALTER TABLE kpi_exposure_window_snapshot ADD COLUMN IF NOT EXISTS accepted UInt64;
ALTER TABLE kpi_exposure_window_snapshot ADD COLUMN IF NOT EXISTS exceptions String;
DROP VIEW IF EXISTS kpi_exposure_window;
CREATE VIEW IF NOT EXISTS kpi_exposure_window AS SELECT * FROM kpi_exposure_window_snapshot;

-- kpi_daily_trend_live: 0005's columns (both readings: exposures accepted
-- now were opened and are still open), then accepted (of the exposures
-- opened that day, those accepted now; 0 under 'ignored') and exceptions.
DROP VIEW IF EXISTS kpi_daily_trend_live;
CREATE VIEW IF NOT EXISTS kpi_daily_trend_live AS
SELECT dimension, dim_value, severity, day, opened, resolved,
    sum(opened - resolved) OVER (PARTITION BY dimension, dim_value, severity, exceptions ORDER BY day
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS open_at_end,
    if(exceptions = 'honoured', accepted_opened, 0) AS accepted, exceptions
FROM (
    SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity, ev.1 AS day,
        toInt64(sum(ev.2 * n)) AS opened, toInt64(sum(ev.3 * n)) AS resolved,
        toUInt64(sum(ev.2 * acc * n)) AS accepted_opened
    FROM (
        SELECT ring, owner, os, criticality, severity, is_open, toDate(first_seen, 'UTC') AS opened_day, toDate(resolved_at, 'UTC') AS resolved_day,
            toUInt8(patchgrid_kpi_state('', is_open, stale, accepted, 1) = 'accepted') AS acc, count() AS n
        FROM kpi_exposures
        GROUP BY ring, owner, os, criticality, severity, is_open, opened_day, resolved_day, acc
    )
    ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
    ARRAY JOIN [severity, 'all'] AS sev
    ARRAY JOIN if(is_open = 1,
        [(opened_day, 1, 0)],
        [(opened_day, 1, 0), (resolved_day, 0, 1)]) AS ev
    GROUP BY dimension, dim_value, severity, day
)
ARRAY JOIN ['honoured', 'ignored'] AS exceptions;
ALTER TABLE kpi_daily_trend_snapshot ADD COLUMN IF NOT EXISTS accepted UInt64;
ALTER TABLE kpi_daily_trend_snapshot ADD COLUMN IF NOT EXISTS exceptions String;
DROP VIEW IF EXISTS kpi_daily_trend;
CREATE VIEW IF NOT EXISTS kpi_daily_trend AS SELECT * FROM kpi_daily_trend_snapshot;
