-- patchgrid:min-server 23.8
-- Risk KPIs and the daily trend over groups of exposures (issue 16: a
-- refresh in seconds). kpi_remediation_rate and host_risk read the clock
-- (an open exposure's risk grows past its deadline, "resolved in the last
-- 30 days" moves), so every refresh, a heartbeat day's too, computed them
-- again from every exposure through exposure_risk: 21 s and 10 s of a
-- 55 s heartbeat day at 100,000 hosts × 90 days (159M exposures). But an
-- exposure's risk is its host's (criticality, internet facing) and its
-- own CVSS and EPSS parts, which no clock moves, plus its KEV and SLA
-- parts, which depend only on columns exposure_groups already groups by
-- (severity, open, fix and KEV flags, KEV due date, clock start,
-- resolution time) and the SSVC exploitation signal. Grouping a host's
-- exposures by all of these (15.6M exposures fall into 2.1M groups at
-- `make run` size), the clock's parts are worked out once per group.
--   risk_groups_live  the exposures of kpi_exposures counted (n) per
--       group equal in those columns, with the CVSS and EPSS parts of the
--       score as exposure_risk computes them (the score adds its parts
--       left to right starting with those two, so a group's score is
--       bit for bit its exposures'), the exploitation signal where it
--       counts (KEV exposures score by their due date instead), and the
--       greatest (source, advisory_id) of an open group: host_risk's top
--       advisory is the greatest of those with the highest score among its
--       open exposures (a resolved group's is ''). That pair is one
--       string, source NUL advisory_id, which orders as the pair does (no
--       source holds a NUL) at a third of the cost of the greatest tuple
--       (3 s of 6 s at `make run` size). It reads neither the clock nor
--       another table, so it follows exposure_base host by host as the
--       tables of 0032 do.
--   risk_groups_base, risk_groups_snapshot  its rows, with version and
--       deleted, and the view of the current ones (0032's scheme).
--   exposure_risk_groups  exposure_risk's clock-dependent columns worked
--       out once per group, under the default SLA policy.
-- kpi_remediation_rate_live and host_risk_live keep their columns, rows
-- and meaning, counting n exposures where they counted one; host_risk's
-- risk_total adds each group's score n times as a product, equal to the
-- sum of its exposures' within floating-point rounding. The refresh's
-- differential test holds each to its previous definition (0016).
-- kpi_daily_trend_live counts the exposures opened and resolved per day
-- by columns exposure_groups holds (first sighting, resolution time and
-- the host's), so it reads those groups (34,000 rows at `make run` size)
-- rather than every exposure; same columns, rows and meaning, held to
-- 0016's by the same test.

CREATE VIEW IF NOT EXISTS risk_groups_live AS
SELECT host_id, any(ring) AS ring, any(owner) AS owner, any(os) AS os, any(criticality) AS criticality,
    any(internet_facing) AS internet_facing, any(stale) AS stale,
    severity, is_open, accepted, fix_available, kev, kev_due_date, clock_start, resolved_at,
    patchgrid_risk_cvss(cvss_score, severity) AS risk_cvss, patchgrid_risk_epss(epss, epss_percentile) AS risk_epss,
    if(kev = 1, '', ssvc_exploitation) AS exploitation,
    count() AS n, maxIf(concat(source, '\0', advisory_id), is_open = 1) AS top_advisory
FROM kpi_exposures
GROUP BY host_id, severity, is_open, accepted, fix_available, kev, kev_due_date, clock_start, resolved_at,
    risk_cvss, risk_epss, exploitation;

CREATE TABLE IF NOT EXISTS risk_groups_base
ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (host_id, severity, is_open, accepted, fix_available, kev, kev_due_date, clock_start, resolved_at,
    risk_cvss, risk_epss, exploitation)
EMPTY AS SELECT *, toUInt64(0) AS version, toUInt8(0) AS deleted FROM risk_groups_live;

CREATE VIEW IF NOT EXISTS risk_groups_snapshot AS
SELECT * EXCEPT (version, deleted) FROM risk_groups_base FINAL WHERE deleted = 0;

-- Open windows end at the refresh (host_facts.as_of), as kpi_exposures'
-- do; SLA states are as of now(), as kpi_exposure_sla's are.
CREATE VIEW IF NOT EXISTS exposure_risk_groups AS
WITH (SELECT max(as_of) FROM host_facts) AS refreshed
SELECT g.host_id AS host_id, g.ring AS ring, g.owner AS owner, g.os AS os, g.criticality AS criticality,
    g.stale AS stale, g.severity AS severity, g.is_open AS is_open, g.accepted AS accepted, g.kev AS kev,
    g.resolved_at AS resolved_at, g.n AS n, g.top_advisory AS top_advisory,
    if(g.is_open = 1, assumeNotNull(refreshed), g.resolved_at) AS window_end,
    toUInt8(p.kev_due_date = 1 AND g.kev = 1 AND g.kev_due_date > toDate(0)) AS kev_deadline,
    patchgrid_sla_deadline(kev_deadline, g.kev_due_date, g.clock_start, p.sla_days) AS sla_deadline,
    patchgrid_sla_state(g.is_open, g.fix_available, g.resolved_at, sla_deadline, now()) AS sla_state,
    patchgrid_days_past_sla(sla_state, window_end, sla_deadline) AS days_past_sla,
    g.risk_cvss AS risk_cvss, g.risk_epss AS risk_epss,
    patchgrid_risk_kev(g.kev, g.kev_due_date, window_end, g.exploitation) AS risk_kev,
    patchgrid_risk_asset(g.criticality) AS risk_asset,
    patchgrid_risk_internet(g.internet_facing) AS risk_internet,
    patchgrid_risk_sla(days_past_sla) AS risk_sla,
    risk_cvss + risk_epss + risk_kev + risk_asset + risk_internet + risk_sla AS risk_score,
    patchgrid_risk_level(risk_score) AS risk_level
FROM risk_groups_snapshot AS g
INNER JOIN (SELECT * FROM sla_policy FINAL WHERE policy = 'default') AS p ON p.severity = g.severity;

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
    SELECT ring, owner, os, criticality, risk_level, is_open, recent, n, exceptions,
        toUInt8(patchgrid_kpi_state('', is_open, stale, accepted, exceptions = 'honoured') = 'accepted') AS acc
    FROM (
        SELECT ring, owner, os, criticality, risk_level, is_open, stale, accepted,
            toUInt8(is_open = 0 AND resolved_at > now() - toIntervalDay(30)) AS recent, sum(n) AS n
        FROM exposure_risk_groups
        GROUP BY ring, owner, os, criticality, risk_level, is_open, stale, accepted, recent
    )
    ARRAY JOIN ['honoured', 'ignored'] AS exceptions
)
ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
GROUP BY dimension, dim_value, risk_level, exceptions;

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
    SELECT host_id, sum(n) AS open_exposures, sumIf(n, sla_state = 'overdue') AS overdue, sumIf(n, kev = 1) AS kev_exposures,
        max(risk_score) AS host_risk, sum(risk_score * n) AS risk_total,
        argMax((substring(top_advisory, 1, position(top_advisory, '\0') - 1), substring(top_advisory, position(top_advisory, '\0') + 1),
                risk_cvss, risk_epss, risk_kev, risk_asset, risk_internet, risk_sla),
            (risk_score, top_advisory)) AS top,
        sumIf(n, accepted = 1) AS accepted_exposures, maxIf(risk_score, accepted = 0) AS host_risk_unaccepted
    FROM exposure_risk_groups
    WHERE is_open = 1
    GROUP BY host_id
) AS r ON r.host_id = h.host_id
SETTINGS join_use_nulls = 0;

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
            toUInt8(patchgrid_kpi_state('', is_open, stale, accepted, 1) = 'accepted') AS acc, sum(n) AS n
        FROM exposure_groups_snapshot
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
