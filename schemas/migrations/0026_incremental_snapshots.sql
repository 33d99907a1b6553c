-- patchgrid:min-server 23.8
-- Snapshots proportional to change (issue 16): exposure_facts and
-- finding_risk_snapshot were copied whole by every refresh (15.6M and
-- 29.3M rows at `make run` size, about a minute of each refresh), because
-- some of their columns move with the clock (window_end, sla_state, the
-- risk score's SLA and KEV-overdue parts) or with every rescan (an open
-- exposure's last_seen, stale). Here they are split:
--   exposure_base, finding_risk_base  what of a row stays put until the
--       host's exposures, inventory findings, attributes or exceptions,
--       or the advisory records, change: written per host
--       (ReplacingMergeTree on the row's identity, a version and a deleted
--       flag, read FINAL), only for the hosts where one of those changed
--       (analytics/refresh says which);
--   host_facts  each host's attributes and last scan, as of the refresh
--       (kpi_hosts), a fingerprint of its end-of-life exposure, and the
--       refresh's time;
--   exposure_exceptions_snapshot, finding_exceptions_snapshot  the
--       exceptions in force at the refresh (small: only covered rows);
--   advisory_facts  a fingerprint per advisory of what exposure rows take
--       from it, so that a refresh finds the advisories that changed.
-- The views kpi_exposures and finding_risk put them together when read,
-- and keep their columns, order and meaning: open windows end at the
-- refresh (host_facts.as_of), as exposure_facts' did, and so do
-- finding_risk's SLA states, days past the SLA and risk, as
-- finding_risk_snapshot's did, and stale; finding_risk reads the SLA
-- policy in force when read (a new policy's deadlines show
-- at once; the KPI snapshots take it from the next refresh). The
-- differential tests hold them to kpi_exposures_live and finding_risk_live
-- as before.

-- The SLA and risk formulas (0016's kpi_exposure_sla and exposure_risk),
-- defined once: exposure_risk and finding_risk both use them.
CREATE OR REPLACE FUNCTION patchgrid_sla_deadline AS (kev_deadline, kev_due_date, clock_start, sla_days) ->
    if(kev_deadline = 1, greatest(toDateTime(kev_due_date, 'UTC') + 86399, clock_start), clock_start + toIntervalDay(sla_days));
-- at: the time an open exposure's state is taken at (kpi_exposure_sla:
-- now(); finding_risk: the refresh's, as its stored rows had).
CREATE OR REPLACE FUNCTION patchgrid_sla_state AS (is_open, fix_available, resolved_at, sla_deadline, at) ->
    multiIf(is_open = 1 AND fix_available = 0, 'no_fix', is_open = 0 AND resolved_at <= sla_deadline, 'met',
        is_open = 0, 'missed', at > sla_deadline, 'overdue', 'open');
CREATE OR REPLACE FUNCTION patchgrid_days_past_sla AS (sla_state, window_end, sla_deadline) ->
    if(sla_state = 'no_fix', 0, greatest(toInt64(window_end) - toInt64(sla_deadline), 0) / 86400);
CREATE OR REPLACE FUNCTION patchgrid_risk_cvss AS (cvss_score, severity) ->
    round(3.5 * if(cvss_score > 0, cvss_score,
        multiIf(severity = 'critical', 9.5, severity = 'high', 7.5, severity IN ('medium', 'unknown'), 5.0, severity = 'low', 2.5, 0.0)), 2);
CREATE OR REPLACE FUNCTION patchgrid_risk_epss AS (epss, epss_percentile) -> round(10 * epss + 5 * epss_percentile, 2);
CREATE OR REPLACE FUNCTION patchgrid_risk_kev AS (kev, kev_due_date, window_end, ssvc_exploitation) ->
    if(kev = 1, 15.0 + if(kev_due_date > toDate(0) AND window_end > toDateTime(kev_due_date, 'UTC') + 86399, 5.0, 0.0),
        multiIf(ssvc_exploitation = 'active', 15.0, ssvc_exploitation = 'poc', 7.5, 0.0));
CREATE OR REPLACE FUNCTION patchgrid_risk_asset AS (criticality) -> 2.5 * if(criticality = 0, 2, least(criticality, 4));
CREATE OR REPLACE FUNCTION patchgrid_risk_internet AS (internet_facing) -> if(internet_facing = 1, 10.0, 0.0);
CREATE OR REPLACE FUNCTION patchgrid_risk_sla AS (days_past_sla) -> round(10 * least(days_past_sla, 30) / 30, 2);
CREATE OR REPLACE FUNCTION patchgrid_risk_level AS (risk_score) ->
    multiIf(risk_score >= 70, 'critical', risk_score >= 50, 'high', risk_score >= 25, 'medium', 'low');

-- kpi_exposure_sla and exposure_risk (0016): same columns and meaning,
-- through the functions.
DROP VIEW IF EXISTS kpi_exposure_sla;
CREATE VIEW IF NOT EXISTS kpi_exposure_sla AS
SELECT e.*, p.policy AS policy, p.sla_days AS sla_days,
    toUInt8(p.kev_due_date = 1 AND e.kev = 1 AND e.kev_due_date > toDate(0)) AS kev_deadline,
    patchgrid_sla_deadline(kev_deadline, e.kev_due_date, e.clock_start, p.sla_days) AS sla_deadline,
    patchgrid_sla_state(e.is_open, e.fix_available, e.resolved_at, sla_deadline, now()) AS sla_state,
    patchgrid_days_past_sla(sla_state, e.window_end, sla_deadline) AS days_past_sla
FROM kpi_exposures AS e
INNER JOIN (SELECT * FROM sla_policy FINAL) AS p ON p.severity = e.severity;

DROP VIEW IF EXISTS exposure_risk;
CREATE VIEW IF NOT EXISTS exposure_risk AS
SELECT *,
    patchgrid_risk_cvss(cvss_score, severity) AS risk_cvss,
    patchgrid_risk_epss(epss, epss_percentile) AS risk_epss,
    patchgrid_risk_kev(kev, kev_due_date, window_end, ssvc_exploitation) AS risk_kev,
    patchgrid_risk_asset(criticality) AS risk_asset,
    patchgrid_risk_internet(internet_facing) AS risk_internet,
    patchgrid_risk_sla(days_past_sla) AS risk_sla,
    risk_cvss + risk_epss + risk_kev + risk_asset + risk_internet + risk_sla AS risk_score,
    patchgrid_risk_level(risk_score) AS risk_level
FROM kpi_exposure_sla
WHERE policy = 'default';

-- host_facts: kpi_hosts as of the refresh (dims apart), then
--   eol_fp  a hash of the host's end-of-life exposure (eol_exposures,
--           last_seen apart; 0 for none): a host whose release reaches its
--           end of life gets its rows rewritten though nothing else of it
--           changed
--   stale   1 when the host was stale at the refresh: the base rows hold
--           it, and a host whose staleness changed is rewritten
--   as_of   when the refresh wrote it (the same on every row): where open
--           exposures' windows end, as exposure_facts' window_end did, so
--           that kpi_exposures, finding_risk and the KPI snapshots read
--           one instant, the refresh's
--   state_key  cityHash64 of the host's latest (inventory, running
--           kernel): a host that changed either is rewritten
--   refresh_version  the version of the refresh that wrote it
--           (refresh_runs.version): newer than the last successful
--           refresh's, it was written by one that stopped midway
CREATE TABLE IF NOT EXISTS host_facts
ENGINE = MergeTree ORDER BY host_id
EMPTY AS SELECT host_id, hostname, owner, ring, criticality, internet_facing, os, last_scan_at, toUInt64(0) AS eol_fp,
    toUInt8(0) AS stale, now() AS as_of, toUInt64(0) AS state_key, toUInt64(0) AS refresh_version
