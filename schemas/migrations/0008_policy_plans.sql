-- Remediation policies and plans. 18.16-compatible DDL (see 0001), so
-- policies can be stored on the 2018 server too (plans need the risk views
-- of 0004, which it lacks: analytics/plan refuses there).
-- Written only by analytics/policy and analytics/plan; read through the
-- views at the end (documented in schemas/VIEWS.md).

-- Every policy version ever applied, never changed afterwards:
--   version    1, 2, ... in order of application
--   source     the YAML file's text as applied; canonical its parsed form
--              (indented JSON, the form `policy show` and `policy diff` use)
--   sha256     of canonical: applying an unchanged policy adds no version
CREATE TABLE IF NOT EXISTS policy_versions (
    version     UInt32,
    name        String,
    source_file String,
    source      String,
    canonical   String,
    sha256      String,
    created_at  DateTime,
    created_by  String
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY version;

-- Which version is active: the row with the latest activated_at (ties:
-- the higher version; without rows policy_active is empty, as version 0
-- never exists). Every activation is kept (who applied what, when).
CREATE TABLE IF NOT EXISTS policy_activations (
    activated_at DateTime,
    version      UInt32,
    activated_by String
) ENGINE = MergeTree
ORDER BY (activated_at, version);

-- One row per plan (immutable). The current plan is the latest created_at
-- (ties: the greater plan_id); older plans are history.
CREATE TABLE IF NOT EXISTS plans (
    plan_id          String,
    created_at       DateTime,
    created_by       String,
    plan_at          DateTime,  -- the plan's "now" (--at)
    horizon_end      DateTime,
    policy_version   UInt32,    -- 0: built-in policy (any time, one wave)
    hosts            UInt64,
    actions          UInt64,
    scheduled        UInt64,
    late             UInt64,
    unscheduled      UInt64,
    emergency        UInt64,
    waves            UInt32,
    findings         UInt64,    -- open findings read
    no_fix           UInt64,    -- findings with no fix released (no action)
    risk_reduction   Float64
) ENGINE = MergeTree
ORDER BY (created_at, plan_id);

-- One row per action: one package to upgrade on one host.
--   action_id       stable: derived from plan_id, host_id, ecosystem, package
--   rank            1..n in plan order: emergency first, then deadline, then risk
--   target_version  the lowest version that fixes every open fixable advisory
--                   of the package on the host (ecosystem's comparison)
--   advisories      source/advisory_id of the findings it closes
--   risk_reduction  sum of their risk_score
--   deadline        earliest SLA deadline among them (policy rules applied)
--   status          scheduled (window before the deadline), late (first
--                   window after the deadline), unscheduled (no window in
--                   the horizon; window_* are epoch 0)
--   reason          why it has its place, or why it is unscheduled
CREATE TABLE IF NOT EXISTS plan_actions (
    plan_id           String,
    action_id         String,
    rank              UInt32,
    host_id           String,
    hostname          String,
    owner             String,
    os                String,
    group_name        String,
    ecosystem         String,
    package           String,
    installed_version String,
    target_version    String,
    advisories        Array(String),
    kev_advisories    UInt32,
    kev_ids           Array(String),  -- those of advisories that are in CISA KEV
    risk_reduction    Float64,
    deadline          DateTime,
    ring              String,
    wave              UInt32,
    window_start      DateTime,
    window_end        DateTime,
    emergency         UInt8,
    approval_required UInt8,
    status            String,
    reason            String,
    severity          String   -- the highest severity among advisories
) ENGINE = MergeTree
ORDER BY (plan_id, rank);

-- Open findings a plan could not act on because no fix is released
-- (status unfixed or will_not_fix, or no fixed version).
CREATE TABLE IF NOT EXISTS plan_no_fix (
    plan_id           String,
    host_id           String,
    hostname          String,
    ecosystem         String,
    package           String,
    installed_version String,
    advisory          String,
    status            String,
    risk_score        Float64
) ENGINE = MergeTree
ORDER BY (plan_id, ecosystem, package, host_id, advisory);

CREATE VIEW IF NOT EXISTS policy_active AS
SELECT a.last_version AS version, a.last_at AS activated_at, a.last_by AS activated_by,
    v.name AS name, v.source_file AS source_file, v.canonical AS canonical, v.sha256 AS sha256
FROM (
    SELECT argMax(version, (activated_at, version)) AS last_version, max(activated_at) AS last_at,
        argMax(activated_by, (activated_at, version)) AS last_by
    FROM policy_activations
) AS a
ALL INNER JOIN (
    SELECT version AS last_version, name, source_file, canonical, sha256 FROM policy_versions FINAL
) AS v USING (last_version);

CREATE VIEW IF NOT EXISTS plans_current AS
SELECT * FROM plans
WHERE plan_id = (SELECT argMax(plan_id, (created_at, plan_id)) FROM plans);

CREATE VIEW IF NOT EXISTS plan_actions_current AS
SELECT * FROM plan_actions
WHERE plan_id = (SELECT argMax(plan_id, (created_at, plan_id)) FROM plans);

-- The current plan grouped by fix (package, target version): what a change
-- board reads.
CREATE VIEW IF NOT EXISTS plan_fixes_current AS
SELECT ecosystem, package, target_version,
    count() AS actions, uniqExact(host_id) AS hosts,
    length(groupUniqArrayArray(advisories)) AS advisories,
    length(groupUniqArrayArray(kev_ids)) AS kev_advisories,
    sum(risk_reduction) AS risk_reduction,
    max(emergency) AS emergency,
    minIf(window_start, status != 'unscheduled') AS first_window,
    countIf(status = 'unscheduled') AS unscheduled
FROM plan_actions_current
GROUP BY ecosystem, package, target_version;

-- The current plan's waves: when each opens and what it closes.
CREATE VIEW IF NOT EXISTS plan_waves_current AS
SELECT wave, any(ring) AS ring, max(emergency) AS emergency,
    min(window_start) AS opens, max(window_end) AS closes,
    uniqExact(host_id) AS hosts, count() AS actions,
    length(groupUniqArrayArray(advisories)) AS advisories,
    sum(risk_reduction) AS risk_reduction
FROM plan_actions_current
WHERE status != 'unscheduled'
GROUP BY wave;
