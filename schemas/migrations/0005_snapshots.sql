-- patchgrid:min-server 23.8
-- Exposure history and the KPI and risk views become tables refreshed by
-- analytics/refresh, so that dashboards, the API and exports read a few
-- precomputed rows instead of replaying every scan against every finding.
-- Old servers keep 0003's exposure_history, computed from every scan when
-- read, and have no KPI views at all (0004 is skipped there too).
--
-- Freshness: host_findings (current findings) stays live; everything below
-- is as of the last refresh (refresh_runs.finished_at), which `patchgrid
-- match --fleet` and `patchgrid run` do after matching. Clock-dependent
-- columns (open windows, SLA state, age past SLA) are evaluated at that
-- refresh. Each X below also exists as X_live, the same definition computed
-- when read: slow at fleet scale, and what the refresh copies into X.

-- A host's scans collapsed into segments: maximal runs of consecutive scans
-- (by scanned_at) with the same inventory_hash and kernel_running. Exposure
-- can only change at a segment boundary, and a host has a handful of
-- segments where it has hundreds of scans (heartbeats repeat the inventory).
-- Scans of one host in the same second count once (the greatest scan_id).
--   seg_idx    1.. in time order. Rewriting a host's segments marks its
--              rows of earlier versions deleted (a later scan in the same
--              second can merge two segments into one)
--   seg_first, seg_last  its first and last scan
--   next_scan  the first scan of the next segment; epoch 0 for the last one
--   scans      number of scans in it; is_last = 1 for the host's latest
CREATE TABLE IF NOT EXISTS host_segments (
    host_id        String,
    seg_idx        UInt32,
    seg_first      DateTime,
    seg_last       DateTime,
    next_scan      DateTime,
    scans          UInt32,
    is_last        UInt8,
    inventory_hash String,
    kernel_running String,
    version        UInt64,
    deleted        UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (host_id, seg_idx);

-- Exposure history per (host, advisory), materialized: the columns and
-- meaning of 0003's exposure_history (see there), computed from
-- host_segments and match_inventory_findings of current advisory records.
-- A refresh rewrites the rows of the hosts and advisories that changed
-- (version = the refresh's) and marks rows that no longer hold deleted.
CREATE TABLE IF NOT EXISTS exposures (
    host_id       String,
    source        String,
    advisory_id   String,
    first_seen    DateTime,
    last_seen     DateTime,
    resolved_at   DateTime,
    reopened      UInt32,
    exposed_now   UInt8,
    exposed_scans UInt64,
    version       UInt64,
    deleted       UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (host_id, source, advisory_id);

DROP VIEW IF EXISTS exposure_history;
CREATE VIEW IF NOT EXISTS exposure_history AS
SELECT host_id, source, advisory_id, first_seen, last_seen, resolved_at, reopened, exposed_now, exposed_scans
FROM exposures FINAL;

-- How an installed package relates to the running kernel: 0003's
-- host_findings.kernel_state ('' not a kernel image, 'unknown' no running
-- kernel reported, 'running', 'not_running': an installed image that
-- exposes the host only after a reboot into it, so exposure history leaves
-- it out). Arguments: the package's name, version and arch, and the scan's
-- kernel_running (uname -r).
CREATE OR REPLACE FUNCTION patchgrid_kernel_state AS (name, version, arch, kernel_running) ->
    multiIf(
        NOT (match(name, '^linux-image-[0-9]') OR name IN ('kernel', 'kernel-core') OR match(name, '^linux-(lts|virt|edge|rpi|rpi2|rpi4)$')), '',
        kernel_running = '', 'unknown',
        name = concat('linux-image-', kernel_running)
            OR concat(replaceRegexpOne(version, '^[0-9]+:', ''), '.', arch) = kernel_running
            OR concat(replaceRegexpOne(version, '-r([0-9]+)$', '-\\1'), '-', substring(name, 7)) = kernel_running, 'running',
        'not_running');

-- 0003's exposure_history under another name: the same columns computed
-- from every scan when read. Slow at fleet scale; tests hold the
-- materialized table to it. One difference to 0003: of several scans of a
-- host in the same second, only the one with the greatest scan_id counts
-- (0003 counted the second as exposed when any of them was), as in
-- host_segments.
CREATE VIEW IF NOT EXISTS exposure_history_live AS
SELECT host_id, source, advisory_id,
    exposed[1] AS first_seen,
    exposed[length(exposed)] AS last_seen,
    arrayFirst(t -> t > last_seen, scan_times) AS resolved_at,
    arrayCount(t -> NOT has(exposed, scan_times[indexOf(scan_times, t) - 1]), arraySlice(exposed, 2)) AS reopened,
    toUInt8(last_seen = scan_times[length(scan_times)]) AS exposed_now,
    length(exposed) AS exposed_scans
FROM (
    SELECT host_id, source, advisory_id, arraySort(groupUniqArray(scanned_at)) AS exposed
    FROM (
        SELECT host_id, scanned_at, argMax(inventory_hash, scan_id) AS inventory_hash, argMax(kernel_running, scan_id) AS kernel_running
        FROM scans FINAL
        GROUP BY host_id, scanned_at
    ) AS all_scans
    ALL INNER JOIN (
        SELECT inventory_hash, source, advisory_id, name, version, arch
        FROM (
            SELECT inventory_hash, source, advisory_id, record_hash, name, version, arch
            FROM match_inventory_findings FINAL
        ) AS findings
        ALL INNER JOIN (
            SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0
        ) AS current_advisories USING (source, advisory_id, record_hash)
    ) AS inventory_findings USING (inventory_hash)
    WHERE patchgrid_kernel_state(name, version, arch, kernel_running) != 'not_running'
    GROUP BY host_id, source, advisory_id
) AS exposures
ALL INNER JOIN (
    SELECT host_id, arraySort(groupUniqArray(scanned_at)) AS scan_times FROM scans FINAL GROUP BY host_id
) AS host_scans USING (host_id);

-- One row per refresh (analytics/refresh): what it rewrote and when.
-- watermark: the greatest scans.received_at it saw; the next incremental
-- refresh revisits hosts with scans received from an hour before it.
CREATE TABLE IF NOT EXISTS refresh_runs (
    refresh_id  String,
    mode        String,   -- full, incremental
    started_at  DateTime,
    finished_at DateTime,
    watermark   DateTime,
    hosts       UInt64,   -- hosts whose segments and exposures were rewritten
    advisories  UInt64,   -- advisories whose exposures were rewritten on every host
    exposures   UInt64,   -- exposure rows written (including deletions)
    error       String
) ENGINE = MergeTree
ORDER BY (started_at, refresh_id);

-- What the refreshes have taken in, to find what changed since: advisory
-- records and inventories the match job finished (match_done_*) that are
-- not here yet are new to exposure history.
CREATE TABLE IF NOT EXISTS refresh_done_advisories (
    source      String,
    advisory_id String,
    record_hash String,
    done_at     DateTime
) ENGINE = ReplacingMergeTree(done_at)
ORDER BY (source, advisory_id, record_hash);

CREATE TABLE IF NOT EXISTS refresh_done_inventories (
    inventory_hash String,
    done_at        DateTime
) ENGINE = ReplacingMergeTree(done_at)
ORDER BY inventory_hash;

-- One refresh's work list, written at its start. Internal to analytics/refresh.
CREATE TABLE IF NOT EXISTS refresh_pending_inventories (
    refresh_id     String,
    inventory_hash String
) ENGINE = MergeTree
ORDER BY (refresh_id, inventory_hash);

CREATE TABLE IF NOT EXISTS refresh_pending_hosts (
    refresh_id String,
    host_id    String
) ENGINE = MergeTree
ORDER BY (refresh_id, host_id);

CREATE TABLE IF NOT EXISTS refresh_pending_advisories (
    refresh_id  String,
    source      String,
    advisory_id String,
    record_hash String
) ENGINE = MergeTree
ORDER BY (refresh_id, source, advisory_id);

-- The breakdown keys of a host (column dims, see 0004's kpi_hosts) as a
-- function, so that kpi_hosts and the KPI definitions below, which group by
-- the four host columns before breaking down, build them the same way.
-- ClickHouse functions belong to the server, not to a database.
CREATE OR REPLACE FUNCTION patchgrid_kpi_dims AS (ring, owner, os, criticality) ->
    [('all', ''), ('ring', ring), ('owner', owner), ('os', os), ('criticality', toString(criticality))];

DROP VIEW IF EXISTS kpi_hosts;
CREATE VIEW IF NOT EXISTS kpi_hosts AS
SELECT host_id,
    latest.1 AS hostname, latest.2 AS owner, latest.3 AS ring,
    latest.4 AS criticality, latest.5 AS internet_facing,
    if(latest.6 != '', latest.6, trimBoth(concat(latest.7, ' ', latest.8))) AS os,
    latest.9 AS last_scan_at,
    patchgrid_kpi_dims(ring, owner, os, criticality) AS dims
FROM (
    SELECT host_id,
        argMax((hostname, owner, ring, criticality, internet_facing, os_ecosystem, os_id, os_version, scanned_at),
               (scanned_at, scan_id)) AS latest
    FROM scans
    GROUP BY host_id
);

-- kpi_exposures: one row per exposure with host and advisory attributes,
-- as of the last refresh (table exposure_facts). Definition:
-- kpi_exposures_live, which is 0004's kpi_exposures (it now reads the
-- materialized exposure_history).
DROP VIEW IF EXISTS kpi_exposures;
CREATE VIEW IF NOT EXISTS kpi_exposures_live AS
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
-- The facts leave out dims, rebuilt when read: an array per exposure is
-- most of what storing and scanning them would cost.
CREATE TABLE IF NOT EXISTS exposure_facts
ENGINE = MergeTree ORDER BY (host_id, source, advisory_id)
EMPTY AS SELECT * EXCEPT (dims) FROM kpi_exposures_live;
CREATE VIEW IF NOT EXISTS kpi_exposures AS
SELECT host_id, hostname, owner, ring, criticality, internet_facing, os,
    patchgrid_kpi_dims(ring, owner, os, criticality) AS dims,
    * EXCEPT (host_id, hostname, owner, ring, criticality, internet_facing, os)
FROM exposure_facts;

-- finding_risk: as of the last refresh (table finding_risk_snapshot); the
-- definition is finding_risk_live, with the columns and meaning of 0004's
-- finding_risk. The open exposures are streamed against the hosts' latest
-- segment and their inventories' findings (0004 built a hash table of every
-- open exposure, several GB at 10,000 hosts), so the package rows are those
-- of the host's latest scan as of the refresh.
DROP VIEW IF EXISTS finding_risk;
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
    r.risk_internet AS risk_internet, r.risk_sla AS risk_sla, r.risk_score AS risk_score, r.risk_level AS risk_level
FROM (SELECT * FROM exposure_risk WHERE is_open = 1) AS r
INNER JOIN (SELECT host_id, inventory_hash, kernel_running FROM host_segments FINAL WHERE is_last = 1) AS l
    ON l.host_id = r.host_id
INNER JOIN (
    SELECT inventory_hash, source, advisory_id, ecosystem, name, version, arch, match_name, match_version, status, fixed
    FROM match_inventory_findings FINAL
    WHERE (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0)
) AS f ON f.inventory_hash = l.inventory_hash AND f.source = r.source AND f.advisory_id = r.advisory_id
WHERE kernel_state != 'not_running';
CREATE TABLE IF NOT EXISTS finding_risk_snapshot
ENGINE = MergeTree ORDER BY (host_id, source, advisory_id)
EMPTY AS SELECT * FROM finding_risk_live;
CREATE VIEW IF NOT EXISTS finding_risk AS SELECT * FROM finding_risk_snapshot;

-- host_risk: as of the last refresh (table host_risk_snapshot); the
-- definition is host_risk_live, with the columns and meaning of 0004's
-- host_risk. 0004's definition.
DROP VIEW IF EXISTS host_risk;
CREATE VIEW IF NOT EXISTS host_risk_live AS
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
CREATE TABLE IF NOT EXISTS host_risk_snapshot
ENGINE = MergeTree ORDER BY host_id
EMPTY AS SELECT * FROM host_risk_live;
CREATE VIEW IF NOT EXISTS host_risk AS SELECT * FROM host_risk_snapshot;

-- kpi_mttr: as of the last refresh (table kpi_mttr_snapshot); the definition
-- is kpi_mttr_live, with the columns and meaning of 0004's kpi_mttr.
-- Exposures are first counted per distinct (ring, owner, os, criticality,
-- severity, duration): the hosts of a fleet share few distinct windows, so the
-- breakdown and the exact median work on far fewer rows. The median is
-- quantileExact's: the value at index floor(0.5 * n) of the sorted
-- durations, read off cumulative counts.
DROP VIEW IF EXISTS kpi_mttr;
CREATE VIEW IF NOT EXISTS kpi_mttr_live AS
SELECT dimension, dim_value, severity, resolved, mttr_days, median_days
FROM (
    SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity,
        toUInt64(sumIf(n, is_open = 0)) AS resolved,
        sumIf(rem * n, is_open = 0) / resolved AS mttr_days,
        arraySort(groupArrayIf((rem, n), is_open = 0)) AS rem_hist,
        if(resolved = 0, nan, rem_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(x -> x.2, rem_hist)))].1) AS median_days
    FROM (
        SELECT ring, owner, os, criticality, severity, is_open, if(is_open = 1, 0, remediation_days) AS rem, count() AS n
        FROM kpi_exposures
        GROUP BY ring, owner, os, criticality, severity, is_open, rem
    )
    ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
    ARRAY JOIN [severity, 'all'] AS sev
    GROUP BY dimension, dim_value, severity
);
CREATE TABLE IF NOT EXISTS kpi_mttr_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_mttr_live;
CREATE VIEW IF NOT EXISTS kpi_mttr AS SELECT * FROM kpi_mttr_snapshot;

