-- patchgrid:min-server 23.8
-- Compliance KPIs and the risk score, as views over 0001..0003. Needs a
-- current ClickHouse (window functions, JOIN ON with several conditions,
-- quantilesExact over Float64, nan): the migration runner skips this file on
-- older servers. Definitions for readers: schemas/VIEWS.md. Formula of the
-- risk score: analytics/risk/README.md.
--
-- Clock: views that speak of "now" (open exposures, SLA state, risk's age
-- past SLA) use now() of the query that reads them.
-- Durations are Float64 days (seconds / 86400). A duration that does not
-- apply (time to patch of an open exposure, a missing fix date) is nan,
-- which aggregates skip (avgIf / quantilesExactIf on isFinite).
-- Breakdowns: every KPI view has the columns dimension and dim_value:
--   ('all', '') the whole fleet, ('ring', r), ('owner', o), ('os', e) with e
--   the host's OSV ecosystem (or os-release ID and VERSION_ID), and
--   ('criticality', '0'..'4'). Filter on one dimension when reading.
-- Severity breakdowns include severity = 'all' besides each severity.

-- SLA policies as data: days to remediate per severity, per named policy.
-- kev_due_date = 1: for an advisory in CISA KEV, the KEV dueDate replaces the
-- severity clock. Change a policy by inserting rows with a later updated_at.
CREATE TABLE IF NOT EXISTS sla_policy (
    policy       String,
    severity     String,   -- critical, high, medium, low, none, unknown
    sla_days     UInt32,
    kev_due_date UInt8,
    updated_at   DateTime
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (policy, severity);

-- The default policy. Its rows carry a fixed updated_at, so re-running the
-- migration changes nothing and any later edit wins.
INSERT INTO sla_policy (policy, severity, sla_days, kev_due_date, updated_at) VALUES
    ('default', 'critical', 15, 1, '2026-01-01 00:00:00'),
    ('default', 'high', 30, 1, '2026-01-01 00:00:00'),
    ('default', 'medium', 90, 1, '2026-01-01 00:00:00'),
    ('default', 'low', 180, 1, '2026-01-01 00:00:00'),
    ('default', 'none', 365, 1, '2026-01-01 00:00:00'),
    ('default', 'unknown', 90, 1, '2026-01-01 00:00:00');

-- One row per host: its metadata from its latest scan (ties broken by
-- scan_id, as host_findings does) and its breakdown keys (dims).
CREATE VIEW IF NOT EXISTS kpi_hosts AS
SELECT host_id,
    latest.1 AS hostname, latest.2 AS owner, latest.3 AS ring,
    latest.4 AS criticality, latest.5 AS internet_facing,
    if(latest.6 != '', latest.6, trimBoth(concat(latest.7, ' ', latest.8))) AS os,
    latest.9 AS last_scan_at,
    [('all', ''), ('ring', ring), ('owner', owner), ('os', os), ('criticality', toString(criticality))] AS dims
FROM (
    SELECT host_id,
        argMax((hostname, owner, ring, criticality, internet_facing, os_ecosystem, os_id, os_version, scanned_at),
               (scanned_at, scan_id)) AS latest
    FROM scans
    GROUP BY host_id
);

-- One row per current advisory record (not withdrawn) with its risk inputs:
--   severity        critical, high, medium, low, none; anything else 'unknown'
--   fix_published   earliest fix date any of its ranges records (epoch: none)
--   kev             1 when one of its CVEs is in CISA KEV
--   kev_due_date    earliest KEV dueDate among those CVEs
--   has_epss        1 when one of its CVEs has an EPSS score
--   epss, epss_percentile  highest among its CVEs (0 when none)
--   epss_band       'none', '<1%', '1-10%', '10-50%', '>=50%' by epss
CREATE VIEW IF NOT EXISTS kpi_advisories AS
SELECT a.source AS source, a.advisory_id AS advisory_id,
    if(lower(a.severity) IN ('critical', 'high', 'medium', 'low', 'none'), lower(a.severity), 'unknown') AS severity,
    a.cvss_version AS cvss_version, toFloat64(a.cvss_score) AS cvss_score,
    a.published AS published, a.cves AS cves,
    f.fix_published AS fix_published,
    r.kev AS kev, r.kev_due_date AS kev_due_date,
    r.has_epss AS has_epss, r.epss AS epss, r.epss_percentile AS epss_percentile,
    multiIf(r.has_epss = 0, 'none', r.epss < 0.01, '<1%', r.epss < 0.1, '1-10%', r.epss < 0.5, '10-50%', '>=50%') AS epss_band
FROM (SELECT * FROM advisories FINAL WHERE withdrawn = 0) AS a
LEFT JOIN (
    SELECT source, advisory_id, record_hash,
        minIf(fix_published, fix_published > toDateTime(0)) AS fix_published
    FROM affected_ranges
    GROUP BY source, advisory_id, record_hash
) AS f ON f.source = a.source AND f.advisory_id = a.advisory_id AND f.record_hash = a.record_hash
LEFT JOIN (
    SELECT c.source AS source, c.advisory_id AS advisory_id,
        toUInt8(max(k.cve != '')) AS kev,
        minIf(k.due_date, k.cve != '') AS kev_due_date,
        toUInt8(max(e.cve != '')) AS has_epss,
        max(e.epss) AS epss,
        max(e.percentile) AS epss_percentile
    FROM (SELECT source, advisory_id, arrayJoin(cves) AS cve FROM advisories FINAL WHERE withdrawn = 0) AS c
    LEFT JOIN (SELECT cve, due_date FROM kev FINAL) AS k ON k.cve = c.cve
    LEFT JOIN (SELECT cve, epss, percentile FROM epss FINAL) AS e ON e.cve = c.cve
    GROUP BY c.source, c.advisory_id
) AS r ON r.source = a.source AND r.advisory_id = a.advisory_id
SETTINGS join_use_nulls = 0;

-- One row per exposure (host, advisory) of exposure_history, with host and
-- advisory attributes and its durations in days:
--   is_open              1 while the host's latest scan is exposed
--   window_days          (resolved_at, or now() while open) - first_seen
--   remediation_days     resolved_at - first_seen; nan while open
--   ttp_publication_days resolved_at - published, at least 0; nan while open
--   ttp_fix_days         resolved_at - fix_published, at least 0; nan while
--                        open or without a fix date
-- An exposure that went away and came back (reopened > 0) is one window from
-- its first to its final resolution.
CREATE VIEW IF NOT EXISTS kpi_exposures AS
SELECT x.host_id AS host_id, h.hostname AS hostname, h.owner AS owner, h.ring AS ring,
    h.criticality AS criticality, h.internet_facing AS internet_facing, h.os AS os, h.dims AS dims,
    x.source AS source, x.advisory_id AS advisory_id,
    a.severity AS severity, a.cvss_version AS cvss_version, a.cvss_score AS cvss_score,
    a.published AS published, a.fix_published AS fix_published, a.cves AS cves,
    a.kev AS kev, a.kev_due_date AS kev_due_date,
    a.has_epss AS has_epss, a.epss AS epss, a.epss_percentile AS epss_percentile, a.epss_band AS epss_band,
    x.first_seen AS first_seen, x.last_seen AS last_seen, x.resolved_at AS resolved_at,
    x.reopened AS reopened, x.exposed_now AS is_open,
    if(is_open = 1, now(), x.resolved_at) AS window_end,
    (toInt64(window_end) - toInt64(x.first_seen)) / 86400 AS window_days,
    if(is_open = 1, nan, (toInt64(x.resolved_at) - toInt64(x.first_seen)) / 86400) AS remediation_days,
    if(is_open = 1, nan, greatest(toInt64(x.resolved_at) - toInt64(a.published), 0) / 86400) AS ttp_publication_days,
    if(is_open = 1 OR a.fix_published = toDateTime(0), nan,
        greatest(toInt64(x.resolved_at) - toInt64(a.fix_published), 0) / 86400) AS ttp_fix_days
FROM exposure_history AS x
INNER JOIN kpi_hosts AS h ON h.host_id = x.host_id
INNER JOIN kpi_advisories AS a ON a.source = x.source AND a.advisory_id = x.advisory_id;

-- kpi_exposures once per SLA policy (joined on severity), with the deadline:
--   sla_deadline  first_seen + sla_days; for a KEV advisory under a policy
--                 with kev_due_date = 1, the end (23:59:59 UTC) of the KEV dueDate
--                 instead, or first_seen when the host was first exposed
--                 after that date
--   sla_state     'met' (resolved by the deadline), 'missed' (resolved
--                 after it), 'overdue' (open past it), 'open' (open, not due)
--   days_past_sla (resolved_at or now()) - sla_deadline, at least 0
CREATE VIEW IF NOT EXISTS kpi_exposure_sla AS
SELECT e.*, p.policy AS policy, p.sla_days AS sla_days,
    toUInt8(p.kev_due_date = 1 AND e.kev = 1 AND e.kev_due_date > toDate(0)) AS kev_deadline,
    if(kev_deadline = 1,
        greatest(toDateTime(e.kev_due_date, 'UTC') + 86399, e.first_seen),
        e.first_seen + toIntervalDay(p.sla_days)) AS sla_deadline,
    multiIf(e.is_open = 0 AND e.resolved_at <= sla_deadline, 'met',
            e.is_open = 0, 'missed',
            now() > sla_deadline, 'overdue',
            'open') AS sla_state,
    greatest(toInt64(e.window_end) - toInt64(sla_deadline), 0) / 86400 AS days_past_sla
FROM kpi_exposures AS e
INNER JOIN (SELECT * FROM sla_policy FINAL) AS p ON p.severity = e.severity;

-- The risk score of every exposure, open or resolved, under the 'default'
-- SLA policy (for the age past SLA). Six additive parts, each capped, 0..100:
--   risk_cvss      3.5 * CVSS base score (0..35); without a score, by
--                  severity: critical 9.5, high 7.5, medium/unknown 5, low 2.5
--   risk_epss      10 * EPSS probability + 5 * EPSS percentile (0..15)
--   risk_kev       15 when in CISA KEV, +5 once its dueDate has passed while
--                  the host was still exposed (0..20)
--   risk_asset     2.5 * criticality 1..4; unknown (0) counts as 2 (0..10)
--   risk_internet  10 when the host is internet-facing (0..10)
--   risk_sla       10 * min(days_past_sla, 30) / 30 (0..10)
--   risk_score     the sum of the six; risk_level critical >= 70, high >= 50,
--                  medium >= 25, else low
-- Each part is rounded to 2 decimals before summing.
CREATE VIEW IF NOT EXISTS exposure_risk AS
SELECT *,
    round(3.5 * if(cvss_score > 0, cvss_score,
        multiIf(severity = 'critical', 9.5, severity = 'high', 7.5, severity IN ('medium', 'unknown'), 5.0, severity = 'low', 2.5, 0.0)), 2) AS risk_cvss,
    round(10 * epss + 5 * epss_percentile, 2) AS risk_epss,
    if(kev = 1, 15.0 + if(kev_due_date > toDate(0) AND window_end > toDateTime(kev_due_date, 'UTC') + 86399, 5.0, 0.0), 0.0) AS risk_kev,
    2.5 * if(criticality = 0, 2, least(criticality, 4)) AS risk_asset,
    if(internet_facing = 1, 10.0, 0.0) AS risk_internet,
    round(10 * least(days_past_sla, 30) / 30, 2) AS risk_sla,
    risk_cvss + risk_epss + risk_kev + risk_asset + risk_internet + risk_sla AS risk_score,
    multiIf(risk_score >= 70, 'critical', risk_score >= 50, 'high', risk_score >= 25, 'medium', 'low') AS risk_level
FROM kpi_exposure_sla
WHERE policy = 'default';

-- Current findings (one per host, advisory and installed package, from
-- host_findings) with the risk of their exposure. Installed kernel images
-- that are not running are not findings here.
CREATE VIEW IF NOT EXISTS finding_risk AS
SELECT f.host_id AS host_id, r.hostname AS hostname, r.owner AS owner, r.ring AS ring,
    r.criticality AS criticality, r.internet_facing AS internet_facing, r.os AS os,
    f.source AS source, f.advisory_id AS advisory_id, r.cves AS cves, r.severity AS severity,
    r.cvss_score AS cvss_score, r.has_epss AS has_epss, r.epss AS epss, r.epss_percentile AS epss_percentile,
    r.kev AS kev, r.kev_due_date AS kev_due_date,
    f.ecosystem AS ecosystem, f.name AS package, f.version AS installed_version, f.arch AS arch,
    f.match_name AS match_name, f.match_version AS match_version,
    f.status AS status, f.fixed AS fixed_version, f.kernel_state AS kernel_state,
    r.published AS published, r.fix_published AS fix_published,
    r.first_seen AS first_seen, r.sla_deadline AS sla_deadline, r.sla_state AS sla_state, r.days_past_sla AS days_past_sla,
    r.risk_cvss AS risk_cvss, r.risk_epss AS risk_epss, r.risk_kev AS risk_kev, r.risk_asset AS risk_asset,
    r.risk_internet AS risk_internet, r.risk_sla AS risk_sla, r.risk_score AS risk_score, r.risk_level AS risk_level
FROM host_findings AS f
INNER JOIN (SELECT * FROM exposure_risk WHERE is_open = 1) AS r
    ON r.host_id = f.host_id AND r.source = f.source AND r.advisory_id = f.advisory_id
WHERE f.kernel_state != 'not_running';

-- Per host: its open exposures' risk. host_risk is the highest finding
-- score; the top_* columns break that top score down; risk_total sums all.
CREATE VIEW IF NOT EXISTS host_risk AS
SELECT h.host_id AS host_id, h.hostname AS hostname, h.owner AS owner, h.ring AS ring,
    h.criticality AS criticality, h.internet_facing AS internet_facing, h.os AS os, h.last_scan_at AS last_scan_at,
    ifNull(r.open_exposures, 0) AS open_exposures, ifNull(r.overdue, 0) AS overdue, ifNull(r.kev_exposures, 0) AS kev_exposures,
    ifNull(r.host_risk, 0.0) AS host_risk, ifNull(r.risk_total, 0.0) AS risk_total,
    multiIf(host_risk >= 70, 'critical', host_risk >= 50, 'high', host_risk >= 25, 'medium', 'low') AS host_risk_level,
    ifNull(r.top.1, '') AS top_source, ifNull(r.top.2, '') AS top_advisory_id,
    ifNull(r.top.3, 0.0) AS top_risk_cvss, ifNull(r.top.4, 0.0) AS top_risk_epss, ifNull(r.top.5, 0.0) AS top_risk_kev,
    ifNull(r.top.6, 0.0) AS top_risk_asset, ifNull(r.top.7, 0.0) AS top_risk_internet, ifNull(r.top.8, 0.0) AS top_risk_sla
FROM kpi_hosts AS h
LEFT JOIN (
    SELECT host_id, count() AS open_exposures, countIf(sla_state = 'overdue') AS overdue, countIf(kev = 1) AS kev_exposures,
        max(risk_score) AS host_risk, sum(risk_score) AS risk_total,
        argMax((source, advisory_id, risk_cvss, risk_epss, risk_kev, risk_asset, risk_internet, risk_sla), (risk_score, source, advisory_id)) AS top
    FROM exposure_risk
    WHERE is_open = 1
    GROUP BY host_id
) AS r ON r.host_id = h.host_id
SETTINGS join_use_nulls = 0;

-- MTTR: mean and median days from first detection to resolution, over
-- resolved exposures.
CREATE VIEW IF NOT EXISTS kpi_mttr AS
SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity,
    countIf(is_open = 0) AS resolved,
    avgIf(remediation_days, isFinite(remediation_days)) AS mttr_days,
    quantileExactIf(0.5)(remediation_days, isFinite(remediation_days)) AS median_days
FROM kpi_exposures
ARRAY JOIN dims AS d
ARRAY JOIN [severity, 'all'] AS sev
GROUP BY dimension, dim_value, severity;

-- Time to patch, over resolved exposures: days from the advisory's
-- publication, and from the fix's availability (only exposures whose
-- advisory records a fix date: with_fix_date), to resolution.
CREATE VIEW IF NOT EXISTS kpi_time_to_patch AS
SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity,
    countIf(is_open = 0) AS resolved,
    countIf(isFinite(ttp_fix_days)) AS with_fix_date,
    avgIf(ttp_publication_days, isFinite(ttp_publication_days)) AS from_publication_avg_days,
    quantileExactIf(0.5)(ttp_publication_days, isFinite(ttp_publication_days)) AS from_publication_median_days,
    avgIf(ttp_fix_days, isFinite(ttp_fix_days)) AS from_fix_avg_days,
    quantileExactIf(0.5)(ttp_fix_days, isFinite(ttp_fix_days)) AS from_fix_median_days
