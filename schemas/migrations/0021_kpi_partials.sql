-- patchgrid:min-server 23.8
-- KPI snapshots from per-group partial aggregates (issue 16). Same columns,
-- order and meaning as 0016 and 0019; only how they are computed changes.
--
-- 0016's KPI views doubled every exposure (ARRAY JOIN ['honoured',
-- 'ignored']) and then fanned each copy out to its ~5 breakdowns (ARRAY
-- JOIN dims) before aggregating with uniqExact: 15.6M exposures at `make
-- run` size became ~150M rows per view. Here each view first aggregates the
-- exposures once by the columns its figures depend on: the host's group
-- columns (ring, owner, os, criticality, from which patchgrid_kpi_dims
-- builds the breakdowns), the row's keys (severity, kev, ...) and the state
-- inputs (is_open, stale, accepted), keeping distinct counts as
-- uniqExact*State. Only those partial rows (thousands) are doubled for the
-- two exception readings and fanned out to the breakdowns, and merged with
-- -Merge. Counts and distinct counts are exact in both forms, so the
-- figures are the same. analytics/refresh's differential test holds each
-- KPI and posture view here to its 0016/0019 definition on the same
-- tables; the exception views (below) are held to hand-worked figures by
-- analytics/kpi's and analytics/compliance's tests.

-- kpi_open_exposure_live: 0016's columns and meaning.
DROP VIEW IF EXISTS kpi_open_exposure_live;
CREATE VIEW IF NOT EXISTS kpi_open_exposure_live AS
SELECT d.1 AS dimension, d.2 AS dim_value, severity, kev, epss_band,
    toUInt64(sumIf(n, state != 'accepted')) AS open_exposures,
    uniqExactMergeIf(host_set, state != 'accepted') AS hosts,
    uniqExactMergeIf(advisory_set, state != 'accepted') AS advisories,
    toUInt64(sumIf(n, state = 'accepted')) AS accepted,
    toUInt64(sumIf(n, state = 'stale')) AS stale,
    uniqExactMergeIf(host_set, state = 'stale') AS stale_hosts,
    exceptions
FROM (
    SELECT ring, owner, os, criticality, severity, kev, epss_band, n, host_set, advisory_set, exceptions,
        patchgrid_kpi_state('open', 1, stale, accepted, exceptions = 'honoured') AS state
    FROM (
        SELECT ring, owner, os, criticality, severity, kev, epss_band, stale, accepted,
            count() AS n, uniqExactState(host_id) AS host_set, uniqExactState(tuple(source, advisory_id)) AS advisory_set
        FROM kpi_exposures
        WHERE is_open = 1
        GROUP BY ring, owner, os, criticality, severity, kev, epss_band, stale, accepted
    )
    ARRAY JOIN ['honoured', 'ignored'] AS exceptions
)
ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
GROUP BY dimension, dim_value, severity, kev, epss_band, exceptions;

-- kpi_sla_compliance_live: 0016's columns and meaning. A partial row's
-- stale_host_set holds its hosts' open exposures on stale hosts, which are
-- 'stale' under both readings.
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
            count() AS n, uniqExactIfState(host_id, is_open = 1 AND stale = 1) AS stale_host_set
        FROM kpi_exposure_sla
        GROUP BY policy, ring, owner, os, criticality, severity, sla_state, is_open, stale, accepted
    )
    ARRAY JOIN ['honoured', 'ignored'] AS exceptions
)
ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
ARRAY JOIN [severity, 'all'] AS sev
GROUP BY policy, dimension, dim_value, severity, exceptions;

-- kpi_remediation_rate_live: 0016's columns and meaning; the exposures are
-- grouped once before the two readings.
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
            toUInt8(is_open = 0 AND resolved_at > now() - toIntervalDay(30)) AS recent, count() AS n
        FROM exposure_risk
        GROUP BY ring, owner, os, criticality, risk_level, is_open, stale, accepted, recent
    )
    ARRAY JOIN ['honoured', 'ignored'] AS exceptions
)
ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
GROUP BY dimension, dim_value, risk_level, exceptions;