-- kpi_time_to_patch: as of the last refresh (table
-- kpi_time_to_patch_snapshot); the definition is kpi_time_to_patch_live,
-- with the columns and meaning of 0004's kpi_time_to_patch. Counted per
-- distinct durations first, as kpi_mttr; medians as there.
DROP VIEW IF EXISTS kpi_time_to_patch;
CREATE VIEW IF NOT EXISTS kpi_time_to_patch_live AS
SELECT dimension, dim_value, severity, resolved, with_fix_date,
    from_publication_avg_days, from_publication_median_days, from_fix_avg_days, from_fix_median_days
FROM (
    SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity,
        toUInt64(sumIf(n, is_open = 0)) AS resolved,
        toUInt64(sumIf(n, has_fix = 1)) AS with_fix_date,
        sumIf(pub * n, is_open = 0) / resolved AS from_publication_avg_days,
        arraySort(groupArrayIf((pub, n), is_open = 0)) AS pub_hist,
        if(resolved = 0, nan, pub_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(x -> x.2, pub_hist)))].1) AS from_publication_median_days,
        sumIf(fix * n, has_fix = 1) / with_fix_date AS from_fix_avg_days,
        arraySort(groupArrayIf((fix, n), has_fix = 1)) AS fix_hist,
        if(with_fix_date = 0, nan, fix_hist[arrayFirstIndex(c -> c > floor(0.5 * with_fix_date), arrayCumSum(arrayMap(x -> x.2, fix_hist)))].1) AS from_fix_median_days
    FROM (
        SELECT ring, owner, os, criticality, severity, is_open, if(is_open = 1, 0, ttp_publication_days) AS pub,
            toUInt8(isFinite(ttp_fix_days)) AS has_fix, if(has_fix = 1, ttp_fix_days, 0) AS fix, count() AS n
        FROM kpi_exposures
        GROUP BY ring, owner, os, criticality, severity, is_open, pub, has_fix, fix
    )
    ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
    ARRAY JOIN [severity, 'all'] AS sev
    GROUP BY dimension, dim_value, severity
);
CREATE TABLE IF NOT EXISTS kpi_time_to_patch_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_time_to_patch_live;
CREATE VIEW IF NOT EXISTS kpi_time_to_patch AS SELECT * FROM kpi_time_to_patch_snapshot;

