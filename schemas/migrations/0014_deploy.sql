-- patchgrid:min-server 23.8
-- Deployment verification, ring gates, retries and flaky-update holds (issue
-- 13): where each planned action stands, from its plan through its
-- outcomes (0013) to the rescan that verifies it. Needs a current
-- ClickHouse, like the outcomes it reads. Written by analytics/deploy (gate
-- decisions, holds and approvals); the state names and their meaning are
-- analytics/deploy's State constants (a test holds this file to them).

-- Seconds in a duration as Go writes it (policy.Duration's canonical JSON
-- form: "24h0m0s", "1h30m0s", "90s", "1.5s"); '' is 0. A test compares it
-- with Go's parser for every unit.
CREATE OR REPLACE FUNCTION patchgrid_duration_seconds AS (s) ->
    toUInt64(arraySum(x -> toFloat64OrZero(extract(x, '^[0-9.]+')) *
        multiIf(endsWith(x, 'ns'), 1e-9, endsWith(x, 'us') OR endsWith(x, 'µs'), 1e-6, endsWith(x, 'ms'), 1e-3,
            endsWith(x, 'h'), 3600, endsWith(x, 'm'), 60, 1),
        extractAll(s, '[0-9.]+[^0-9.]+')));

-- The deployment settings of every plan, from the policy version it was
-- planned under (policy_versions.canonical, its deployment section):
-- verification_window_s (how
-- long after a successful outcome a rescan may take before the action is
-- unverified) and max_attempts (tries before a failed action is failed for
-- good). A policy that does not set them, and the built-in policy
-- (version 0), get the defaults: 24 h and 3 (a test holds these literals
-- to policy.DefaultVerificationWindow and policy.DefaultMaxAttempts).
CREATE VIEW IF NOT EXISTS plan_deploy_settings AS
SELECT p.plan_id AS plan_id, p.policy_version AS policy_version,
    if(v.window_s = 0, 86400, v.window_s) AS verification_window_s,
    toUInt32(if(v.attempts = 0, 3, v.attempts)) AS max_attempts
FROM plans AS p
LEFT JOIN (
    SELECT version,
        patchgrid_duration_seconds(JSONExtractString(canonical, 'deployment', 'verification_window')) AS window_s,
        JSONExtractUInt(canonical, 'deployment', 'max_attempts') AS attempts
    FROM policy_versions FINAL
) AS v ON v.version = p.policy_version
SETTINGS join_use_nulls = 0;

