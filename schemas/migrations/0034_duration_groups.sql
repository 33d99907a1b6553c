-- patchgrid:min-server 23.8
-- Time to patch and MTTR over groups of exposures (issue 16: a refresh in
-- seconds). kpi_time_to_patch and kpi_mttr (0024) read every exposure
-- whenever exposure_base changed: 57 s and 33 s of a full refresh at
-- 100,000 hosts × 90 days (159M exposures), 68 s and 38 s of a day of
-- scans that changed the rows of 7,000 hosts. But both count each
-- exposure by its host's columns (ring, owner, os, criticality, stale),
-- severity, open and accepted flags and four durations (from
-- publication, fix, disclosure and first sighting to resolution; 0 while
-- open, and the fix one only with a fix date), and a host's exposures
-- share these far more often than not: they are resolved by the same
-- scans, and advisories share publication dates. 15.6M exposures fall
-- into 220,000 such groups at `make run` size.
--   duration_groups_live  the exposures of kpi_exposures counted (n) per
--       group equal in those columns, the durations as 0024's views take
--       them (pub, has_fix, fix, dis, rem: never nan, so that a group's
--       key compares equal to itself). It reads neither the clock nor
--       another table, so it follows exposure_base host by host as the
--       tables of 0032 do.
--   duration_groups_base, duration_groups_snapshot  its rows, with
--       version and deleted, and the view of the current ones.
-- kpi_time_to_patch_live and kpi_mttr_live are 0024's, reading the groups:
-- each count is the sum of n, and each sum of whole seconds adds a
-- group's seconds times n (integers: the same sums exactly). Same columns,
-- rows and meaning; the refresh's differential test holds both to 0016's
-- definitions, as it held 0024's.

CREATE VIEW IF NOT EXISTS duration_groups_live AS
SELECT host_id, any(ring) AS ring, any(owner) AS owner, any(os) AS os, any(criticality) AS criticality, any(stale) AS stale,
    severity, is_open, accepted,
    if(is_open = 1, 0, ttp_publication_days) AS pub, toUInt8(isFinite(ttp_fix_days)) AS has_fix,
    if(has_fix = 1, ttp_fix_days, 0) AS fix, if(is_open = 1, 0, ttp_disclosure_days) AS dis,
    if(is_open = 1, 0, remediation_days) AS rem, count() AS n
FROM kpi_exposures
GROUP BY host_id, severity, is_open, accepted, pub, has_fix, fix, dis, rem;

CREATE TABLE IF NOT EXISTS duration_groups_base
ENGINE = ReplacingMergeTree(version, deleted)
ORDER BY (host_id, severity, is_open, accepted, pub, has_fix, fix, dis, rem)
EMPTY AS SELECT *, toUInt64(0) AS version, toUInt8(0) AS deleted FROM duration_groups_live;

CREATE VIEW IF NOT EXISTS duration_groups_snapshot AS
SELECT * EXCEPT (version, deleted) FROM duration_groups_base FINAL WHERE deleted = 0;

DROP VIEW IF EXISTS kpi_time_to_patch_live;
CREATE VIEW IF NOT EXISTS kpi_time_to_patch_live AS
WITH
    durations AS (
        SELECT ring, owner, os, criticality, severity, cityHash64(ring, owner, os, criticality, severity) AS cell,
            is_open, has_fix, n AS cnt,
            toUInt8(patchgrid_kpi_state('', is_open, stale, accepted, 1) = 'accepted') AS acc,
            pub, toInt64(round(pub * 86400)) AS pub_s, intDiv(pub_s, 86400) AS pub_d,
            fix, toInt64(round(fix * 86400)) AS fix_s, intDiv(fix_s, 86400) AS fix_d,
            dis, toInt64(round(dis * 86400)) AS dis_s, intDiv(dis_s, 86400) AS dis_d,
            rem, toInt64(round(rem * 86400)) AS rem_s, intDiv(rem_s, 86400) AS rem_d
        FROM duration_groups_snapshot
    ),
    candidate_days AS (
        SELECT DISTINCT kind, hist[arrayFirstIndex(c -> c > floor(0.5 * total), arrayCumSum(arrayMap(h -> h.2, hist)))].1 AS day
        FROM (
            SELECT kind, sum(n) AS total, arraySort(groupArray((day, n))) AS hist
            FROM (
                SELECT d.1 AS dimension, d.2 AS dim_value, sev, kind, day, sum(n) AS n
                FROM (
                    SELECT any(ring) AS ring, any(owner) AS owner, any(os) AS os, any(criticality) AS criticality,
                        any(severity) AS severity,
                        multiIf(grouping(pub_d) = 0, 'pub', grouping(fix_d) = 0, 'fix', grouping(dis_d) = 0, 'dis', 'rem') AS kind,
                        multiIf(kind = 'pub', pub_d, kind = 'fix', fix_d, kind = 'dis', dis_d, rem_d) AS day,
                        if(kind = 'fix', has_fix = 1, is_open = 0) AS counted, sum(cnt) AS n
                    FROM durations
                    GROUP BY GROUPING SETS ((cell, is_open, pub_d), (cell, has_fix, fix_d), (cell, is_open, dis_d), (cell, is_open, rem_d))
                )
                ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
                ARRAY JOIN [severity, 'all'] AS sev
                WHERE counted
                GROUP BY dimension, dim_value, sev, kind, day
            )
            GROUP BY dimension, dim_value, sev, kind
        )
    ),
    (
        SELECT (groupArrayIf(day, kind = 'pub'), groupArrayIf(day, kind = 'fix'),
            groupArrayIf(day, kind = 'dis'), groupArrayIf(day, kind = 'rem'))
        FROM candidate_days
    ) AS cands