FROM kpi_hosts;

-- The exceptions in force at the refresh, as exposure_exceptions and
-- finding_exception_best give them: the base rows hold them too, and a
-- refresh rewrites the hosts whose exceptions changed.
CREATE TABLE IF NOT EXISTS exposure_exceptions_snapshot
ENGINE = MergeTree ORDER BY (host_id, source, advisory_id)
EMPTY AS SELECT * FROM exposure_exceptions;

CREATE TABLE IF NOT EXISTS finding_exceptions_snapshot
ENGINE = MergeTree ORDER BY (host_id, source, advisory_id, package)
EMPTY AS SELECT * FROM finding_exception_best;

-- advisory_facts: per advisory, a hash of what kpi_exposures_live takes
-- from it (its kpi_advisories row, its current record, its per-release
-- ratings), as of the refresh.
CREATE TABLE IF NOT EXISTS advisory_facts (source String, advisory_id String, fp UInt64)
ENGINE = MergeTree ORDER BY (source, advisory_id);

-- exposure_base: kpi_exposures_live's columns but dims and the clock's
-- (window_end, window_days); an open exposure's last_seen is stored as the
-- epoch (it is the host's last scan, host_facts.last_scan_at, which
-- rescans move). stale comes from a scalar subquery, whose type is
-- Nullable: it is stored as not (kpi_stale_limit has one row), as
-- exposure_facts stored it, so that the views over kpi_exposures keep
-- their column types.
CREATE TABLE IF NOT EXISTS exposure_base
ENGINE = ReplacingMergeTree(version, deleted) ORDER BY (host_id, source, advisory_id)
EMPTY AS SELECT * EXCEPT (dims, window_end, window_days) REPLACE (assumeNotNull(stale) AS stale),
    toUInt64(0) AS version, toUInt8(0) AS deleted
