-- patchgrid:min-server 23.8
-- snapshot_inputs (issue 16: a refresh proportional to change): per KPI
-- snapshot table that analytics/refresh copies only when what it is
-- computed from changed, the fingerprint of those inputs when the table
-- was last written. The KPIs kpi_mttr, kpi_time_to_patch, kpi_open_exposure
-- and kpi_daily_trend are functions of exposure_base's rows alone (none
-- reads the clock, window_end or another table), so the fingerprint is
-- the greatest version in exposure_base (every write of its rows, deletions
-- included, carries a newer one) with the definitions they are computed
-- by: the X_live view's, kpi_exposures' and the SQL functions'. A refresh
-- whose fingerprint equals the stored one leaves the table as it is: a
-- heartbeat day, or a refresh in which nothing of the exposures changed,
-- copies none of them. A row is written after its table is swapped in,
-- so one that is missing or stale only makes the next refresh copy again.
CREATE TABLE IF NOT EXISTS snapshot_inputs (
    snapshot String,
    fp UInt64,
    refresh_id String,
    written_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(written_at) ORDER BY snapshot;