SELECT dimension, dim_value, severity, resolved, with_fix_date,
    from_publication_avg_days, from_publication_median_days, from_fix_avg_days, from_fix_median_days,
    from_disclosure_avg_days, from_disclosure_median_days, from_first_seen_avg_days, from_first_seen_median_days,
    if(exceptions = 'honoured', accepted_open, 0) AS accepted, exceptions
FROM (
    SELECT dimension, dim_value, severity,
        toUInt64(sumIf(n, kind = 'pub')) AS resolved,
        toUInt64(sumIf(n, kind = 'fix')) AS with_fix_date,
        sumIf(secs, kind = 'pub') / 86400 / resolved AS from_publication_avg_days,
        arraySort(groupArrayIf((day, x, n), kind = 'pub')) AS pub_hist,
        if(resolved = 0, nan, pub_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(h -> h.3, pub_hist)))].2) AS from_publication_median_days,
        sumIf(secs, kind = 'fix') / 86400 / with_fix_date AS from_fix_avg_days,
        arraySort(groupArrayIf((day, x, n), kind = 'fix')) AS fix_hist,
        if(with_fix_date = 0, nan, fix_hist[arrayFirstIndex(c -> c > floor(0.5 * with_fix_date), arrayCumSum(arrayMap(h -> h.3, fix_hist)))].2) AS from_fix_median_days,
        sumIf(secs, kind = 'dis') / 86400 / resolved AS from_disclosure_avg_days,
        arraySort(groupArrayIf((day, x, n), kind = 'dis')) AS dis_hist,
        if(resolved = 0, nan, dis_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(h -> h.3, dis_hist)))].2) AS from_disclosure_median_days,
        sumIf(secs, kind = 'rem') / 86400 / resolved AS from_first_seen_avg_days,
        arraySort(groupArrayIf((day, x, n), kind = 'rem')) AS rem_hist,
        if(resolved = 0, nan, rem_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(h -> h.3, rem_hist)))].2) AS from_first_seen_median_days,
        toUInt64(sumIf(n, kind = 'acc' AND acc = 1)) AS accepted_open
    FROM (
        SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity, kind, acc, day, x, sum(n) AS n, sum(secs) AS secs
        FROM (
            SELECT any(ring) AS ring, any(owner) AS owner, any(os) AS os, any(criticality) AS criticality, any(severity) AS severity,
                multiIf(grouping(acc) = 0, 'acc', grouping(pub_d) = 0, 'pub', grouping(fix_d) = 0, 'fix', grouping(dis_d) = 0, 'dis', 'rem') AS kind,
                multiIf(kind = 'pub', pub_d, kind = 'fix', fix_d, kind = 'dis', dis_d, rem_d) AS day,
                multiIf(kind = 'pub', pub_x, kind = 'fix', fix_x, kind = 'dis', dis_x, rem_x) AS x,
                multiIf(kind = 'acc', true, kind = 'fix', has_fix = 1, is_open = 0) AS counted,
                acc, sum(cnt) AS n,
                multiIf(kind = 'pub', sum(pub_s * cnt), kind = 'fix', sum(fix_s * cnt), kind = 'dis', sum(dis_s * cnt), sum(rem_s * cnt)) AS secs
            FROM (
                -- transform(day, days, [1, ...], 0) = 1: day is one of days.
                SELECT *,
                    if(transform(pub_d, cands.1, arrayMap(c -> 1, cands.1), 0) = 1, pub, 0) AS pub_x,
                    if(transform(fix_d, cands.2, arrayMap(c -> 1, cands.2), 0) = 1, fix, 0) AS fix_x,
                    if(transform(dis_d, cands.3, arrayMap(c -> 1, cands.3), 0) = 1, dis, 0) AS dis_x,
                    if(transform(rem_d, cands.4, arrayMap(c -> 1, cands.4), 0) = 1, rem, 0) AS rem_x
                FROM durations
            )
            GROUP BY GROUPING SETS ((cell, acc), (cell, is_open, pub_d, pub_x), (cell, has_fix, fix_d, fix_x),
                (cell, is_open, dis_d, dis_x), (cell, is_open, rem_d, rem_x))
        )
        ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
        ARRAY JOIN [severity, 'all'] AS sev
        WHERE counted
        GROUP BY dimension, dim_value, severity, kind, acc, day, x
    )
    GROUP BY dimension, dim_value, severity
)
ARRAY JOIN ['honoured', 'ignored'] AS exceptions;