FROM kpi_exposures_live;

-- finding_risk_base: finding_risk_live's columns but the SLA's and the
-- risk parts that move with the clock (risk_kev, risk_sla, risk_score,
-- risk_level); then fix_available (sla_state is 'no_fix'
-- exactly when it is 0) and row_key, a hash of the rest of the row's
-- identity (package, installed version, arch, ecosystem, matched name and
-- version): the sorting key is (host_id, source, advisory_id, row_key),
-- so that reading FINAL compares four columns, not nine, while a host's
-- findings of one advisory stay together (two distinct findings of a
-- host's advisory colliding would need a 64-bit cityHash collision).
CREATE TABLE IF NOT EXISTS finding_risk_base
ENGINE = ReplacingMergeTree(version, deleted) ORDER BY (host_id, source, advisory_id, row_key)
EMPTY AS SELECT * EXCEPT (sla_deadline, sla_state, days_past_sla, risk_kev, risk_sla, risk_score, risk_level)
        REPLACE (assumeNotNull(stale) AS stale),
    toUInt8(1) AS fix_available, toUInt64(0) AS row_key, toUInt64(0) AS version, toUInt8(0) AS deleted
FROM finding_risk_live;

-- kpi_exposures: 0016's columns, order and meaning, from the tables above.
-- Nothing is joined: a join, even one whose columns a reader does not use,
-- costs every read (1.2 s of 2.3 s for a DISTINCT over finding_risk at
-- `make run` size). The refresh's time and the hosts' last scans are
-- scalar subqueries, read once per query, and the last scans looked up
-- (transform: a hash lookup) only when last_seen is read.
DROP VIEW IF EXISTS kpi_exposures;
CREATE VIEW IF NOT EXISTS kpi_exposures AS
WITH (SELECT max(as_of) FROM host_facts) AS refreshed,
    (SELECT (groupArray(host_id), groupArray(last_scan_at)) FROM host_facts) AS last_scans
SELECT host_id, hostname, owner, ring, criticality, internet_facing, os, patchgrid_kpi_dims(ring, owner, os, criticality) AS dims,
    source, advisory_id, severity, cvss_version, cvss_score, published, fix_published, cves, kev, kev_due_date,
    has_epss, epss, epss_percentile, epss_band, first_seen,
    if(is_open = 1, transform(host_id, last_scans.1, last_scans.2, toDateTime(0)), f.last_seen) AS last_seen, resolved_at, reopened, is_open,
    if(is_open = 1, assumeNotNull(refreshed), resolved_at) AS window_end,
    (toInt64(window_end) - toInt64(first_seen)) / 86400 AS window_days,
    remediation_days, ttp_publication_days, ttp_fix_days, severity_source, ssvc_exploitation, known_at, disclosed_at,
    fix_available, clock_start, ttp_disclosure_days, exception_id, exception_expires_at, accepted, stale
FROM (SELECT * FROM exposure_base FINAL) AS f;

-- finding_risk: 0016's columns, order and meaning, from the tables above
-- (every row is an open finding: its window ends at the refresh). The
-- SLA policy is scalar arrays looked up with transform (a hash lookup; a
-- Map's is a scan of its keys, 0.7 s over 29M findings), and a finding
-- whose severity has no policy row is left out, as the join of
-- finding_risk_live leaves it.
DROP VIEW IF EXISTS finding_risk;
CREATE VIEW IF NOT EXISTS finding_risk AS
WITH assumeNotNull((SELECT max(as_of) FROM host_facts)) AS refreshed,
    (SELECT (groupArray(severity), groupArray(sla_days), groupArray(kev_due_date)) FROM sla_policy FINAL WHERE policy = 'default') AS sla
SELECT host_id, hostname, owner, ring, criticality, internet_facing, os, source, advisory_id, cves, severity,
    cvss_score, has_epss, epss, epss_percentile, kev, kev_due_date, ecosystem, package, installed_version, arch,
    match_name, match_version, status, fixed_version, kernel_state, published, fix_published, first_seen,
    patchgrid_sla_deadline(toUInt8(transform(severity, sla.1, sla.3, toUInt8(0)) = 1 AND kev = 1 AND kev_due_date > toDate(0)), kev_due_date, clock_start,
        transform(severity, sla.1, sla.2, toUInt32(0))) AS sla_deadline,
    patchgrid_sla_state(1, fix_available, toDateTime(0), sla_deadline, refreshed) AS sla_state,
    patchgrid_days_past_sla(sla_state, refreshed, sla_deadline) AS days_past_sla,
    risk_cvss, risk_epss,
    patchgrid_risk_kev(kev, kev_due_date, refreshed, ssvc_exploitation) AS risk_kev,
    risk_asset, risk_internet,
    patchgrid_risk_sla(days_past_sla) AS risk_sla,
    risk_cvss + risk_epss + risk_kev + risk_asset + risk_internet + risk_sla AS risk_score,
    patchgrid_risk_level(risk_score) AS risk_level,
    severity_source, ssvc_exploitation, known_at, clock_start, exception_id, exception_expires_at, accepted, stale
FROM (SELECT * FROM finding_risk_base FINAL)
WHERE severity IN (SELECT severity FROM sla_policy FINAL WHERE policy = 'default');

-- refresh_runs: layout 3 for refreshes that write the tables above (an
-- incremental refresh after none rewrites every host's rows), and
--   rewritten_hosts  hosts whose base rows were rewritten
--   version          the version of the rows it wrote (nanoseconds at its start)
ALTER TABLE refresh_runs ADD COLUMN IF NOT EXISTS rewritten_hosts UInt64;
ALTER TABLE refresh_runs ADD COLUMN IF NOT EXISTS version UInt64;

-- The whole copies they replace.
DROP TABLE IF EXISTS exposure_facts;
DROP TABLE IF EXISTS finding_risk_snapshot;

