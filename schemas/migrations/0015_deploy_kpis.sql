-- patchgrid:min-server 23.8
-- Deployment KPIs (issue 13): patch failure rate and rollback frequency,
-- deployment success in staging against production, test pass rate per
-- ring, time from plan to verified, still-exposed after a reported
-- success, and reopened exposures. They read the outcomes of 0013
-- (every attempt, deduplicated with FINAL) and the action states of 0014
-- (action_states: one row per plan action, its latest outcome and its
-- verification by rescan). Definitions for readers: schemas/VIEWS.md,
-- "Deployment KPIs".
--
-- Each KPI X is a snapshot as in 0005: X_live is the definition, computed
-- when read; analytics/refresh copies it into X_snapshot (refresh.Snapshots);
-- X reads the copy. Freshness is therefore the last refresh's, also for
-- verification states, which depend on the scans and on now().
--
-- Vocabulary (written once, in Go): outcome statuses are
-- schemas/outcome.Statuses, action states analytics/deploy's; the tests of
-- analytics/kpi check the literals below against both.

-- The active policy's ring order: staging is every ring before the last
-- one, production the last ring and any ring the policy does not name
-- (the planner deploys such hosts last, with production). Without an
-- active policy or without rings everything is production.
--   ring_order  1.. in the policy's order; 0 for a ring it does not name
CREATE VIEW IF NOT EXISTS deploy_rings AS
SELECT any(arrayMap(x -> JSONExtractString(x, 'name'), JSONExtractArrayRaw(canonical, 'rings'))) AS rings
FROM policy_active;

-- Every reported attempt (outcomes FINAL: a redelivered message counts
-- once) with its action's ring and stage; the unit of the failure,
-- rollback and success rates.
--   week  Monday (UTC) of the week the attempt finished
CREATE VIEW IF NOT EXISTS deploy_attempts AS
SELECT o.plan_id AS plan_id, o.action_id AS action_id, o.attempt AS attempt, o.host_id AS host_id,
    a.ring AS ring, indexOf(r.rings, a.ring) AS ring_order,
    if(ring_order >= 1 AND ring_order < length(r.rings), 'staging', 'production') AS stage,
    a.ecosystem AS ecosystem, o.package AS package, o.to_version AS to_version, o.status AS status,
    o.started_at AS started_at, o.finished_at AS finished_at, toMonday(o.finished_at, 'UTC') AS week
FROM (
    SELECT plan_id, action_id, attempt, host_id, package, to_version, status, started_at, finished_at
    FROM outcomes FINAL
) AS o
INNER JOIN (
    SELECT plan_id, action_id, ring, ecosystem FROM plan_actions
) AS a ON a.plan_id = o.plan_id AND a.action_id = o.action_id
CROSS JOIN deploy_rings AS r;

-- Every plan action with its state (action_states of 0014), ring order
-- and stage; the unit of the verification KPIs.
CREATE VIEW IF NOT EXISTS deploy_actions AS
SELECT s.plan_id AS plan_id, s.action_id AS action_id, s.host_id AS host_id, s.ring AS ring,
    indexOf(r.rings, s.ring) AS ring_order,
    if(ring_order >= 1 AND ring_order < length(r.rings), 'staging', 'production') AS stage,
    s.ecosystem AS ecosystem, s.package AS package, s.target_version AS target_version,
    s.planned_at AS planned_at, s.attempts AS attempts, s.last_status AS last_status,
    s.finished_at AS finished_at, s.state AS state, s.verified_at AS verified_at
FROM action_states AS s
CROSS JOIN deploy_rings AS r;

