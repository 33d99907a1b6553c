-- patchgrid:min-server 23.8
-- Deployment outcomes: what remediation automation reports for each action
-- of a plan. Old servers go without outcomes (the contract's LowCardinality
-- and DateTime64 columns need a newer server, and plans, which outcomes
-- refer to, cannot be built there either: see 0008).
-- Written only by the outcome consumer (ingest/outcomes), which reads the
-- wire schema of schemas/outcome from the Kafka topic patchgrid.outcomes
-- (fed by `patchgrid outcome report`, POST /api/v1/outcomes and automation)
-- and dead-letters an outcome whose plan_id or action_id is not in
-- plan_actions, so every row here refers to a planned action.

-- One row per attempt at one action:
--   attempt          1 for the first try, +1 per retry (automation counts)
--   status           succeeded, failed, rolled_back or skipped
--                    (schemas/outcome.Statuses)
--   started_at, finished_at  as automation reported them (UTC, seconds)
--   error            why a failed or rolled_back attempt failed ('' else)
--   reboot_required  1 when the package takes effect only after a reboot
--   received_at      when the consumer stored it
-- ReplacingMergeTree on (plan_id, action_id, attempt): a message delivered
-- again after a crash replaces its first copy (the later received_at wins),
-- so it has no second effect. Readers that count rows use FINAL or
-- outcomes_current.
CREATE TABLE IF NOT EXISTS outcomes (
    plan_id         String,
    action_id       String,
    attempt         UInt32,
    host_id         String,
    package         String,
    from_version    String,
    to_version      String,
    status          LowCardinality(String),
    started_at      DateTime,
    finished_at     DateTime,
    error           String,
    reboot_required UInt8,
    received_at     DateTime64(3)
) ENGINE = ReplacingMergeTree(received_at)
ORDER BY (plan_id, action_id, attempt);

-- The latest attempt of every action that has an outcome: every column of
-- outcomes for the highest attempt of (plan_id, action_id), and attempts,
-- the number of distinct attempts reported for it. (The inner query names
-- the attempt n: an alias attempt for max(attempt) would shadow the column
-- inside the other aggregates.)
CREATE VIEW IF NOT EXISTS outcomes_current AS
SELECT plan_id, action_id,
    max(n) AS attempt,
    argMax(host_id, n) AS host_id,
    argMax(package, n) AS package,
    argMax(from_version, n) AS from_version,
    argMax(to_version, n) AS to_version,
    argMax(status, n) AS status,
    argMax(started_at, n) AS started_at,
    argMax(finished_at, n) AS finished_at,
    argMax(error, n) AS error,
    argMax(reboot_required, n) AS reboot_required,
    argMax(received_at, n) AS received_at,
    toUInt32(count()) AS attempts
FROM (
    SELECT plan_id, action_id, attempt AS n, host_id, package, from_version, to_version, status,
        started_at, finished_at, error, reboot_required, received_at
    FROM outcomes FINAL
)
GROUP BY plan_id, action_id;
