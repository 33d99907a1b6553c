-- patchgrid:min-server 23.8
-- The groups of exposures follow exposure_base host by host (issue 16: a
-- refresh proportional to change). exposure_groups (0030) and
-- reopened_groups (0031) count each host's exposures by columns of its
-- own exposure_base rows, so a host's groups change only when its rows
-- do. A refresh copied both whole whenever any row of exposure_base
-- changed: at 100,000 hosts × 90 days, 24 s and 12 s of a day of scans
-- that changed the rows of 7,000 hosts. They are now tables a refresh
-- writes only for the hosts whose exposure_base rows it wrote since it
-- last brought the groups up to date: the groups that changed, under a
-- version, and those gone, deleted (ReplacingMergeTree, read FINAL), as
-- with exposure_base.
--   exposure_groups_base, reopened_groups_base  the rows of
--       exposure_groups_live and reopened_groups_live, with version and
--       deleted; sorted by host and the columns each view groups by, so
--       that a row is a group.
--   exposure_groups_snapshot, reopened_groups_snapshot  now views of
--       their current rows, under the names the KPI views read.
--   snapshot_inputs.version  for a group table, the exposure_base version
--       it is up to date with (its fp fingerprints the definitions it is
--       computed by: another one makes the next refresh write it whole).
-- The first refresh after this migration writes both tables whole.

CREATE TABLE IF NOT EXISTS exposure_groups_base
ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (host_id, severity, is_open, accepted, fix_available, kev, kev_due_date, clock_start, resolved_at, first_seen)
EMPTY AS SELECT *, toUInt64(0) AS version, toUInt8(0) AS deleted FROM exposure_groups_live;

CREATE TABLE IF NOT EXISTS reopened_groups_base
ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (host_id, is_open, resolved_last_seen)
EMPTY AS SELECT *, toUInt64(0) AS version, toUInt8(0) AS deleted FROM reopened_groups_live;

DROP TABLE IF EXISTS exposure_groups_snapshot;
CREATE VIEW IF NOT EXISTS exposure_groups_snapshot AS
SELECT * EXCEPT (version, deleted) FROM exposure_groups_base FINAL WHERE deleted = 0;

DROP TABLE IF EXISTS reopened_groups_snapshot;
CREATE VIEW IF NOT EXISTS reopened_groups_snapshot AS
SELECT * EXCEPT (version, deleted) FROM reopened_groups_base FINAL WHERE deleted = 0;

ALTER TABLE snapshot_inputs ADD COLUMN IF NOT EXISTS version UInt64;
