-- patchgrid:min-server 23.8
-- Memory of verification (issue 16: `make run` within 2 GB). 0022's
-- action_verification_scans with the same columns, rows and meaning; only
-- the planned side of its successful outcomes is read differently.
--
-- 0022 joined the current successful outcomes to every row of plan_actions,
-- which the join held as its hash table with each action's advisories:
-- every action of every plan, to keep the few that succeeded. On `make
-- run`'s plan (601,000 actions, 976 outcomes) one evaluation of
-- action_states took 1.4 GB, every automation round and every `patchgrid
-- plan status`. The actions are now first narrowed to those with a
-- successful outcome (the keys of outcomes, whose current status may since
-- have changed: the join with outcomes_current still decides), so the hash
-- table holds those: 0.49 GB and a third less time for the same rows.
-- action_states and the views after it read this view by name.

DROP VIEW IF EXISTS action_verification_scans;
CREATE VIEW IF NOT EXISTS action_verification_scans AS
WITH succeeded AS (
    SELECT o.plan_id AS plan_id, o.action_id AS action_id, o.host_id AS host_id, o.finished_at AS finished_at,
        a.ecosystem AS ecosystem, a.package AS package, a.target_version AS target_version, a.advisories AS advisories
    FROM (SELECT plan_id, action_id, host_id, finished_at FROM outcomes_current WHERE status = 'succeeded') AS o
    INNER JOIN (
        SELECT plan_id, action_id, ecosystem, package, target_version, advisories FROM plan_actions
        WHERE (plan_id, action_id) IN (SELECT plan_id, action_id FROM outcomes WHERE status = 'succeeded')
    ) AS a
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