-- kpi_sla_compliance: as of the last refresh (table
-- kpi_sla_compliance_snapshot); the definition is kpi_sla_compliance_live,
-- with the columns and meaning of 0004's kpi_sla_compliance. Counted per
-- (policy, breakdown keys, severity, state) first.
DROP VIEW IF EXISTS kpi_sla_compliance;
CREATE VIEW IF NOT EXISTS kpi_sla_compliance_live AS
SELECT policy, d.1 AS dimension, d.2 AS dim_value, sev AS severity,
    toUInt64(sum(n)) AS exposures,
    toUInt64(sumIf(n, sla_state = 'met')) AS met,
    toUInt64(sumIf(n, sla_state = 'missed')) AS missed,
    toUInt64(sumIf(n, sla_state = 'overdue')) AS overdue,
    toUInt64(sumIf(n, sla_state = 'open')) AS open_in_sla,
    100 * met / (met + missed + overdue) AS compliance_pct
FROM (
    SELECT policy, ring, owner, os, criticality, severity, sla_state, count() AS n
    FROM kpi_exposure_sla
    GROUP BY policy, ring, owner, os, criticality, severity, sla_state
)
ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
ARRAY JOIN [severity, 'all'] AS sev
GROUP BY policy, dimension, dim_value, severity;
CREATE TABLE IF NOT EXISTS kpi_sla_compliance_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_sla_compliance_live;
CREATE VIEW IF NOT EXISTS kpi_sla_compliance AS SELECT * FROM kpi_sla_compliance_snapshot;

