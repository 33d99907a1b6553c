-- patchgrid:min-server 23.8
-- Exposure history stored as facts that a rescan with the same inventory
-- does not change, so that a refresh writes rows in proportion to what
-- changed: a day of heartbeats rewrites no exposure row, only the latest
-- segment of each host (host_segments, 0005).
--
-- 0005's exposures table held last_seen and exposed_scans for every
-- (host, advisory): every heartbeat moved both for every exposure of the
-- host, and the refresh rewrote them all (15.6M rows for 10,000 hosts x 7
-- days). Here an open exposure stores no value that grows with time: its
-- last_seen is the host's latest scan and its exposed_scans is an offset
-- from the host's scan count, both read from the host's latest segment.

-- host_segments gains the host's scan count through each segment (scans of
-- this segment and every earlier one). Written by analytics/refresh.
ALTER TABLE host_segments ADD COLUMN IF NOT EXISTS scans_through UInt64;

-- One row per (host, advisory) that was ever exposed, summarizing its
-- exposed spans (maximal runs of consecutive exposed segments):
--   first_seen   the first exposed scan
--   exposed_now  1 when the host's latest segment exposes it (the last span is open)
--   last_seen    resolved: the last exposed scan; open: epoch 0 (the host's latest scan, read when read)
--   resolved_at  resolved: the first scan after the last exposed one; open: epoch 0
--   reopened     spans - 1
--   scans_offset resolved: the exposed scans; open: the exposed scans minus
--                the host's scans through its latest segment at the refresh,
--                i.e. minus the scans in which it was not exposed. Adding
--                the host's current scans_through gives exposed_scans: a
--                rescan of an unchanged inventory changes neither.
-- A refresh recomputes the rows of hosts whose segments changed other than
-- by rescans of their latest inventory, and of advisories whose record
-- changed, and writes only the rows that differ (version = the refresh's;
-- rows that no longer hold are written with deleted = 1).
CREATE TABLE IF NOT EXISTS exposure_spans (
    host_id      String,
    source       String,
    advisory_id  String,
    first_seen   DateTime,
    last_seen    DateTime,
    resolved_at  DateTime,
    reopened     UInt32,
    exposed_now  UInt8,
    scans_offset Int64,
    version      UInt64,
    deleted      UInt8
) ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (host_id, source, advisory_id);

-- exposure_history: 0003's columns and meaning (see exposure_history_live,
-- 0005), read from exposure_spans and each host's latest segment.
DROP VIEW IF EXISTS exposure_history;
CREATE VIEW IF NOT EXISTS exposure_history AS
SELECT x.host_id AS host_id, x.source AS source, x.advisory_id AS advisory_id, x.first_seen AS first_seen,
    if(x.exposed_now = 1, l.seg_last, x.last_seen) AS last_seen,
    x.resolved_at AS resolved_at, x.reopened AS reopened, x.exposed_now AS exposed_now,
    toUInt64(x.scans_offset + if(x.exposed_now = 1, toInt64(l.scans_through), 0)) AS exposed_scans
FROM (SELECT * FROM exposure_spans FINAL) AS x
LEFT JOIN (SELECT host_id, seg_last, scans_through FROM host_segments FINAL WHERE is_last = 1) AS l ON l.host_id = x.host_id
SETTINGS join_use_nulls = 0;

-- 0005's per-(host, advisory) table: nothing reads it any more.
DROP TABLE IF EXISTS exposures;

-- refresh_runs: what each refresh wrote.
--   exposed_hosts  hosts whose exposures were recomputed (hosts counts those whose segments were)
--   segments       host_segments rows written (deletions included)
--   layout         2 for refreshes that write exposure_spans; an incremental
--                  refresh starts from the last such run (the first one
--                  after this migration revisits every host)
ALTER TABLE refresh_runs ADD COLUMN IF NOT EXISTS exposed_hosts UInt64;
ALTER TABLE refresh_runs ADD COLUMN IF NOT EXISTS segments UInt64;
ALTER TABLE refresh_runs ADD COLUMN IF NOT EXISTS layout UInt8;
