-- The planner in the engine (issue 12), hosts' own maintenance windows and
-- exceptions in plans (issue 14). 18.16-compatible DDL (see 0001), like
-- 0008: old servers get the tables, though plans cannot be built there.
-- Written only by analytics/plan.

-- Open findings an approved, unexpired exception (finding_exceptions of
-- 0012) covers when the plan is made: no action, listed here with the
-- exception that accepts the risk. When the exception expires, the next
-- plan acts on them again.
CREATE TABLE IF NOT EXISTS plan_excepted (
    plan_id           String,
    host_id           String,
    hostname          String,
    ecosystem         String,
    package           String,
    installed_version String,
    advisory          String,   -- source/advisory_id
    status            String,   -- the finding's status (affected, unfixed, ...)
    fixed_version     String,
    exception_id      String,
    expires_at        DateTime,
    risk_score        Float64
) ENGINE = MergeTree
ORDER BY (plan_id, ecosystem, package, host_id, advisory);

-- One row per (plan, host, emergency or not): where the planner put the
-- host's actions. window_* are epoch 0 when unscheduled (scheduled = 0,
-- why says why); place is the reason text shared by the host's actions;
-- host_window is the host's own window (scans.maintenance_window) when it
-- replaced its group's windows, '' else.
CREATE TABLE IF NOT EXISTS plan_hosts (
    plan_id      String,
    host_id      String,
    emergency    UInt8,
    group_name   String,
    ring         String,
    wave         UInt32,
    window_start DateTime,
    window_end   DateTime,
    scheduled    UInt8,
    why          String,
    place        String,
    first_window String,    -- window_start as RFC 3339 in the window's zone
    host_window  String,
    deadline     DateTime,  -- the earliest deadline of its actions
    risk_reduction Float64
) ENGINE = MergeTree
ORDER BY (plan_id, host_id, emergency);

-- Working tables of one plan create, dropped (by partition) once the plan
-- is written: the version key of every fixed version the plan compares
-- (schemas/version, computed in Go), the actions before scheduling, and
-- their ranks.
CREATE TABLE IF NOT EXISTS plan_version_keys (
    plan_id   String,
    ecosystem String,
    version   String,
    key       String,
    error     String    -- why the version cannot be compared ('' when it can)
) ENGINE = MergeTree
PARTITION BY plan_id
ORDER BY (ecosystem, version);

CREATE TABLE IF NOT EXISTS plan_stage_actions (
    plan_id           String,
    host_id           String,
    hostname          String,
    owner             String,
    os                String,
    ring              String,
    criticality       Int64,
    internet_facing   UInt8,
    ecosystem         String,
    package           String,
    installed_version String,
    target_version    String,
    bad_version       String,   -- reason when a fixed version cannot be compared
    advisories        Array(String),
    kev_ids           Array(String),
    severity          String,
    risk_reduction    Float64,
    deadline          DateTime,
    emergency         UInt8,
    emergency_why     String,
    findings          UInt64
) ENGINE = MergeTree
PARTITION BY plan_id
ORDER BY (host_id, ecosystem, package);

-- Each staged action's rank (emergency first, then deadline, then risk),
-- numbered over narrow rows so the actions themselves are written in
-- batches of hosts.
CREATE TABLE IF NOT EXISTS plan_stage_ranks (
    plan_id   String,
    host_id   String,
    ecosystem String,
    package   String,
    rank      UInt32
) ENGINE = MergeTree
PARTITION BY plan_id
ORDER BY (host_id, ecosystem, package);