-- kpi_exposure_window_live: 0016's columns and meaning; the exposures are
-- grouped once (by window) before the two readings.
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
        SELECT ring, owner, os, criticality, severity, is_open, window_days, n, exceptions,
            toUInt8(patchgrid_kpi_state('', is_open, stale, accepted, exceptions = 'honoured') = 'accepted') AS acc
        FROM (
            SELECT ring, owner, os, criticality, severity, is_open, window_days, stale, accepted, count() AS n
            FROM kpi_exposures
            GROUP BY ring, owner, os, criticality, severity, is_open, window_days, stale, accepted
        )
        ARRAY JOIN ['honoured', 'ignored'] AS exceptions
    )
    ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
    ARRAY JOIN [severity, 'all'] AS sev
    ARRAY JOIN ['all', multiIf(acc = 1, 'accepted', is_open = 1, 'open', 'resolved')] AS st
    GROUP BY dimension, dim_value, severity, state, exceptions
);

-- The exception views (0016), same columns and meaning, with each join's
-- small side (the exceptions, the findings they name) built as its hash
-- table: ClickHouse does not read a join's streamed side when the built
-- one is empty, so without approved exceptions the chain costs little.
-- 0016's forms built kpi_advisories (every advisory record, ~20 s at
-- `make run` size on a loaded machine) and host and segment tables as hash
-- tables, and finding_risk, exposure_facts (exposure_exceptions) and the
-- posture each read the chain one to three times.
DROP VIEW IF EXISTS exception_targets;
CREATE VIEW IF NOT EXISTS exception_targets AS
SELECT e.exception_id AS exception_id, e.scope AS scope, e.host AS ex_host, e.package AS ex_package,
    e.sel_ring AS sel_ring, e.sel_owner AS sel_owner, e.sel_os AS sel_os, e.sel_criticality AS sel_criticality,
    e.sel_internet_facing AS sel_internet_facing, e.sel_hostname_like AS sel_hostname_like,
    e.owner AS owner, e.expires_at AS expires_at, v.source AS source, v.advisory_id AS advisory_id
FROM (
    SELECT source, advisory_id, arrayJoin(arrayDistinct(arrayConcat([advisory_id], cves))) AS vuln_id FROM kpi_advisories
    UNION ALL
    SELECT DISTINCT source, advisory_id, advisory_id AS vuln_id FROM eol_exposures
) AS v
INNER JOIN (SELECT * FROM exceptions_current WHERE effective_status = 'approved') AS e ON v.vuln_id = e.advisory;

DROP VIEW IF EXISTS exception_target_findings;
CREATE VIEW IF NOT EXISTS exception_target_findings AS
SELECT l.host_id AS host_id, h.hostname AS hostname, h.ring AS ring, h.owner AS owner, h.os AS os,
    h.criticality AS criticality, h.internet_facing AS internet_facing,
    l.source AS source, l.advisory_id AS advisory_id, l.name AS package
FROM kpi_hosts AS h
INNER JOIN (
    SELECT s.host_id AS host_id, s.kernel_running AS kernel_running, m.source AS source, m.advisory_id AS advisory_id,
        m.name AS name, m.version AS version, m.arch AS arch
    FROM (SELECT host_id, inventory_hash, kernel_running FROM host_segments FINAL WHERE is_last = 1) AS s
    INNER JOIN (
        SELECT inventory_hash, source, advisory_id, name, version, arch
        FROM match_inventory_findings FINAL
        WHERE (source, advisory_id) IN (SELECT source, advisory_id FROM exception_targets)
          AND (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0)
        UNION ALL
        SELECT inventory_hash, source, advisory_id, name, version, arch FROM eol_inventory_findings
        WHERE (source, advisory_id) IN (SELECT source, advisory_id FROM exception_targets)
    ) AS m ON m.inventory_hash = s.inventory_hash
) AS l ON l.host_id = h.host_id
WHERE patchgrid_kernel_state(l.name, l.version, l.arch, l.kernel_running) != 'not_running'
GROUP BY host_id, hostname, ring, owner, os, criticality, internet_facing, source, advisory_id, package;

DROP VIEW IF EXISTS exception_coverage;
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

-- compliance_posture_live: 0019's columns and meaning. The exceptions
-- covering each host's open exposures in scope are gathered apart, joining
-- the few covered findings (finding_exceptions, built as the hash table)
-- instead of LEFT JOINing every open exposure of every framework to them.
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
            count() AS open_in_scope,
            countIf(state = 'overdue') AS overdue,
            countIf(state = 'accepted' AND sla_state = 'overdue') AS overdue_accepted,
            CAST([], 'Array(String)') AS exceptions
        FROM (
            SELECT f.framework AS framework, e.host_id AS host_id, e.sla_state AS sla_state,
                patchgrid_kpi_state(e.sla_state, e.is_open, e.stale, e.accepted, 1) AS state
            FROM kpi_exposure_sla AS e
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