-- Verification evidence: for every action whose latest outcome succeeded,
-- each scan of its host after the outcome's finished_at, judged:
--   pkg_active    rows of the action's package in the scan's inventory that
--                 count (a kernel image that is installed but not running
--                 does not: it exposes nothing until booted)
--   pkg_below     of those, rows whose version (match_version's key, the
--                 key matching compares advisories with) is below the
--                 target version's key
--   open_advisories  the action's advisories still found on the package in
--                 that scan (current advisory records; a kernel image that
--                 is not running excluded)
--   kernel_open   1 when one of them is on the running kernel's image
--   fixed         no counted row below the target and no advisory open
-- The target's key is the fixed_key of an affected range whose fixed
-- version is the target (the planner takes the target from those ranges);
-- target_key = '' when the feed no longer has it: the scan cannot be
-- judged (the action stays unverified, never verified by default).
-- The host and inventory pre-filters read outcomes without FINAL: a
-- superset of the hosts needed, found without aggregating outcomes again.
CREATE VIEW IF NOT EXISTS action_verification_scans AS
WITH succeeded AS (
    SELECT o.plan_id AS plan_id, o.action_id AS action_id, o.host_id AS host_id, o.finished_at AS finished_at,
        a.ecosystem AS ecosystem, a.package AS package, a.target_version AS target_version, a.advisories AS advisories
    FROM (SELECT plan_id, action_id, host_id, finished_at FROM outcomes_current WHERE status = 'succeeded') AS o
    INNER JOIN (SELECT plan_id, action_id, ecosystem, package, target_version, advisories FROM plan_actions) AS a
        ON a.plan_id = o.plan_id AND a.action_id = o.action_id
),
post AS (
    SELECT s.plan_id AS plan_id, s.action_id AS action_id, s.ecosystem AS ecosystem, s.package AS package,
        s.target_version AS target_version, s.advisories AS advisories,
        sc.scanned_at AS scanned_at, sc.inventory_hash AS inventory_hash, sc.kernel_running AS kernel_running
    FROM succeeded AS s
    INNER JOIN (
        SELECT host_id, scanned_at, argMax(inventory_hash, scan_id) AS inventory_hash, argMax(kernel_running, scan_id) AS kernel_running
        FROM scans
        WHERE host_id IN (SELECT host_id FROM outcomes WHERE status = 'succeeded')
        GROUP BY host_id, scanned_at
    ) AS sc ON sc.host_id = s.host_id
    WHERE sc.scanned_at > s.finished_at
),
pkgs AS (
    SELECT inventory_hash, ecosystem, name, groupArray((v_key, version, arch)) AS pkg_rows
    FROM inventory_packages
    WHERE (ecosystem, name) IN (SELECT ecosystem, package FROM plan_actions)
        AND inventory_hash IN (SELECT inventory_hash FROM scans WHERE host_id IN (SELECT host_id FROM outcomes WHERE status = 'succeeded'))
    GROUP BY inventory_hash, ecosystem, name
),
finds AS (
    SELECT inventory_hash, ecosystem, name, groupArray((concat(source, '/', advisory_id), version, arch)) AS found
    FROM match_inventory_findings FINAL
    WHERE (ecosystem, name) IN (SELECT ecosystem, package FROM plan_actions)
        AND inventory_hash IN (SELECT inventory_hash FROM scans WHERE host_id IN (SELECT host_id FROM outcomes WHERE status = 'succeeded'))
        AND (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0)
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
    arrayFilter(r -> patchgrid_kernel_state(p.package, r.2, r.3, p.kernel_running) != 'not_running', k.pkg_rows) AS active,
    toUInt32(length(active)) AS pkg_active,
    toUInt32(arrayCount(r -> r.1 < t.target_key, active)) AS pkg_below,
    arrayStringConcat(arrayDistinct(arrayMap(r -> r.2, arrayFilter(r -> r.1 < t.target_key, active))), ', ') AS below_versions,
    arrayFilter(x -> has(p.advisories, x.1) AND patchgrid_kernel_state(p.package, x.2, x.3, p.kernel_running) != 'not_running', fi.found) AS open_found,
    arraySort(arrayDistinct(arrayMap(x -> x.1, open_found))) AS open_advisories,
    toUInt8(arrayExists(x -> patchgrid_kernel_state(p.package, x.2, x.3, p.kernel_running) = 'running', open_found)) AS kernel_open,
    toUInt8(t.target_key != '' AND pkg_below = 0 AND length(open_advisories) = 0) AS fixed
FROM post AS p
LEFT JOIN pkgs AS k ON k.inventory_hash = p.inventory_hash AND k.ecosystem = p.ecosystem AND k.name = p.package
LEFT JOIN finds AS fi ON fi.inventory_hash = p.inventory_hash AND fi.ecosystem = p.ecosystem AND fi.name = p.package
LEFT JOIN targets AS t ON t.ecosystem = p.ecosystem AND t.target_version = p.target_version
SETTINGS join_use_nulls = 0;

-- One row per action of every plan: every plan_actions column, then
-- planned_at (the plan's created_at), the latest outcome (attempts,
-- last_status, started_at, finished_at, reboot_required), and the state:
--   planned       no outcome, and its window has not started (or it is
--                 unscheduled)
--   in_progress   no outcome, and its window has started: automation may be
--                 running it (state_reason says when the window ended
--                 without an outcome)
--   succeeded     the latest outcome succeeded; no rescan of the host yet,
--                 and the verification window is still running
--   failed        the latest outcome failed: due again in the group's next
--                 window while attempts < max_attempts, else failed for good
--                 (state_reason says which)
--   rolled_back   the latest outcome rolled back (the fix is held for the
--                 group: fix_holds)
--   skipped       automation skipped it
--   verified      succeeded, and a later scan of the host shows the package
--                 at the target version or higher (or gone, or a kernel
--                 image no longer running) and none of the action's
--                 advisories open on it; verified_at is the first such scan
--   still_exposed succeeded, but the scans since still show a version below
--                 the target or one of its advisories open (a reboot
--                 pending on an unchanged running kernel is said in
--                 state_reason)
--   unverified    succeeded, and no scan of the host within the
--                 verification window after finished_at (a later scan still
--                 verifies it), or the target version cannot be compared
-- "Now" is the time of the query.
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
        v.scans > 0 AND v.last.1 = '', 'unverified',
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
        state = 'still_exposed' AND o.reboot_required = 1 AND v.last.4 = 1,
            concat('reboot required: the running kernel ', v.last.5, ' is unchanged and still exposed to ', arrayStringConcat(v.last.3, ', ')),
        state = 'still_exposed' AND v.last.2 != '',
            concat('scan at ', formatDateTime(v.last_scan, '%F %T', 'UTC'), ' UTC still shows ', a.package, ' ', v.last.2, ' below ', a.target_version),
        state = 'still_exposed', concat('scan at ', formatDateTime(v.last_scan, '%F %T', 'UTC'), ' UTC still shows ', arrayStringConcat(v.last.3, ', '), ' open'),
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
        argMax((target_key, below_versions, open_advisories, kernel_open, kernel_running), scanned_at) AS last
    FROM action_verification_scans
    GROUP BY plan_id, action_id
) AS v ON v.plan_id = a.plan_id AND v.action_id = a.action_id
SETTINGS join_use_nulls = 0;

