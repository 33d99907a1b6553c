-- patchgrid:min-server 23.8
-- KPI medians in bounded memory (issue 16): kpi_time_to_patch_live and
-- kpi_mttr_live with the columns, order and meaning of 0016; only how the
-- medians and means are computed changes.
--
-- 0016 grouped the exposures by all their durations jointly (nearly one
-- row per exposure at fleet scale: 159M exposures at 100,000 hosts × 90
-- days) and copied each row into ~10 breakdown histograms: kpi_time_to_patch
-- took 179-213 s at 5.3-6.2 GB RSS, kpi_mttr 116-134 s at 4.0-4.2 GB. Here
-- each duration has a histogram of its own, and a median is found in two
-- passes over the exposures:
--
--   pass 1 (candidate_days) counts each duration per whole day of it, grouped
--   by cell: the host group columns and severity (701 cells at 100,000
--   hosts), grouped by their cityHash64, cheaper than the five values (two
--   cells would have to collide in 64 bits to be counted as one). It fans
--   the counts out to the breakdowns × [severity, 'all'] and finds, per
--   output group, the day that holds the median's rank, floor(0.5 * count)
--   (0-based, as in 0016: the upper median). That gives a handful of
--   candidate days per duration (cands).
--
--   pass 2 groups the exposures by cell and day again, but keeps the exact
--   value (x) of the durations that fall in a candidate day (x = 0 in the
--   other days, whose rows only count towards the rank). After the fan-out
--   a group's histogram, sorted by (day, x), has one entry per other day and
--   one per distinct exact value of its candidate day: the entry at the rank
--   is the same value as in 0016's histogram of every distinct value.
--
-- Neither pass holds an entry per distinct duration: per-day counts, and a
-- cell's exact values of the candidate days (whole seconds: at most 86,400
-- per day). At 100,000 hosts kpi_time_to_patch now takes 40 s at 1.1 GB RSS
-- and kpi_mttr 23 s at 0.8 GB, within the refresh's 1.5 GiB shard budget,
-- with the same rows. Whole days, not hours: hour buckets made pass 1's
-- fan-out 1.2M (group, hour) rows (24 s and 1.5 GB RSS for pass 1, 19 s and
-- 0.4 GB by day), and the candidate days held only ~160,000 distinct (cell,
-- value) pairs. The candidate days reach pass 2 as a scalar, computed once
-- (an IN per duration ran pass 1 again each time: 87 s for pass 2);
-- transform() looks them up in a hash table built once (42 s; has() on the
-- array, 61 s).
--
-- Means add the durations' whole seconds (round(days * 86400): every
-- duration is whole seconds / 86400) and divide once: exact, where 0016
-- added the days as floats in the order the parts were read. The two can
-- differ in the last bits (at 100,000 hosts by at most 1e-12 days);
-- analytics/refresh's differential test holds the medians and every other
-- column to 0016's definition exactly and the means within rounding.

-- kpi_time_to_patch_live: 0016's columns and meaning. Kinds of duration:
-- pub (ttp_publication_days), fix (ttp_fix_days, where there is a fix
-- date), dis (ttp_disclosure_days), rem (remediation_days, from first seen).
-- The grouping set acc holds every exposure by acceptance: it gives
-- accepted, and the row of a group whose exposures are all open.
DROP VIEW IF EXISTS kpi_time_to_patch_live;
CREATE VIEW IF NOT EXISTS kpi_time_to_patch_live AS
WITH
    durations AS (
        SELECT ring, owner, os, criticality, severity, cityHash64(ring, owner, os, criticality, severity) AS cell,
            is_open, toUInt8(isFinite(ttp_fix_days)) AS has_fix,
            toUInt8(patchgrid_kpi_state('', is_open, stale, accepted, 1) = 'accepted') AS acc,
            if(is_open = 1, 0, ttp_publication_days) AS pub, toInt64(round(pub * 86400)) AS pub_s, intDiv(pub_s, 86400) AS pub_d,
            if(has_fix = 1, ttp_fix_days, 0) AS fix, toInt64(round(fix * 86400)) AS fix_s, intDiv(fix_s, 86400) AS fix_d,
            if(is_open = 1, 0, ttp_disclosure_days) AS dis, toInt64(round(dis * 86400)) AS dis_s, intDiv(dis_s, 86400) AS dis_d,
            if(is_open = 1, 0, remediation_days) AS rem, toInt64(round(rem * 86400)) AS rem_s, intDiv(rem_s, 86400) AS rem_d
        FROM kpi_exposures
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
                        if(kind = 'fix', has_fix = 1, is_open = 0) AS counted, count() AS n
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
                acc, count() AS n,
                multiIf(kind = 'pub', sum(pub_s), kind = 'fix', sum(fix_s), kind = 'dis', sum(dis_s), sum(rem_s)) AS secs
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

-- kpi_mttr_live: 0016's columns and meaning, as kpi_time_to_patch_live
-- above with the durations rem (mttr_days, median_days) and dis
-- (mttr_disclosure_days, median_disclosure_days).
DROP VIEW IF EXISTS kpi_mttr_live;
CREATE VIEW IF NOT EXISTS kpi_mttr_live AS
WITH
    durations AS (
        SELECT ring, owner, os, criticality, severity, cityHash64(ring, owner, os, criticality, severity) AS cell, is_open,
            toUInt8(patchgrid_kpi_state('', is_open, stale, accepted, 1) = 'accepted') AS acc,
            if(is_open = 1, 0, ttp_disclosure_days) AS dis, toInt64(round(dis * 86400)) AS dis_s, intDiv(dis_s, 86400) AS dis_d,
            if(is_open = 1, 0, remediation_days) AS rem, toInt64(round(rem * 86400)) AS rem_s, intDiv(rem_s, 86400) AS rem_d
        FROM kpi_exposures
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
                        if(grouping(dis_d) = 0, 'dis', 'rem') AS kind, if(kind = 'dis', dis_d, rem_d) AS day, count() AS n
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
                kind = 'acc' OR is_open = 0 AS counted, acc, count() AS n,
                if(kind = 'dis', sum(dis_s), sum(rem_s)) AS secs
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