FROM kpi_exposures
ARRAY JOIN dims AS d
ARRAY JOIN [severity, 'all'] AS sev
GROUP BY dimension, dim_value, severity;

-- SLA compliance per policy: of the exposures whose outcome is known
-- (met, missed, overdue), the share met. Open exposures not yet due count in
-- open_in_sla only.
CREATE VIEW IF NOT EXISTS kpi_sla_compliance AS
SELECT policy, d.1 AS dimension, d.2 AS dim_value, sev AS severity,
    count() AS exposures,
    countIf(sla_state = 'met') AS met,
    countIf(sla_state = 'missed') AS missed,
    countIf(sla_state = 'overdue') AS overdue,
    countIf(sla_state = 'open') AS open_in_sla,
    100 * met / (met + missed + overdue) AS compliance_pct
FROM kpi_exposure_sla
ARRAY JOIN dims AS d
ARRAY JOIN [severity, 'all'] AS sev
GROUP BY policy, dimension, dim_value, severity;

-- Patch coverage per policy: the share of hosts with no open exposure past
-- its SLA deadline. Hosts without any exposure are covered.
CREATE VIEW IF NOT EXISTS kpi_patch_coverage AS
SELECT hp.policy AS policy, d.1 AS dimension, d.2 AS dim_value,
    count() AS hosts,
    countIf(o.overdue > 0) AS hosts_overdue,
    100 * (hosts - hosts_overdue) / hosts AS coverage_pct
