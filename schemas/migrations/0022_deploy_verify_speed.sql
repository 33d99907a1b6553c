-- patchgrid:min-server 23.8
-- Verification and gate evaluation at fleet scale (issue 13's bench goal:
-- 100,000 actions in at most 5 s). 0014's action_verification_scans and
-- action_states, redefined with the same columns, the same rows and the
-- same meaning (0014 documents them; analytics/deploy's tests hold the
-- states and reasons, and a differential test holds these definitions to
-- 0014's on a generated fleet). What changed, and why:
--   * Scans that ended before the earliest successful outcome cannot be
--     evidence for any action (evidence is a scan after the outcome's
--     finished_at), so neither they nor their inventories are read: a
--     fleet that has scanned daily for months reads the last days only.
--   * The package rows and the findings of an inventory come from one
--     grouped read joined once (0014 joined two), each set written once.
--   * The verdict of an action's latest scan is taken per column
--     (argMax of each) instead of as one tuple, which ClickHouse stores
--     value by value.
--   * Joins build one hash table (join_algorithm 'hash'): the default
--     picks the parallel hash join, which on a small, shared machine cost
--     a quarter more CPU for these joins of one row per action.
-- Like 0014's, these need a current ClickHouse; views that read them
-- (0015's deploy_actions and the deployment KPIs) follow by name.

DROP VIEW IF EXISTS action_verification_scans;
CREATE VIEW IF NOT EXISTS action_verification_scans AS
WITH succeeded AS (
    SELECT o.plan_id AS plan_id, o.action_id AS action_id, o.host_id AS host_id, o.finished_at AS finished_at,
        a.ecosystem AS ecosystem, a.package AS package, a.target_version AS target_version, a.advisories AS advisories
    FROM (SELECT plan_id, action_id, host_id, finished_at FROM outcomes_current WHERE status = 'succeeded') AS o
    INNER JOIN (SELECT plan_id, action_id, ecosystem, package, target_version, advisories FROM plan_actions) AS a
        ON a.plan_id = o.plan_id AND a.action_id = o.action_id
),
-- The scans that may be evidence: of a host with a successful outcome,
-- after the earliest one (a superset, read without aggregating outcomes).
evidence_scans AS (
    SELECT host_id, scanned_at, scan_id, inventory_hash, kernel_running
    FROM scans
    WHERE host_id IN (SELECT host_id FROM outcomes WHERE status = 'succeeded')
        AND scanned_at > (SELECT min(finished_at) FROM outcomes WHERE status = 'succeeded')
),
post AS (
    SELECT s.plan_id AS plan_id, s.action_id AS action_id, s.ecosystem AS ecosystem, s.package AS package,
        s.target_version AS target_version, s.advisories AS advisories,
        sc.scanned_at AS scanned_at, sc.inventory_hash AS inventory_hash, sc.kernel_running AS kernel_running
    FROM succeeded AS s
    INNER JOIN (
        SELECT host_id, scanned_at, argMax(inventory_hash, scan_id) AS inventory_hash, argMax(kernel_running, scan_id) AS kernel_running
        FROM evidence_scans
        GROUP BY host_id, scanned_at
    ) AS sc ON sc.host_id = s.host_id
    WHERE sc.scanned_at > s.finished_at
),
-- Per inventory and planned package: its rows (k = 0: v_key, version,
-- arch) and its findings of current advisory records (k = 1:
-- 'source/advisory_id', version, arch).
evidence AS (
    SELECT inventory_hash, ecosystem, name,
        groupArrayIf((key, version, arch), k = 0) AS pkg_rows,
        groupArrayIf((key, version, arch), k = 1) AS found
    FROM (
        SELECT 0 AS k, inventory_hash, ecosystem, name, v_key AS key, version, arch
        FROM inventory_packages
        WHERE (ecosystem, name) IN (SELECT ecosystem, package FROM plan_actions)
            AND inventory_hash IN (SELECT inventory_hash FROM evidence_scans)
        UNION ALL
        SELECT 1, inventory_hash, ecosystem, name, concat(source, '/', advisory_id), version, arch
        FROM match_inventory_findings FINAL
        WHERE (ecosystem, name) IN (SELECT ecosystem, package FROM plan_actions)
            AND inventory_hash IN (SELECT inventory_hash FROM evidence_scans)
            AND (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0)
    )
    GROUP BY inventory_hash, ecosystem, name
),
targets AS (
    SELECT ecosystem, fixed AS target_version, any(fixed_key) AS target_key
    FROM affected_ranges
    WHERE fixed != '' AND (ecosystem, fixed) IN (SELECT ecosystem, target_version FROM plan_actions)
    GROUP BY ecosystem, fixed
)
SELECT p.plan_id AS plan_id, p.action_id AS action_id, p.scanned_at AS scanned_at,
    p.inventory_hash AS inventory_hash, p.kernel_running AS kernel_running,
    t.target_key AS target_key,
    arrayFilter(r -> patchgrid_kernel_state(p.package, r.2, r.3, p.kernel_running) != 'not_running', e.pkg_rows) AS active,
    toUInt32(length(active)) AS pkg_active,
    toUInt32(arrayCount(r -> r.1 < t.target_key, active)) AS pkg_below,
    arrayStringConcat(arrayDistinct(arrayMap(r -> r.2, arrayFilter(r -> r.1 < t.target_key, active))), ', ') AS below_versions,
    arrayFilter(x -> has(p.advisories, x.1) AND patchgrid_kernel_state(p.package, x.2, x.3, p.kernel_running) != 'not_running', e.found) AS open_found,
    arraySort(arrayDistinct(arrayMap(x -> x.1, open_found))) AS open_advisories,
    toUInt8(arrayExists(x -> patchgrid_kernel_state(p.package, x.2, x.3, p.kernel_running) = 'running', open_found)) AS kernel_open,
    toUInt8(t.target_key != '' AND pkg_below = 0 AND length(open_advisories) = 0) AS fixed
FROM post AS p
LEFT JOIN evidence AS e ON e.inventory_hash = p.inventory_hash AND e.ecosystem = p.ecosystem AND e.name = p.package
LEFT JOIN targets AS t ON t.ecosystem = p.ecosystem AND t.target_version = p.target_version
SETTINGS join_use_nulls = 0, join_algorithm = 'hash';

-- 0014's action_states; the verification of each action (v) reads the
-- latest scan's verdict column by column.
DROP VIEW IF EXISTS action_states;
CREATE VIEW IF NOT EXISTS action_states AS
SELECT a.plan_id AS plan_id, a.action_id AS action_id, a.rank AS rank, a.host_id AS host_id, a.hostname AS hostname,
    a.owner AS owner, a.os AS os, a.group_name AS group_name, a.ecosystem AS ecosystem, a.package AS package,
    a.installed_version AS installed_version, a.target_version AS target_version, a.advisories AS advisories,
    a.kev_advisories AS kev_advisories, a.kev_ids AS kev_ids, a.risk_reduction AS risk_reduction, a.deadline AS deadline,
    a.ring AS ring, a.wave AS wave, a.window_start AS window_start, a.window_end AS window_end, a.emergency AS emergency,
    a.approval_required AS approval_required, a.status AS status, a.reason AS reason, a.severity AS severity,
    pl.created_at AS planned_at,
    toUInt32(greatest(o.attempt, o.attempts)) AS attempts,
    toString(o.status) AS last_status,
    o.started_at AS started_at, o.finished_at AS finished_at, o.reboot_required AS reboot_required,
    multiIf(
        last_status = '' AND (a.status = 'unscheduled' OR a.window_start > now()), 'planned',
        last_status = '', 'in_progress',
        last_status != 'succeeded', last_status,
        v.first_fixed != toDateTime(0), 'verified',
        v.scans > 0 AND v.last_target_key = '', 'unverified',
        v.scans > 0, 'still_exposed',
        now() >= o.finished_at + toIntervalSecond(ds.verification_window_s), 'unverified',
        'succeeded') AS state,
    if(state = 'verified', v.first_fixed, toDateTime(0)) AS verified_at,
    multiIf(
        state = 'planned' AND a.status = 'unscheduled', concat('unscheduled: ', a.reason),
        state = 'planned', concat('window opens ', formatDateTime(a.window_start, '%F %T', 'UTC'), ' UTC'),
        state = 'in_progress' AND now() >= a.window_end,
            concat('window ended ', formatDateTime(a.window_end, '%F %T', 'UTC'), ' UTC without an outcome'),
        state = 'in_progress', concat('window open until ', formatDateTime(a.window_end, '%F %T', 'UTC'), ' UTC, no outcome yet'),
        state = 'failed' AND attempts < ds.max_attempts,
            concat('attempt ', toString(attempts), ' of ', toString(ds.max_attempts), ' failed: ', o.error,
                '; due again in the next window of group ', a.group_name),
        state = 'failed', concat('failed for good: ', toString(attempts), ' of ', toString(ds.max_attempts), ' attempts used; last error: ', o.error),
        state = 'rolled_back', concat('rolled back: ', o.error, '; ', a.package, ' ', a.target_version, ' is held for group ', a.group_name, ' until approved'),
        state = 'skipped', concat('skipped by automation', if(o.error = '', '', concat(': ', o.error))),
        state = 'verified', concat('scan at ', formatDateTime(v.first_fixed, '%F %T', 'UTC'), ' UTC shows ', a.package,
            if(v.first_fixed_active = 0, ' no longer installed (or a kernel image no longer running)', concat(' at or above ', a.target_version)),
            ' and none of its advisories open'),
        state = 'unverified' AND v.scans > 0, concat('cannot compare versions: target ', a.target_version, ' is in no affected range of ', a.ecosystem),
        state = 'unverified', concat('no scan of the host within ', toString(ds.verification_window_s), ' s after the outcome (by ',
            formatDateTime(o.finished_at + toIntervalSecond(ds.verification_window_s), '%F %T', 'UTC'), ' UTC)'),
        state = 'still_exposed' AND o.reboot_required = 1 AND v.last_kernel_open = 1,
            concat('reboot required: the running kernel ', v.last_kernel, ' is unchanged and still exposed to ', arrayStringConcat(v.last_open, ', ')),
        state = 'still_exposed' AND v.last_below != '',
            concat('scan at ', formatDateTime(v.last_scan, '%F %T', 'UTC'), ' UTC still shows ', a.package, ' ', v.last_below, ' below ', a.target_version),
        state = 'still_exposed', concat('scan at ', formatDateTime(v.last_scan, '%F %T', 'UTC'), ' UTC still shows ', arrayStringConcat(v.last_open, ', '), ' open'),
        concat('awaiting a rescan of the host until ', formatDateTime(o.finished_at + toIntervalSecond(ds.verification_window_s), '%F %T', 'UTC'), ' UTC')
    ) AS state_reason,
    ds.max_attempts AS max_attempts,
    ds.verification_window_s AS verification_window_s,
    o.error AS error,
    toUInt32(v.scans) AS verification_scans
FROM plan_actions AS a
INNER JOIN (SELECT plan_id, created_at FROM plans) AS pl ON pl.plan_id = a.plan_id
INNER JOIN plan_deploy_settings AS ds ON ds.plan_id = a.plan_id
LEFT JOIN outcomes_current AS o ON o.plan_id = a.plan_id AND o.action_id = a.action_id
LEFT JOIN (
    SELECT plan_id, action_id, count() AS scans,
        minIf(scanned_at, fixed = 1) AS first_fixed,
        argMinIf(pkg_active, scanned_at, fixed = 1) AS first_fixed_active,
        max(scanned_at) AS last_scan,
        argMax(target_key, scanned_at) AS last_target_key,
        argMax(below_versions, scanned_at) AS last_below,
        argMax(open_advisories, scanned_at) AS last_open,
        argMax(kernel_open, scanned_at) AS last_kernel_open,
        argMax(kernel_running, scanned_at) AS last_kernel
    FROM action_verification_scans
    GROUP BY plan_id, action_id
) AS v ON v.plan_id = a.plan_id AND v.action_id = a.action_id
SETTINGS join_use_nulls = 0, join_algorithm = 'hash';