-- kpi_patch_coverage: as of the last refresh (table
-- kpi_patch_coverage_snapshot); the definition is kpi_patch_coverage_live,
-- with the columns and meaning of 0004's kpi_patch_coverage. Only overdue
-- exposures are grouped by host.
DROP VIEW IF EXISTS kpi_patch_coverage;
CREATE VIEW IF NOT EXISTS kpi_patch_coverage_live AS
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
    SELECT policy, host_id, count() AS overdue
    FROM kpi_exposure_sla
    WHERE sla_state = 'overdue'
    GROUP BY policy, host_id
) AS o ON o.policy = hp.policy AND o.host_id = hp.host_id
ARRAY JOIN hp.dims AS d
GROUP BY policy, dimension, dim_value
SETTINGS join_use_nulls = 0;
CREATE TABLE IF NOT EXISTS kpi_patch_coverage_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_patch_coverage_live;
CREATE VIEW IF NOT EXISTS kpi_patch_coverage AS SELECT * FROM kpi_patch_coverage_snapshot;

-- kpi_open_exposure: as of the last refresh (table
-- kpi_open_exposure_snapshot); the definition is kpi_open_exposure_live,
-- with the columns and meaning of 0004's kpi_open_exposure. 0004's
-- definition: it reads open exposures only.
DROP VIEW IF EXISTS kpi_open_exposure;
CREATE VIEW IF NOT EXISTS kpi_open_exposure_live AS
SELECT d.1 AS dimension, d.2 AS dim_value, severity, kev, epss_band,
    count() AS open_exposures,
    uniqExact(host_id) AS hosts,
    uniqExact(source, advisory_id) AS advisories