FROM (
    SELECT h.host_id AS host_id, h.dims AS dims, p.policy AS policy
    FROM kpi_hosts AS h
    CROSS JOIN (SELECT DISTINCT policy FROM sla_policy FINAL) AS p
) AS hp
LEFT JOIN (
    SELECT policy, host_id, countIf(sla_state = 'overdue') AS overdue
    FROM kpi_exposure_sla
    GROUP BY policy, host_id
) AS o ON o.policy = hp.policy AND o.host_id = hp.host_id
ARRAY JOIN hp.dims AS d
GROUP BY policy, dimension, dim_value
SETTINGS join_use_nulls = 0;

-- Open exposure now, by severity, KEV membership and EPSS band.
CREATE VIEW IF NOT EXISTS kpi_open_exposure AS
SELECT d.1 AS dimension, d.2 AS dim_value, severity, kev, epss_band,
    count() AS open_exposures,
    uniqExact(host_id) AS hosts,
    uniqExact(source, advisory_id) AS advisories
FROM kpi_exposures
ARRAY JOIN dims AS d
WHERE is_open = 1
GROUP BY dimension, dim_value, severity, kev, epss_band;

-- Remediation rate by risk level (exposure_risk): resolved share of all
-- exposures, and over the last 30 days: resolved in the last 30 days /
-- (those + still open).
CREATE VIEW IF NOT EXISTS kpi_remediation_rate AS
SELECT d.1 AS dimension, d.2 AS dim_value, risk_level,
    count() AS exposures,
    countIf(is_open = 0) AS resolved,
    countIf(is_open = 1) AS open,
    countIf(is_open = 0 AND resolved_at > now() - toIntervalDay(30)) AS resolved_30d,
    100 * resolved / exposures AS remediation_rate_pct,
    100 * resolved_30d / (resolved_30d + open) AS remediation_rate_30d_pct
