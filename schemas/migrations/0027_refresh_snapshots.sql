-- patchgrid:min-server 23.8
-- refresh_runs.snapshots (issue 16): 1 when the refresh rewrote the KPI
-- snapshot tables, 0 when it left them as they were (analytics/refresh's
-- Job.DeferSnapshots: `patchgrid run` refreshes again after its
-- automation stage, and nothing reads the snapshots between the two). The
-- KPIs' "now" is the last successful refresh that wrote them.
ALTER TABLE refresh_runs ADD COLUMN IF NOT EXISTS snapshots UInt8 DEFAULT 1;
