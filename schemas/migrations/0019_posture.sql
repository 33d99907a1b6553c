-- patchgrid:min-server 23.8
-- Compliance frameworks and the compliance posture under each. Old servers
-- go without (the SLA views these build on need ClickHouse 23.8). Reads
-- 0016's additions: kpi_exposure_sla's accepted and stale, kpi_stale_limit
-- and patchgrid_kpi_state, so the posture counts as the KPIs do.
--
-- A framework is a named SLA policy (rows of sla_policy) plus the scope of
-- exposures it judges. The presets, each citing its source, are the files
-- of analytics/compliance/frameworks/presets; this migration loads them
-- and a test there holds these rows to the files:
--   internal-sla    the active remediation policy (policy 'default')
--   cisa-bod-22-01  CISA BOD 22-01: KEV advisories by their KEV due date
--   pci-dss-6.3.3   PCI DSS v4.0 requirement 6.3.3: critical and high
--                   patches within one month of release
-- Since the framework policies are sla_policy rows, kpi_sla_compliance and
-- kpi_patch_coverage have rows for them too (over every exposure: a
-- framework's scope applies in the posture views below only).
--
-- compliance_frameworks: one row per framework (the newest updated_at wins)
--   framework  id, e.g. cisa-bod-22-01
--   policy     the sla_policy policy that gives its deadlines
--   scope      'all' (every exposure) or 'kev' (advisories in CISA KEV)
--   source     the citation: the document and requirement it implements
CREATE TABLE IF NOT EXISTS compliance_frameworks (
    framework  String,
    title      String,
    policy     String,
    scope      String,
    source     String,
    updated_at DateTime
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY framework;

INSERT INTO compliance_frameworks (framework, title, policy, scope, source, updated_at) VALUES
    ('internal-sla', 'Internal SLA (the active remediation policy)', 'default', 'all',
     'the active remediation policy: patchgrid policy show (sla block); sla_policy rows of policy ''default''', '2026-12-03 00:00:00'),
    ('cisa-bod-22-01', 'CISA BOD 22-01 (known exploited vulnerabilities by their KEV due date)', 'cisa-bod-22-01', 'kev',
     'https://www.cisa.gov/news-events/directives/bod-22-01-reducing-significant-risk-known-exploited-vulnerabilities', '2026-12-03 00:00:00'),
    ('pci-dss-6.3.3', 'PCI DSS v4.0 requirement 6.3.3 (critical and high patches within one month of release)', 'pci-dss-6.3.3', 'all',
     'PCI DSS v4.0, requirement 6.3.3 (PCI Security Standards Council, March 2022)', '2026-12-03 00:00:00');

INSERT INTO sla_policy (policy, severity, sla_days, kev_due_date, updated_at) VALUES
    ('cisa-bod-22-01', 'critical', 14, 1, '2026-12-03 00:00:00'),
    ('cisa-bod-22-01', 'high', 14, 1, '2026-12-03 00:00:00'),
    ('cisa-bod-22-01', 'medium', 14, 1, '2026-12-03 00:00:00'),
    ('cisa-bod-22-01', 'low', 14, 1, '2026-12-03 00:00:00'),
    ('cisa-bod-22-01', 'none', 14, 1, '2026-12-03 00:00:00'),
    ('cisa-bod-22-01', 'unknown', 14, 1, '2026-12-03 00:00:00'),
    ('pci-dss-6.3.3', 'critical', 30, 0, '2026-12-03 00:00:00'),
    ('pci-dss-6.3.3', 'high', 30, 0, '2026-12-03 00:00:00'),
    ('pci-dss-6.3.3', 'medium', 90, 0, '2026-12-03 00:00:00'),
    ('pci-dss-6.3.3', 'low', 90, 0, '2026-12-03 00:00:00'),
    ('pci-dss-6.3.3', 'none', 90, 0, '2026-12-03 00:00:00'),
    ('pci-dss-6.3.3', 'unknown', 30, 0, '2026-12-03 00:00:00');

-- compliance_posture_live: one row per (framework, breakdown): the hosts
-- of the breakdown and, over the exposures in the framework's scope with
-- the deadlines of its policy (kpi_exposure_sla), read as the KPIs read
-- them (0016: patchgrid_kpi_state, exceptions honoured):
--   hosts                   hosts (kpi_hosts)
--   compliant_hosts         hosts that are not stale and have no overdue
--                           exposure that exceptions do not accept
--   compliant_pct           100 * compliant_hosts / hosts
--   compliant_hosts_strict  the same with exceptions ignored: not stale,
--                           no overdue exposure at all
--   open_in_scope           open exposures (no_fix ones included)
--   overdue                 open exposures past their deadline, on hosts
--                           that are not stale, not accepted
--   overdue_accepted        open exposures past their deadline that
--                           exceptions accept (every finding covered:
--                           kpi_exposures.accepted), counted apart, not hidden
--   open_exceptions         approved, unexpired exceptions covering a
--                           finding of an open exposure in scope on these
--                           hosts (finding_exceptions)
--   stale_hosts             hosts whose latest scan is older than the stale
--                           limit (kpi_stale_limit): never compliant, as in
--                           kpi_patch_coverage
CREATE VIEW IF NOT EXISTS compliance_posture_live AS
SELECT hf.framework AS framework, hf.title AS title, d.1 AS dimension, d.2 AS dim_value,
    toUInt64(count()) AS hosts,
    toUInt64(countIf(hf.stale = 0 AND o.overdue = 0)) AS compliant_hosts,
    100 * compliant_hosts / hosts AS compliant_pct,
    toUInt64(countIf(hf.stale = 0 AND o.overdue + o.overdue_accepted = 0)) AS compliant_hosts_strict,
    toUInt64(sum(o.open_in_scope)) AS open_in_scope,
    toUInt64(sum(o.overdue)) AS overdue,
    toUInt64(sum(o.overdue_accepted)) AS overdue_accepted,
    toUInt64(length(groupUniqArrayArray(o.exceptions))) AS open_exceptions,
    toUInt64(countIf(hf.stale = 1)) AS stale_hosts
FROM (
    SELECT h.host_id AS host_id, h.dims AS dims, f.framework AS framework, f.title AS title,
        toUInt8(h.last_scan_at < (SELECT stale_before FROM kpi_stale_limit)) AS stale
    FROM kpi_hosts AS h
    CROSS JOIN (SELECT framework, title FROM compliance_frameworks FINAL) AS f
) AS hf
LEFT JOIN (
    SELECT framework, host_id,
        count() AS open_in_scope,
        countIf(state = 'overdue') AS overdue,
        countIf(state = 'accepted' AND sla_state = 'overdue') AS overdue_accepted,
        groupUniqArrayArray(exceptions) AS exceptions
    FROM (
        SELECT f.framework AS framework, e.host_id AS host_id, e.sla_state AS sla_state,
            patchgrid_kpi_state(e.sla_state, e.is_open, e.stale, e.accepted, 1) AS state, x.exceptions AS exceptions
        FROM kpi_exposure_sla AS e
        INNER JOIN (SELECT framework, policy, scope FROM compliance_frameworks FINAL) AS f ON f.policy = e.policy
        LEFT JOIN (
            SELECT host_id, source, advisory_id, groupUniqArray(exception_id) AS exceptions
            FROM finding_exceptions
            GROUP BY host_id, source, advisory_id
        ) AS x ON x.host_id = e.host_id AND x.source = e.source AND x.advisory_id = e.advisory_id
        -- Only open exposures bear on the posture (resolved ones are the
        -- trend's): at fleet scale most exposures are resolved.
        WHERE e.is_open = 1 AND (f.scope = 'all' OR e.kev = 1)
    )
    GROUP BY framework, host_id
) AS o ON o.framework = hf.framework AND o.host_id = hf.host_id
ARRAY JOIN hf.dims AS d
GROUP BY framework, title, dimension, dim_value
SETTINGS join_use_nulls = 0;

CREATE TABLE IF NOT EXISTS compliance_posture_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM compliance_posture_live;
CREATE VIEW IF NOT EXISTS compliance_posture AS SELECT * FROM compliance_posture_snapshot;

-- compliance_posture_trend_live: one row per (framework, breakdown, day)
-- on which an exposure in the framework's scope became overdue or stopped
-- being overdue, at the end of that day (UTC):
--   became_overdue             exposures whose deadline passed that day
--                              (toDate(sla_deadline))
--   stopped_overdue            overdue exposures resolved that day
--   overdue_at_end             exposures overdue at the end of the day
--   noncompliant_hosts_at_end  hosts with at least one of them
-- Exceptions and staleness are not applied (both are states of the
-- refresh's now; the trail of past exceptions is the audit log): the trend
-- counts every overdue exposure on every host. A day
-- without change has no row: carry the last values over. An exposure
-- resolved on the day its deadline passed was never overdue at a day's end.
CREATE VIEW IF NOT EXISTS compliance_posture_trend_live AS
SELECT framework, dimension, dim_value, day, became_overdue, stopped_overdue,
    sum(became_overdue - stopped_overdue) OVER w AS overdue_at_end,
    sum(hosts_in - hosts_out) OVER w AS noncompliant_hosts_at_end
FROM (
    SELECT framework, d.1 AS dimension, d.2 AS dim_value, day,
        toInt64(sum(ups)) AS became_overdue, toInt64(sum(downs)) AS stopped_overdue,
        toInt64(countIf(turn > 0)) AS hosts_in, toInt64(countIf(turn < 0)) AS hosts_out
    FROM (
        -- Per host and day: the change of its overdue count, and whether
        -- the host turned non-compliant (+1) or compliant again (-1).
        SELECT framework, host_id, dims, day, ups, downs,
            toInt8(running > 0) - toInt8(running - (ups - downs) > 0) AS turn
        FROM (
            SELECT framework, host_id, dims, day, ups, downs,
                sum(ups - downs) OVER (PARTITION BY framework, host_id ORDER BY day
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
            FROM (
                SELECT framework, host_id, any(dims) AS dims, ev.1 AS day,
                    toInt64(sum(ev.2)) AS ups, toInt64(sum(ev.3)) AS downs
                FROM (
                    SELECT f.framework AS framework, e.host_id AS host_id, e.dims AS dims, e.is_open AS is_open,
                        toDate(e.sla_deadline, 'UTC') AS from_day, toDate(e.resolved_at, 'UTC') AS to_day
                    FROM kpi_exposure_sla AS e
                    INNER JOIN (SELECT framework, policy, scope FROM compliance_frameworks FINAL) AS f ON f.policy = e.policy
                    WHERE (f.scope = 'all' OR e.kev = 1)
                      AND (e.sla_state = 'overdue'
                           OR (e.sla_state = 'missed' AND toDate(e.resolved_at, 'UTC') > toDate(e.sla_deadline, 'UTC')))
                )
                ARRAY JOIN if(is_open = 1, [(from_day, 1, 0)], [(from_day, 1, 0), (to_day, 0, 1)]) AS ev
                GROUP BY framework, host_id, day
            )
        )
    )
    ARRAY JOIN dims AS d
    GROUP BY framework, dimension, dim_value, day
)
WINDOW w AS (PARTITION BY framework, dimension, dim_value ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

CREATE TABLE IF NOT EXISTS compliance_posture_trend_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM compliance_posture_trend_live;
CREATE VIEW IF NOT EXISTS compliance_posture_trend AS SELECT * FROM compliance_posture_trend_snapshot;
