-- patchgrid:min-server 23.8
-- kpi_deploy_regressions over groups of reopened exposures (issue 16: a
-- refresh in seconds). The KPI (0015) counts the exposures that reopened
-- by the week of their last sighting; an open exposure's last sighting is
-- its host's last scan (kpi_exposures reads it from host_facts), which
-- every rescan moves, so every refresh copied the KPI, reading every
-- exposure (159M at 100,000 hosts × 90 days: 4 s of a day of heartbeats)
-- for the few that reopened.
--   reopened_groups_live  the reopened exposures of kpi_exposures counted
--       (n, and their reopenings) per host, open flag and, for a resolved
--       one, last sighting; ring, owner, os and criticality are the host's.
--       It reads neither the clock, nor an open exposure's last sighting,
--       nor another table than kpi_exposures' own, so a refresh copies it
--       (reopened_groups_snapshot) only when exposure_base changed (0028),
--       before the KPI snapshots.
-- kpi_deploy_regressions_live keeps its columns, rows and meaning: an open
-- group's week is its host's last scan's, as of the refresh, as
-- kpi_exposures gives it. The refresh's differential test holds it to
-- 0015's definition.

CREATE VIEW IF NOT EXISTS reopened_groups_live AS
SELECT host_id, any(ring) AS ring, any(owner) AS owner, any(os) AS os, any(criticality) AS criticality,
    is_open, if(is_open = 1, toDateTime(0), last_seen) AS resolved_last_seen, count() AS n, sum(reopened) AS reopenings
FROM kpi_exposures
WHERE reopened > 0
GROUP BY host_id, is_open, resolved_last_seen;

CREATE TABLE IF NOT EXISTS reopened_groups_snapshot
ENGINE = MergeTree ORDER BY host_id
EMPTY AS SELECT * FROM reopened_groups_live;

DROP VIEW IF EXISTS kpi_deploy_regressions_live;
CREATE VIEW IF NOT EXISTS kpi_deploy_regressions_live AS
WITH (SELECT (groupArray(host_id), groupArray(last_scan_at)) FROM host_facts) AS last_scans
SELECT toMonday(if(is_open = 1, transform(host_id, last_scans.1, last_scans.2, toDateTime(0)), resolved_last_seen), 'UTC') AS week,
    d.1 AS dimension, d.2 AS dim_value,
    sum(n) AS reopened_exposures,
    sum(reopenings) AS reopen_events,
    uniqExact(host_id) AS hosts,
    sumIf(n, is_open = 1) AS open_now
FROM reopened_groups_snapshot
ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
GROUP BY week, dimension, dim_value;