-- kpi_deploy_failures: patch failure rate and rollback frequency per week
-- (of the attempt's finish), overall and by ring and by package.
--   deployments        attempts that tried to install (status other than skipped)
--   failure_rate_pct   100 * (failed + rolled_back) / deployments: a rollback
--                      is a failed deployment that had installed
--   rollback_rate_pct  100 * rolled_back / deployments
CREATE VIEW IF NOT EXISTS kpi_deploy_failures_live AS
SELECT week, d.1 AS dimension, d.2 AS dim_value,
    countIf(status != 'skipped') AS deployments,
    countIf(status = 'succeeded') AS succeeded,
    countIf(status = 'failed') AS failed,
    countIf(status = 'rolled_back') AS rolled_back,
    countIf(status = 'skipped') AS skipped,
    if(deployments = 0, nan, 100 * (failed + rolled_back) / deployments) AS failure_rate_pct,
    if(deployments = 0, nan, 100 * rolled_back / deployments) AS rollback_rate_pct
FROM deploy_attempts
ARRAY JOIN [('all', 'all'), ('ring', ring), ('package', package)] AS d
GROUP BY week, dimension, dim_value;
CREATE TABLE IF NOT EXISTS kpi_deploy_failures_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_deploy_failures_live;
CREATE VIEW IF NOT EXISTS kpi_deploy_failures AS SELECT * FROM kpi_deploy_failures_snapshot;

-- kpi_deploy_stage_success: deployment success rate in staging (the rings
-- before the active policy's last) against production, over every attempt.
--   rings             the rings seen in the stage, in the policy's order
--   success_rate_pct  100 * succeeded / deployments
CREATE VIEW IF NOT EXISTS kpi_deploy_stage_success_live AS
SELECT stage,
    arrayMap(x -> x.2, arraySort(groupUniqArray((ring_order, ring)))) AS rings,
    countIf(status != 'skipped') AS deployments,
    countIf(status = 'succeeded') AS succeeded,
    countIf(status = 'failed') AS failed,
    countIf(status = 'rolled_back') AS rolled_back,
    if(deployments = 0, nan, 100 * succeeded / deployments) AS success_rate_pct,
    min(finished_at) AS first_finished, max(finished_at) AS last_finished
FROM deploy_attempts
GROUP BY stage;
CREATE TABLE IF NOT EXISTS kpi_deploy_stage_success_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_deploy_stage_success_live;
CREATE VIEW IF NOT EXISTS kpi_deploy_stage_success AS SELECT * FROM kpi_deploy_stage_success_snapshot;

-- kpi_deploy_test_pass: test pass rate per ring, over the actions of every
-- plan: an action passes when its outcome said succeeded and a rescan
-- verified it. Decided actions are those whose result is known: verified,
-- still_exposed, unverified (no rescan in the verification window),
-- failed and rolled_back; succeeded actions awaiting their rescan, and
-- actions not yet run, in progress or skipped, are not counted.
--   pass_rate_pct  100 * verified / decided
CREATE VIEW IF NOT EXISTS kpi_deploy_test_pass_live AS
SELECT ring, any(ring_order) AS ring_order, any(stage) AS stage,
    count() AS actions,
    countIf(state IN ('verified', 'still_exposed', 'unverified', 'failed', 'rolled_back')) AS decided,
    countIf(state = 'verified') AS verified,
    countIf(state = 'still_exposed') AS still_exposed,
    countIf(state = 'unverified') AS unverified,
    countIf(state = 'failed') AS failed,
    countIf(state = 'rolled_back') AS rolled_back,
    countIf(state = 'succeeded') AS awaiting_verification,
    countIf(state IN ('planned', 'in_progress', 'skipped')) AS not_run,
    if(decided = 0, nan, 100 * verified / decided) AS pass_rate_pct
FROM deploy_actions
GROUP BY ring;
CREATE TABLE IF NOT EXISTS kpi_deploy_test_pass_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_deploy_test_pass_live;
CREATE VIEW IF NOT EXISTS kpi_deploy_test_pass AS SELECT * FROM kpi_deploy_test_pass_snapshot;

-- kpi_deploy_time_to_verify: hours from the plan's creation to the rescan
-- that verified the action, over verified actions, overall and by ring and
-- stage. Percentiles are exact (quantileExact: the value at index
-- floor(level * n) of the sorted values, as kpi_exposure_window).
CREATE VIEW IF NOT EXISTS kpi_deploy_time_to_verify_live AS
SELECT d.1 AS dimension, d.2 AS dim_value,
    count() AS verified,
    avg(hours) AS avg_hours,
    quantileExact(0.5)(hours) AS median_hours,
    quantileExact(0.9)(hours) AS p90_hours,
    max(hours) AS max_hours
FROM (
    SELECT ring, stage, (toInt64(verified_at) - toInt64(planned_at)) / 3600 AS hours
    FROM deploy_actions
    WHERE state = 'verified'
)
ARRAY JOIN [('all', 'all'), ('stage', stage), ('ring', ring)] AS d
GROUP BY dimension, dim_value;
CREATE TABLE IF NOT EXISTS kpi_deploy_time_to_verify_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_deploy_time_to_verify_live;
CREATE VIEW IF NOT EXISTS kpi_deploy_time_to_verify AS SELECT * FROM kpi_deploy_time_to_verify_snapshot;

-- kpi_deploy_still_exposed: actions whose latest outcome reported success
-- but whose next scan still shows the vulnerable version, overall, by ring
-- and by package.
--   reported_success   actions whose latest outcome is succeeded
--   rescanned          of those, the ones a later scan has judged
--                      (verified + still_exposed)
--   still_exposed_pct  100 * still_exposed / rescanned
CREATE VIEW IF NOT EXISTS kpi_deploy_still_exposed_live AS
SELECT d.1 AS dimension, d.2 AS dim_value,
    countIf(last_status = 'succeeded') AS reported_success,
    countIf(state IN ('verified', 'still_exposed')) AS rescanned,
    countIf(state = 'still_exposed') AS still_exposed,
    if(rescanned = 0, nan, 100 * still_exposed / rescanned) AS still_exposed_pct
FROM deploy_actions
ARRAY JOIN [('all', 'all'), ('ring', ring), ('package', package)] AS d
WHERE last_status = 'succeeded'
GROUP BY dimension, dim_value;
CREATE TABLE IF NOT EXISTS kpi_deploy_still_exposed_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_deploy_still_exposed_live;
CREATE VIEW IF NOT EXISTS kpi_deploy_still_exposed AS SELECT * FROM kpi_deploy_still_exposed_snapshot;

-- kpi_deploy_regressions: reopened exposures (an exposure that was
-- resolved and came back: exposure_history.reopened > 0), per week of the
-- exposure's last_seen (the latest scan that showed it, which lies in its
-- latest exposed period, i.e. after its latest reopening), by the KPI
-- breakdowns (all, ring, owner, os, criticality).
--   reopened_exposures  (host, advisory) pairs with reopened > 0
--   reopen_events       sum of reopened (an exposure can come back twice)
--   open_now            of those, still exposed at the latest scan
CREATE VIEW IF NOT EXISTS kpi_deploy_regressions_live AS
SELECT toMonday(last_seen, 'UTC') AS week, d.1 AS dimension, d.2 AS dim_value,
    count() AS reopened_exposures,
    sum(reopened) AS reopen_events,
    uniqExact(host_id) AS hosts,
    countIf(is_open = 1) AS open_now
FROM kpi_exposures
ARRAY JOIN dims AS d
WHERE reopened > 0
GROUP BY week, dimension, dim_value;
CREATE TABLE IF NOT EXISTS kpi_deploy_regressions_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_deploy_regressions_live;
CREATE VIEW IF NOT EXISTS kpi_deploy_regressions AS SELECT * FROM kpi_deploy_regressions_snapshot;

-- kpi_deploy_plans: the loop per plan: its actions by state, the attempts
-- reported and their failure and rollback rates (as kpi_deploy_failures).
--   attempted  actions with at least one reported attempt
--   rescanned  actions a later scan has judged (verified + still_exposed)
CREATE VIEW IF NOT EXISTS kpi_deploy_plans_live AS
SELECT s.plan_id AS plan_id, s.planned_at AS planned_at, s.actions AS actions, s.attempted AS attempted,
    s.planned AS planned, s.in_progress AS in_progress, s.succeeded AS succeeded, s.failed AS failed,
    s.rolled_back AS rolled_back, s.skipped AS skipped, s.verified AS verified,
    s.still_exposed AS still_exposed, s.unverified AS unverified, s.rescanned AS rescanned,
    a.deployments AS deployments, a.failed_attempts AS failed_attempts, a.rolled_back_attempts AS rolled_back_attempts,
    if(a.deployments = 0, nan, 100 * (a.failed_attempts + a.rolled_back_attempts) / a.deployments) AS failure_rate_pct,
    if(a.deployments = 0, nan, 100 * a.rolled_back_attempts / a.deployments) AS rollback_rate_pct
FROM (
    SELECT plan_id, any(planned_at) AS planned_at, count() AS actions,
        countIf(attempts > 0) AS attempted,
        countIf(state = 'planned') AS planned,
        countIf(state = 'in_progress') AS in_progress,
        countIf(state = 'succeeded') AS succeeded,
        countIf(state = 'failed') AS failed,
        countIf(state = 'rolled_back') AS rolled_back,
        countIf(state = 'skipped') AS skipped,
        countIf(state = 'verified') AS verified,
        countIf(state = 'still_exposed') AS still_exposed,
        countIf(state = 'unverified') AS unverified,
        verified + still_exposed AS rescanned
    FROM deploy_actions
    GROUP BY plan_id
) AS s
LEFT JOIN (
    SELECT plan_id, countIf(status != 'skipped') AS deployments,
        countIf(status = 'failed') AS failed_attempts,
        countIf(status = 'rolled_back') AS rolled_back_attempts
    FROM deploy_attempts
    GROUP BY plan_id
) AS a ON a.plan_id = s.plan_id;
CREATE TABLE IF NOT EXISTS kpi_deploy_plans_snapshot
ENGINE = MergeTree ORDER BY tuple()
EMPTY AS SELECT * FROM kpi_deploy_plans_live;
CREATE VIEW IF NOT EXISTS kpi_deploy_plans AS SELECT * FROM kpi_deploy_plans_snapshot;