FROM exposure_risk
ARRAY JOIN dims AS d
GROUP BY dimension, dim_value, risk_level;

-- Exposure window lengths (days from first_seen to resolution, or to now
-- while open), as exact percentiles (quantileExact: the value at index
-- floor(level * n) of the sorted windows), per state 'resolved', 'open' and
-- 'all'.
CREATE VIEW IF NOT EXISTS kpi_exposure_window AS
SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity, state,
    count() AS exposures,
    quantileExact(0.5)(window_days) AS p50_days,
    quantileExact(0.9)(window_days) AS p90_days,
    quantileExact(0.95)(window_days) AS p95_days,
    quantileExact(0.99)(window_days) AS p99_days,
    max(window_days) AS max_days
FROM kpi_exposures
ARRAY JOIN dims AS d
ARRAY JOIN [severity, 'all'] AS sev
ARRAY JOIN ['all', if(is_open = 1, 'open', 'resolved')] AS state
GROUP BY dimension, dim_value, severity, state;

-- Daily trend: per day (UTC date), exposures opened (first_seen) and
-- resolved (resolved_at) that day, and open_at_end, the exposures open at
-- the end of the day. Days without any change have no row: open_at_end of
-- the previous row carries over.
CREATE VIEW IF NOT EXISTS kpi_daily_trend AS
SELECT dimension, dim_value, severity, day, opened, resolved,
    sum(opened - resolved) OVER (PARTITION BY dimension, dim_value, severity ORDER BY day
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS open_at_end
FROM (
    SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity, ev.1 AS day,
        toInt64(sum(ev.2)) AS opened, toInt64(sum(ev.3)) AS resolved
    FROM kpi_exposures
    ARRAY JOIN dims AS d
    ARRAY JOIN [severity, 'all'] AS sev
    ARRAY JOIN if(is_open = 1,
        [(toDate(first_seen, 'UTC'), 1, 0)],
        [(toDate(first_seen, 'UTC'), 1, 0), (toDate(resolved_at, 'UTC'), 0, 1)]) AS ev
    GROUP BY dimension, dim_value, severity, day
);
