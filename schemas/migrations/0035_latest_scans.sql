-- patchgrid:min-server 23.8
-- Views of each host's latest scan, and the end-of-life views, read less
-- of scans (issue 16: a refresh in seconds). At 100,000 hosts × 90 days
-- (9M scans) each took about 3 s, and a refresh reads them many times:
-- kpi_hosts in every exposure_base statement (kpi_exposures_live) and in
-- its host facts, posture, coverage, SLA and risk groups; eol_exposures
-- in every base-row statement (through kpi_exposures and latest_findings).
--   kpi_hosts (0005) and host_last_scan (0007)  same columns, rows and
--       meaning. Each host's latest scan is the greatest (scanned_at,
--       scan_id) of its scans: that key is found first, reading three
--       columns, and joined back to the scans that have it, whose labels
--       are taken (ties, as before, are copies of one scan). A join, not
--       IN: a reader's condition on host_id (the refresh's shards) reaches
--       both of its sides, where IN read every host's scans for any
--       shard. kpi_hosts took 1.8 s against 2.5 to 3.3 s, and 0.23 s
--       against 0.33 s for a tenth of the hosts.
--   eol_findings (0007)  same columns, rows and meaning, from
--       host_last_scan as in 0007. A host whose latest scan is of a
--       release past its end of life has a scan of one, so only the hosts
--       with any such scan are read (the condition reaches both sides of
--       host_last_scan's join): 0.5 s against 3.0 s, where 6,900 hosts
--       run such a release.
--   eol_exposures (0016)  same columns, rows and meaning. The first scan
--       of a release is looked up only for releases past their end of
--       life, the only ones its join keeps: 0.7 s against 3.1 s.
-- A release is past its end of life where eol_releases says so as of
-- today(), as in 0007; the filters and the views they narrow read the
-- same table in the same statement.

DROP VIEW IF EXISTS kpi_hosts;
CREATE VIEW IF NOT EXISTS kpi_hosts AS
SELECT host_id,
    latest.1 AS hostname, latest.2 AS owner, latest.3 AS ring,
    latest.4 AS criticality, latest.5 AS internet_facing,
    if(latest.6 != '', latest.6, trimBoth(concat(latest.7, ' ', latest.8))) AS os,
    latest.9 AS last_scan_at,
    patchgrid_kpi_dims(ring, owner, os, criticality) AS dims
FROM (
    SELECT s.host_id AS host_id,
        argMax((s.hostname, s.owner, s.ring, s.criticality, s.internet_facing, s.os_ecosystem, s.os_id, s.os_version, s.scanned_at),
               (s.scanned_at, s.scan_id)) AS latest
    FROM scans AS s
    INNER JOIN (SELECT host_id, max((scanned_at, scan_id)) AS k FROM scans GROUP BY host_id) AS m
        ON s.host_id = m.host_id AND s.scanned_at = m.k.1 AND s.scan_id = m.k.2
    GROUP BY s.host_id
);

DROP VIEW IF EXISTS host_last_scan;
CREATE VIEW IF NOT EXISTS host_last_scan AS
SELECT host_id, latest.1 AS scan_id, latest.2 AS last_scanned_at, latest.3 AS hostname,
    latest.4 AS os_ecosystem, latest.5 AS inventory_hash,
    intDiv(toInt64(toUInt32(now())) - toInt64(toUInt32(latest.2)), 86400) AS days_since_scan
FROM (
    SELECT s.host_id AS host_id,
        argMax((s.scan_id, s.scanned_at, s.hostname, s.os_ecosystem, s.inventory_hash), (s.scanned_at, s.scan_id)) AS latest
    FROM scans AS s
    INNER JOIN (SELECT host_id, max((scanned_at, scan_id)) AS k FROM scans GROUP BY host_id) AS m
        ON s.host_id = m.host_id AND s.scanned_at = m.k.1 AND s.scan_id = m.k.2
    GROUP BY s.host_id
);

DROP VIEW IF EXISTS eol_findings;
CREATE VIEW IF NOT EXISTS eol_findings AS
SELECT host_id, hostname, os_ecosystem, last_scanned_at, eol_date, basis, source,
    toInt64(toRelativeDayNum(today())) - toInt64(toRelativeDayNum(eol_date)) AS days_past_eol
FROM (
    SELECT host_id, hostname, os_ecosystem, last_scanned_at FROM host_last_scan
    WHERE host_id IN (SELECT host_id FROM scans WHERE os_ecosystem IN (SELECT ecosystem FROM eol_releases WHERE eol_date <= today()))
) AS latest_scans
ALL INNER JOIN (
    SELECT ecosystem AS os_ecosystem, eol_date, basis, source FROM eol_releases
) AS releases USING (os_ecosystem)
WHERE eol_date <= today();

DROP VIEW IF EXISTS eol_exposures;
CREATE VIEW IF NOT EXISTS eol_exposures AS
SELECT e.host_id AS host_id, 'endoflife.date' AS source, concat('EOL-', e.os_ecosystem) AS advisory_id,
    greatest(eol_at, s.since) AS first_seen, e.last_scanned_at AS last_seen,
    toDateTime(0) AS resolved_at, toUInt32(0) AS reopened, toUInt8(1) AS exposed_now,
    toDateTime(toUInt32(toDateTime(e.eol_date, 'UTC'))) AS eol_at, e.source AS eol_source, e.os_ecosystem AS os_ecosystem, e.basis AS basis
FROM eol_findings AS e
INNER JOIN (
    SELECT host_id, os_ecosystem, min(scanned_at) AS since FROM scans
    WHERE os_ecosystem IN (SELECT ecosystem FROM eol_releases WHERE eol_date <= today())
    GROUP BY host_id, os_ecosystem
) AS s ON s.host_id = e.host_id AND s.os_ecosystem = e.os_ecosystem;