FROM kpi_exposures
ARRAY JOIN dims AS d
WHERE is_open = 1
GROUP BY dimension, dim_value, severity, kev, epss_band;
CREATE TABLE IF NOT EXISTS kpi_open_exposure_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_open_exposure_live;
CREATE VIEW IF NOT EXISTS kpi_open_exposure AS SELECT * FROM kpi_open_exposure_snapshot;

-- kpi_remediation_rate: as of the last refresh (table
-- kpi_remediation_rate_snapshot); the definition is
-- kpi_remediation_rate_live, with the columns and meaning of 0004's
-- kpi_remediation_rate. Counted per (breakdown keys, risk level, state)
-- first.
DROP VIEW IF EXISTS kpi_remediation_rate;
CREATE VIEW IF NOT EXISTS kpi_remediation_rate_live AS
SELECT d.1 AS dimension, d.2 AS dim_value, risk_level,
    toUInt64(sum(n)) AS exposures,
    toUInt64(sumIf(n, is_open = 0)) AS resolved,
    toUInt64(sumIf(n, is_open = 1)) AS open,
    toUInt64(sumIf(n, recent = 1)) AS resolved_30d,
    100 * resolved / exposures AS remediation_rate_pct,
    100 * resolved_30d / (resolved_30d + open) AS remediation_rate_30d_pct
