-- patchgrid:min-server 23.8
-- SLA KPIs over groups of exposures (issue 16: a refresh in seconds).
-- kpi_sla_compliance, kpi_patch_coverage, compliance_posture and
-- compliance_posture_trend read the clock (an open exposure is overdue
-- once now passes its deadline), and kpi_exposure_window an open
-- exposure's window (it ends at the refresh), so every refresh computes
-- them again;
-- they did so from kpi_exposure_sla, one row per exposure and SLA policy
-- (47M rows at `make run` size for 15.6M exposures), whose SLA state was
-- worked out per row: 51 s of a 100,000-host refresh for
-- kpi_sla_compliance alone. But an exposure's SLA state and deadline
-- depend only on its host, severity, open, accepted, fix and KEV flags,
-- clock start and resolution time, and its window on those and its first
-- sighting; a host's exposures share these (its clock starts at its first
-- scan of them): 15.6M exposures fall into 34,000 such groups at `make
-- run` size.
--   exposure_groups_live  the exposures of kpi_exposures counted (n) per
--       group equal in all of those; ring, owner, os, criticality and
--       stale are the host's (the same on each of its exposures). It reads
--       neither the clock nor another table than kpi_exposures' own, so a
--       refresh copies it (exposure_groups_snapshot) like the KPI
--       snapshots computed from exposure_base alone: only when
--       exposure_base changed (0028), before the KPI snapshots, a range of
--       hosts at a time.
--   kpi_exposure_sla_groups  the groups with each SLA policy's deadline
--       and state worked out once per group.
-- The five views keep their columns, rows and meaning, counting n
-- exposures where they counted one. The refresh's differential test holds
-- each to its previous definition (0016, 0019, 0021).
-- kpi_exposure_window_live works out each group's window as kpi_exposures
-- does each exposure's (0026): open ones end at the refresh
-- (host_facts.as_of), resolved ones when resolved.

CREATE VIEW IF NOT EXISTS exposure_groups_live AS
SELECT host_id, any(ring) AS ring, any(owner) AS owner, any(os) AS os, any(criticality) AS criticality, any(stale) AS stale,
    severity, is_open, accepted, fix_available, kev, kev_due_date, clock_start, resolved_at, first_seen, count() AS n
FROM kpi_exposures
GROUP BY host_id, severity, is_open, accepted, fix_available, kev, kev_due_date, clock_start, resolved_at, first_seen;

CREATE TABLE IF NOT EXISTS exposure_groups_snapshot
ENGINE = MergeTree ORDER BY host_id
EMPTY AS SELECT * FROM exposure_groups_live;

CREATE VIEW IF NOT EXISTS kpi_exposure_sla_groups AS
SELECT g.host_id AS host_id, g.ring AS ring, g.owner AS owner, g.os AS os, g.criticality AS criticality,
    patchgrid_kpi_dims(g.ring, g.owner, g.os, g.criticality) AS dims, g.severity AS severity,
    g.is_open AS is_open, g.stale AS stale, g.accepted AS accepted, g.fix_available AS fix_available,
    g.kev AS kev, g.kev_due_date AS kev_due_date, g.clock_start AS clock_start, g.resolved_at AS resolved_at, g.n AS n,
    p.policy AS policy, p.sla_days AS sla_days,
    toUInt8(p.kev_due_date = 1 AND g.kev = 1 AND g.kev_due_date > toDate(0)) AS kev_deadline,
    patchgrid_sla_deadline(kev_deadline, g.kev_due_date, g.clock_start, p.sla_days) AS sla_deadline,
    patchgrid_sla_state(g.is_open, g.fix_available, g.resolved_at, sla_deadline, now()) AS sla_state
FROM exposure_groups_snapshot AS g
INNER JOIN (SELECT * FROM sla_policy FINAL) AS p ON p.severity = g.severity;

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
    SELECT policy, ring, owner, os, criticality, severity, n, stale_host_set, exceptions,
        patchgrid_kpi_state(sla_state, is_open, stale, accepted, exceptions = 'honoured') AS state
    FROM (
        SELECT policy, ring, owner, os, criticality, severity, sla_state, is_open, stale, accepted,
            sum(n) AS n, uniqExactIfState(host_id, is_open = 1 AND stale = 1) AS stale_host_set
        FROM kpi_exposure_sla_groups
        GROUP BY policy, ring, owner, os, criticality, severity, sla_state, is_open, stale, accepted
    )
    ARRAY JOIN ['honoured', 'ignored'] AS exceptions
)
ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
ARRAY JOIN [severity, 'all'] AS sev
GROUP BY policy, dimension, dim_value, severity, exceptions;

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
    SELECT policy, host_id, exceptions, sumIf(n, state = 'overdue') AS overdue, sumIf(n, state = 'accepted') AS accepted
    FROM (
        SELECT policy, host_id, exceptions, n, patchgrid_kpi_state(sla_state, is_open, stale, accepted, exceptions = 'honoured') AS state
        FROM kpi_exposure_sla_groups
        ARRAY JOIN ['honoured', 'ignored'] AS exceptions
        WHERE sla_state = 'overdue'
    )
    GROUP BY policy, host_id, exceptions
) AS o ON o.policy = hp.policy AND o.host_id = hp.host_id AND o.exceptions = hp.exceptions
ARRAY JOIN hp.dims AS d
GROUP BY policy, dimension, dim_value, exceptions
SETTINGS join_use_nulls = 0;