-- Gate decisions: one row each time a ring's gate changed (opened or
-- closed) for a plan, as analytics/deploy evaluated it. The gate of ring
-- R is the previous ring P's: soak (time since P's last success) at least
-- min_soak, failure rate (failures / (successes + failures) of P's actions
-- with an outcome) at most max_failure_rate, successes at least
-- min_successes; the first ring's gate is always open.
CREATE TABLE IF NOT EXISTS gate_decisions (
    plan_id          String,
    ring             String,
    ring_index       UInt32,
    decided_at       DateTime,
    decided_by       String,
    open             UInt8,
    reason           String,
    prev_ring        String,
    successes        UInt64,
    failures         UInt64,
    failure_rate     Float64,
    last_success     DateTime,
    soak_s           UInt64,
    min_soak_s       UInt64,
    max_failure_rate Float64,
    min_successes    UInt64
) ENGINE = MergeTree
ORDER BY (plan_id, ring, decided_at);

-- The latest decision per (plan, ring).
CREATE VIEW IF NOT EXISTS gate_decisions_current AS
SELECT plan_id, ring,
    argMax(ring_index, t) AS ring_index, max(t) AS decided_at,
    argMax(decided_by, t) AS decided_by, argMax(open, t) AS open,
    argMax(reason, t) AS reason
FROM (SELECT plan_id, ring, ring_index, decided_at AS t, decided_by, open, reason FROM gate_decisions)
GROUP BY plan_id, ring;

-- Flaky updates: a rollback marks (group, ecosystem, package, target
-- version) suspect: event 'hold' with the plan, action and attempt that
-- rolled back (reason says when and why), at = when analytics/deploy
-- recorded it. 'approve' rows (actor = the approver) lift the holds
-- recorded before them. A rollback is recorded once (analytics/deploy
-- skips those already here).
CREATE TABLE IF NOT EXISTS fix_holds (
    group_name     String,
    ecosystem      String,
    package        String,
    target_version String,
    event          String,   -- hold | approve
    at             DateTime,
    actor          String,   -- who approved; who recorded a hold
    reason         String,
    plan_id        String,
    action_id      String,
    attempt        UInt32
) ENGINE = ReplacingMergeTree
ORDER BY (group_name, ecosystem, package, target_version, event, plan_id, action_id, attempt, at);

-- Holds in force: the fixes whose latest hold was recorded after their
-- latest approval (a rollback after an approval holds the fix again).
CREATE VIEW IF NOT EXISTS fix_holds_current AS
SELECT group_name, ecosystem, package, target_version,
    maxIf(t, ev = 'hold') AS held_at,
    argMaxIf(why, t, ev = 'hold') AS reason,
    argMaxIf(plan, t, ev = 'hold') AS plan_id,
    argMaxIf(action, t, ev = 'hold') AS action_id,
    toUInt64(uniqExactIf((plan, action, n), ev = 'hold')) AS rollbacks,
    maxIf(t, ev = 'approve') AS approved_at
FROM (
    SELECT group_name, ecosystem, package, target_version, event AS ev, at AS t, reason AS why,
        plan_id AS plan, action_id AS action, attempt AS n
    FROM fix_holds FINAL
)
GROUP BY group_name, ecosystem, package, target_version
HAVING held_at > approved_at;