FROM (
    SELECT ring, owner, os, criticality, risk_level, is_open, toUInt8(is_open = 0 AND resolved_at > now() - toIntervalDay(30)) AS recent, count() AS n
    FROM exposure_risk
    GROUP BY ring, owner, os, criticality, risk_level, is_open, recent
)
ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
GROUP BY dimension, dim_value, risk_level;
CREATE TABLE IF NOT EXISTS kpi_remediation_rate_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_remediation_rate_live;
CREATE VIEW IF NOT EXISTS kpi_remediation_rate AS SELECT * FROM kpi_remediation_rate_snapshot;

-- kpi_exposure_window: as of the last refresh (table
-- kpi_exposure_window_snapshot); the definition is kpi_exposure_window_live,
-- with the columns and meaning of 0004's kpi_exposure_window. Counted per
-- distinct window first; percentiles as quantileExact's (index floor(level *
-- n) of the sorted windows), read off cumulative counts.
DROP VIEW IF EXISTS kpi_exposure_window;
CREATE VIEW IF NOT EXISTS kpi_exposure_window_live AS
SELECT dimension, dim_value, severity, state, exposures, p50_days, p90_days, p95_days, p99_days, max_days
FROM (
    SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity, st AS state,
        toUInt64(sum(n)) AS exposures,
        arraySort(groupArray((window_days, n))) AS win_hist,
        arrayCumSum(arrayMap(x -> x.2, win_hist)) AS win_cum,
        win_hist[arrayFirstIndex(c -> c > floor(0.5 * exposures), win_cum)].1 AS p50_days,
        win_hist[arrayFirstIndex(c -> c > floor(0.9 * exposures), win_cum)].1 AS p90_days,
        win_hist[arrayFirstIndex(c -> c > floor(0.95 * exposures), win_cum)].1 AS p95_days,
        win_hist[arrayFirstIndex(c -> c > floor(0.99 * exposures), win_cum)].1 AS p99_days,
        max(window_days) AS max_days
    FROM (
        SELECT ring, owner, os, criticality, severity, is_open, window_days, count() AS n
        FROM kpi_exposures
        GROUP BY ring, owner, os, criticality, severity, is_open, window_days
    )
    ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
    ARRAY JOIN [severity, 'all'] AS sev
    ARRAY JOIN ['all', if(is_open = 1, 'open', 'resolved')] AS st
    GROUP BY dimension, dim_value, severity, state
);
CREATE TABLE IF NOT EXISTS kpi_exposure_window_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_exposure_window_live;
CREATE VIEW IF NOT EXISTS kpi_exposure_window AS SELECT * FROM kpi_exposure_window_snapshot;

-- kpi_daily_trend: as of the last refresh (table kpi_daily_trend_snapshot);
-- the definition is kpi_daily_trend_live, with the columns and meaning of
-- 0004's kpi_daily_trend. Counted per (breakdown keys, severity, opening and
-- resolution day) first.
DROP VIEW IF EXISTS kpi_daily_trend;
CREATE VIEW IF NOT EXISTS kpi_daily_trend_live AS
SELECT dimension, dim_value, severity, day, opened, resolved,
    sum(opened - resolved) OVER (PARTITION BY dimension, dim_value, severity ORDER BY day
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS open_at_end
FROM (
    SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity, ev.1 AS day,
        toInt64(sum(ev.2 * n)) AS opened, toInt64(sum(ev.3 * n)) AS resolved
    FROM (
        SELECT ring, owner, os, criticality, severity, is_open, toDate(first_seen, 'UTC') AS opened_day, toDate(resolved_at, 'UTC') AS resolved_day, count() AS n
        FROM kpi_exposures
        GROUP BY ring, owner, os, criticality, severity, is_open, opened_day, resolved_day
    )
    ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
    ARRAY JOIN [severity, 'all'] AS sev
    ARRAY JOIN if(is_open = 1,
        [(opened_day, 1, 0)],
        [(opened_day, 1, 0), (resolved_day, 0, 1)]) AS ev
    GROUP BY dimension, dim_value, severity, day
);
CREATE TABLE IF NOT EXISTS kpi_daily_trend_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_daily_trend_live;
CREATE VIEW IF NOT EXISTS kpi_daily_trend AS SELECT * FROM kpi_daily_trend_snapshot;