-- compliance_posture_live: 0021's, its open exposures per (framework, host)
-- counted from the groups; the exceptions in force still from each
-- exposure (they are per advisory).
DROP VIEW IF EXISTS compliance_posture_live;
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
    SELECT framework, host_id, sum(open_in_scope) AS open_in_scope, sum(overdue) AS overdue,
        sum(overdue_accepted) AS overdue_accepted, groupUniqArrayArray(exceptions) AS exceptions
    FROM (
        SELECT framework, host_id,
            sum(n) AS open_in_scope,
            sumIf(n, state = 'overdue') AS overdue,
            sumIf(n, state = 'accepted' AND sla_state = 'overdue') AS overdue_accepted,
            CAST([], 'Array(String)') AS exceptions
        FROM (
            SELECT f.framework AS framework, e.host_id AS host_id, e.sla_state AS sla_state, e.n AS n,
                patchgrid_kpi_state(e.sla_state, e.is_open, e.stale, e.accepted, 1) AS state
            FROM kpi_exposure_sla_groups AS e
            INNER JOIN (SELECT framework, policy, scope FROM compliance_frameworks FINAL) AS f ON f.policy = e.policy
            -- Only open exposures bear on the posture (resolved ones are
            -- the trend's): at fleet scale most exposures are resolved.
            WHERE e.is_open = 1 AND (f.scope = 'all' OR e.kev = 1)
        )
        GROUP BY framework, host_id
        UNION ALL
        SELECT f.framework AS framework, e.host_id AS host_id, 0, 0, 0, groupUniqArray(x.exception_id) AS exceptions
        FROM kpi_exposure_sla AS e
        INNER JOIN (SELECT framework, policy, scope FROM compliance_frameworks FINAL) AS f ON f.policy = e.policy
        INNER JOIN (SELECT DISTINCT host_id, source, advisory_id, exception_id FROM finding_exceptions) AS x
            ON x.host_id = e.host_id AND x.source = e.source AND x.advisory_id = e.advisory_id
        WHERE e.is_open = 1 AND (f.scope = 'all' OR e.kev = 1)
        GROUP BY framework, host_id
    )
    GROUP BY framework, host_id
) AS o ON o.framework = hf.framework AND o.host_id = hf.host_id
ARRAY JOIN hf.dims AS d
GROUP BY framework, title, dimension, dim_value
SETTINGS join_use_nulls = 0;

DROP VIEW IF EXISTS compliance_posture_trend_live;
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
                    toInt64(sum(ev.2 * n)) AS ups, toInt64(sum(ev.3 * n)) AS downs
                FROM (
                    SELECT f.framework AS framework, e.host_id AS host_id, e.dims AS dims, e.is_open AS is_open, e.n AS n,
                        toDate(e.sla_deadline, 'UTC') AS from_day, toDate(e.resolved_at, 'UTC') AS to_day
                    FROM kpi_exposure_sla_groups AS e
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

DROP VIEW IF EXISTS kpi_exposure_window_live;
CREATE VIEW IF NOT EXISTS kpi_exposure_window_live AS
WITH (SELECT max(as_of) FROM host_facts) AS refreshed
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
        SELECT ring, owner, os, criticality, severity, is_open, window_days, n, exceptions,
            toUInt8(patchgrid_kpi_state('', is_open, stale, accepted, exceptions = 'honoured') = 'accepted') AS acc
        FROM (
            SELECT ring, owner, os, criticality, severity, is_open, window_days, stale, accepted, sum(n) AS n
            FROM (
                SELECT *, (toInt64(if(is_open = 1, assumeNotNull(refreshed), resolved_at)) - toInt64(first_seen)) / 86400 AS window_days
                FROM exposure_groups_snapshot
            )
            GROUP BY ring, owner, os, criticality, severity, is_open, window_days, stale, accepted
        )
        ARRAY JOIN ['honoured', 'ignored'] AS exceptions
    )
    ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
    ARRAY JOIN [severity, 'all'] AS sev
    ARRAY JOIN ['all', multiIf(acc = 1, 'accepted', is_open = 1, 'open', 'resolved')] AS st
    GROUP BY dimension, dim_value, severity, state, exceptions
);