DROP VIEW IF EXISTS kpi_mttr_live;
CREATE VIEW IF NOT EXISTS kpi_mttr_live AS
WITH
    durations AS (
        SELECT ring, owner, os, criticality, severity, cityHash64(ring, owner, os, criticality, severity) AS cell, is_open, n AS cnt,
            toUInt8(patchgrid_kpi_state('', is_open, stale, accepted, 1) = 'accepted') AS acc,
            dis, toInt64(round(dis * 86400)) AS dis_s, intDiv(dis_s, 86400) AS dis_d,
            rem, toInt64(round(rem * 86400)) AS rem_s, intDiv(rem_s, 86400) AS rem_d
        FROM duration_groups_snapshot
    ),
    candidate_days AS (
        SELECT DISTINCT kind, hist[arrayFirstIndex(c -> c > floor(0.5 * total), arrayCumSum(arrayMap(h -> h.2, hist)))].1 AS day
        FROM (
            SELECT kind, sum(n) AS total, arraySort(groupArray((day, n))) AS hist
            FROM (
                SELECT d.1 AS dimension, d.2 AS dim_value, sev, kind, day, sum(n) AS n
                FROM (
                    SELECT any(ring) AS ring, any(owner) AS owner, any(os) AS os, any(criticality) AS criticality,
                        any(severity) AS severity,
                        if(grouping(dis_d) = 0, 'dis', 'rem') AS kind, if(kind = 'dis', dis_d, rem_d) AS day, sum(cnt) AS n
                    FROM durations
                    WHERE is_open = 0
                    GROUP BY GROUPING SETS ((cell, dis_d), (cell, rem_d))
                )
                ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
                ARRAY JOIN [severity, 'all'] AS sev
                GROUP BY dimension, dim_value, sev, kind, day
            )
            GROUP BY dimension, dim_value, sev, kind
        )
    ),
    (SELECT (groupArrayIf(day, kind = 'dis'), groupArrayIf(day, kind = 'rem')) FROM candidate_days) AS cands
SELECT dimension, dim_value, severity, resolved, mttr_days, median_days, mttr_disclosure_days, median_disclosure_days,
    if(exceptions = 'honoured', accepted_open, 0) AS accepted, exceptions
FROM (
    SELECT dimension, dim_value, severity,
        toUInt64(sumIf(n, kind = 'rem')) AS resolved,
        sumIf(secs, kind = 'rem') / 86400 / resolved AS mttr_days,
        arraySort(groupArrayIf((day, x, n), kind = 'rem')) AS rem_hist,
        if(resolved = 0, nan, rem_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(h -> h.3, rem_hist)))].2) AS median_days,
        sumIf(secs, kind = 'dis') / 86400 / resolved AS mttr_disclosure_days,
        arraySort(groupArrayIf((day, x, n), kind = 'dis')) AS dis_hist,
        if(resolved = 0, nan, dis_hist[arrayFirstIndex(c -> c > floor(0.5 * resolved), arrayCumSum(arrayMap(h -> h.3, dis_hist)))].2) AS median_disclosure_days,
        toUInt64(sumIf(n, kind = 'acc' AND acc = 1)) AS accepted_open
    FROM (
        SELECT d.1 AS dimension, d.2 AS dim_value, sev AS severity, kind, acc, day, x, sum(n) AS n, sum(secs) AS secs
        FROM (
            SELECT any(ring) AS ring, any(owner) AS owner, any(os) AS os, any(criticality) AS criticality, any(severity) AS severity,
                multiIf(grouping(acc) = 0, 'acc', grouping(dis_d) = 0, 'dis', 'rem') AS kind,
                if(kind = 'dis', dis_d, rem_d) AS day, if(kind = 'dis', dis_x, rem_x) AS x,
                kind = 'acc' OR is_open = 0 AS counted, acc, sum(cnt) AS n,
                if(kind = 'dis', sum(dis_s * cnt), sum(rem_s * cnt)) AS secs
            FROM (
                -- transform(day, days, [1, ...], 0) = 1: day is one of days.
                SELECT *,
                    if(transform(dis_d, cands.1, arrayMap(c -> 1, cands.1), 0) = 1, dis, 0) AS dis_x,
                    if(transform(rem_d, cands.2, arrayMap(c -> 1, cands.2), 0) = 1, rem, 0) AS rem_x
                FROM durations
            )
            GROUP BY GROUPING SETS ((cell, acc), (cell, is_open, dis_d, dis_x), (cell, is_open, rem_d, rem_x))
        )
        ARRAY JOIN patchgrid_kpi_dims(ring, owner, os, criticality) AS d
        ARRAY JOIN [severity, 'all'] AS sev
        WHERE counted
        GROUP BY dimension, dim_value, severity, kind, acc, day, x
    )
    GROUP BY dimension, dim_value, severity
)
ARRAY JOIN ['honoured', 'ignored'] AS exceptions;
