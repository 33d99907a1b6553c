package refresh

// The refresh's statements. Tables and the meaning of their columns:
// schemas/migrations/0005_snapshots.sql. Placeholders bind in order.

const (
	// Only runs that wrote exposure_spans (layout 2, 0018, and later) count:
	// an incremental refresh continues from them.
	sqlPreviousWatermark = `SELECT max(watermark) FROM refresh_runs WHERE error = '' AND layout >= 2`
	sqlLayoutRuns        = `SELECT count() FROM refresh_runs WHERE error = '' AND layout >= 2`
	sqlWatermark         = `SELECT max(received_at) FROM scans`

	sqlPendingHostsAll = `INSERT INTO refresh_pending_hosts (refresh_id, host_id)
SELECT DISTINCT ?, host_id FROM scans`

	// Hosts with scans received since (a margin before) the previous
	// watermark, and hosts that ever ran an inventory matched since the
	// previous refresh (its findings were not there when the host's
	// exposures were last computed).
	sqlPendingHostsNew = `INSERT INTO refresh_pending_hosts (refresh_id, host_id)
SELECT DISTINCT ?, host_id FROM (
    SELECT host_id FROM scans WHERE received_at >= ?
    UNION ALL
    SELECT host_id FROM host_segments FINAL
    WHERE inventory_hash IN (SELECT inventory_hash FROM refresh_pending_inventories WHERE refresh_id = ?)
)`

	sqlPendingInventoriesAll = `INSERT INTO refresh_pending_inventories (refresh_id, inventory_hash)
SELECT ?, inventory_hash FROM match_done_inventories FINAL`

	sqlPendingInventoriesNew = `INSERT INTO refresh_pending_inventories (refresh_id, inventory_hash)
SELECT ?, inventory_hash FROM match_done_inventories FINAL
WHERE inventory_hash NOT IN (SELECT inventory_hash FROM refresh_done_inventories)`

	// Current advisory records whose findings are final: matched by the
	// match job, or withdrawn (a withdrawn record has none).
	sqlPendingAdvisoriesAll = `INSERT INTO refresh_pending_advisories (refresh_id, source, advisory_id, record_hash)
SELECT ?, source, advisory_id, record_hash FROM advisories FINAL
WHERE (withdrawn = 1 OR (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM match_done_advisories))`

	sqlPendingAdvisoriesNew = sqlPendingAdvisoriesAll + `
    AND (source, advisory_id, record_hash) NOT IN (SELECT source, advisory_id, record_hash FROM refresh_done_advisories)`

	sqlCountPending = `SELECT
    (SELECT count() FROM refresh_pending_hosts WHERE refresh_id = ?),
    (SELECT uniqExact(source, advisory_id) FROM refresh_pending_advisories WHERE refresh_id = ?)`

	// segmentSplit splits raw, a host's scans in order as (second,
	// inventory, running kernel), into segments: runs of one (inventory,
	// running kernel). starts and ends are each segment's first index and
	// the index after its last. sqlStageSegments and sqlStageTail both
	// split with it. Array lambdas capture nothing: a lambda that indexes an
	// outer array copies it per element.
	segmentSplit = `arrayMap(x -> cityHash64(x.2, x.3), raw) AS keys,
        arrayFilter((i, k, p) -> i = 1 OR k != p, arrayEnumerate(keys), keys, arrayPushFront(arrayPopBack(keys), 0)) AS starts,
        arrayPushBack(arrayPopFront(starts), length(raw) + 1) AS ends`

	// Segments of the hosts %s (a condition on scans: one shard's range of
	// host_id of {resegment}), from all their scans, into this refresh's
	// staging table {segments}.
	sqlStageSegments = `INSERT INTO {segments} (host_id, seg_idx, seg_first, seg_last, next_scan, scans, is_last, inventory_hash, kernel_running, scans_through, version, deleted)
SELECT host_id, toUInt32(seg_idx), raw[s].1, raw[e - 1].1, if(e <= length(raw), raw[e].1, toDateTime(0)),
    toUInt32(e - s), toUInt8(e > length(raw)), raw[s].2, raw[s].3, toUInt64(e - 1), 0, 0
FROM (
    SELECT host_id, arraySort(x -> x.1, groupArray((t, ik.1, ik.2))) AS raw,
        ` + segmentSplit + `
    FROM (
        SELECT host_id, scanned_at AS t, argMax((inventory_hash, kernel_running), scan_id) AS ik
        FROM scans FINAL
        WHERE %s
        GROUP BY host_id, scanned_at
    )
    GROUP BY host_id
)
ARRAY JOIN starts AS s, ends AS e, arrayEnumerate(starts) AS seg_idx`

	// sqlResegmentAll: a full refresh segments every pending host
	// (refresh_id ?) from all its scans.
	sqlResegmentAll = `INSERT INTO {resegment} (host_id) SELECT host_id FROM refresh_pending_hosts WHERE refresh_id = ?`

	// The latest stored segment of each pending host (refresh_id ?), into
	// this refresh's staging table {latest}: where an incremental refresh
	// continues a host's segments from.
	sqlStageLatest = `INSERT INTO {latest} (host_id, seg_idx, seg_first, seg_last, next_scan, scans, is_last, inventory_hash, kernel_running, scans_through, version, deleted)
SELECT host_id, seg_idx, seg_first, seg_last, next_scan, scans, is_last, inventory_hash, kernel_running, scans_through, version, deleted
FROM host_segments FINAL WHERE is_last = 1 AND host_id IN (SELECT host_id FROM refresh_pending_hosts WHERE refresh_id = ?)`

	// sqlResegment is the pending hosts whose segments an incremental
	// refresh recomputes from all their scans (sqlStageSegments): those
	// without a stored latest segment (refresh_id ?), and, of those with a
	// scan received since ? (the previous watermark, less the margin) no
	// later than the end of it, which its segments may not have seen, the
	// ones whose scans through that end are not those its segments were
	// computed from: a scan came in a second none had (the count of
	// distinct seconds is not its scans_through), or such a scan (received
	// since ?, the same) shares its second with another (only the greatest
	// scan_id of a second counts, so it may have changed what that
	// second's scan was). Every other pending host only adds scans after
	// its latest segment (sqlStageTail). The check reads the seconds of the
	// hosts with such scans: at 100,000 hosts × 90 days, all of them in the
	// first refresh after the fleet's, 2.6 to 3 s and about 0.65 GB, where
	// segmenting them anew took 16 s.
	sqlResegment = `INSERT INTO {resegment} (host_id)
SELECT host_id FROM refresh_pending_hosts WHERE refresh_id = ? AND host_id NOT IN (SELECT host_id FROM {latest})
UNION DISTINCT
SELECT host_id FROM (
    SELECT s.host_id AS host_id, uniqExact(s.scanned_at) AS seconds, any(l.scans_through) AS through,
        arraySort(groupArray((s.scanned_at, s.recent))) AS ts
    FROM (
        SELECT host_id, scanned_at, toUInt8(received_at >= ?) AS recent FROM scans FINAL
        WHERE host_id IN (
            SELECT r.host_id FROM (SELECT host_id, scanned_at FROM scans WHERE received_at >= ? AND host_id IN (SELECT host_id FROM {latest})) AS r
            INNER JOIN (SELECT host_id, seg_last FROM {latest}) AS l ON l.host_id = r.host_id
            WHERE r.scanned_at <= l.seg_last)
    ) AS s
    INNER JOIN (SELECT host_id, seg_last, scans_through FROM {latest}) AS l ON l.host_id = s.host_id
    WHERE s.scanned_at <= l.seg_last
    GROUP BY s.host_id
)
WHERE seconds != through OR arrayExists((a, b) -> a.1 = b.1 AND a.2 + b.2 > 0, arrayPopBack(ts), arrayPopFront(ts))`

	// sqlStageTail stages the segments of the pending hosts in %[1]s (a
	// range of host_id: one shard's) that sqlResegment left out:
	// their stored segments before the latest, as they are, then the
	// latest continued with their scans after it. The latest stands first
	// in raw as one element of its scans (l_scans of them, the last at its
	// seg_last), so that the split (segmentSplit) applies unchanged: a scan
	// of the same (inventory, running kernel) extends it, another closes
	// it and starts the next segment. Seconds, scan counts and indexes
	// continue from it.
	sqlStageTail = `INSERT INTO {segments} (host_id, seg_idx, seg_first, seg_last, next_scan, scans, is_last, inventory_hash, kernel_running, scans_through, version, deleted)
SELECT host_id, seg_idx, seg_first, seg_last, next_scan, scans, is_last, inventory_hash, kernel_running, scans_through, 0, 0
FROM host_segments FINAL
WHERE is_last = 0 AND %[1]s AND host_id IN (SELECT host_id FROM {latest} WHERE %[1]s) AND host_id NOT IN (SELECT host_id FROM {resegment})
UNION ALL
SELECT host_id, toUInt32(l_idx + seg_idx - 1), if(s = 1, l_first, raw[s].1), raw[e - 1].1, if(e <= length(raw), raw[e].1, toDateTime(0)),
    toUInt32(e - s + if(s = 1, l_scans - 1, 0)), toUInt8(e > length(raw)), raw[s].2, raw[s].3, toUInt64(l_through + e - 2), 0, 0
FROM (
    SELECT l.host_id AS host_id, l.seg_idx AS l_idx, l.seg_first AS l_first, l.scans AS l_scans, l.scans_through AS l_through,
        arrayConcat([(l.seg_last, l.inventory_hash, l.kernel_running)], arraySort(x -> x.1, n.tail)) AS raw,
        ` + segmentSplit + `
    FROM (SELECT * FROM {latest} WHERE %[1]s AND host_id NOT IN (SELECT host_id FROM {resegment})) AS l
    LEFT JOIN (
        SELECT host_id, groupArray((t, ik.1, ik.2)) AS tail
        FROM (
            SELECT s.host_id AS host_id, s.scanned_at AS t, argMax((s.inventory_hash, s.kernel_running), s.scan_id) AS ik
            FROM (
                SELECT host_id, scanned_at, scan_id, inventory_hash, kernel_running FROM scans FINAL
                WHERE %[1]s AND scanned_at > (SELECT min(seg_last) FROM {latest} WHERE %[1]s)
            ) AS s
            INNER JOIN (SELECT host_id, seg_last FROM {latest} WHERE %[1]s) AS b ON b.host_id = s.host_id
            WHERE s.scanned_at > b.seg_last
            GROUP BY s.host_id, s.scanned_at
        )
        GROUP BY host_id
    ) AS n ON n.host_id = l.host_id
)
ARRAY JOIN starts AS s, ends AS e, arrayEnumerate(starts) AS seg_idx
SETTINGS join_use_nulls = 0`

	// segmentShape hashes what of a segment its host's exposure_spans rows
	// depend on: everything but the latest segment's last scan and scan
	// count, which rescans of an unchanged inventory move (exposure_history
	// reads them from host_segments when read).
	segmentShape = `sum(cityHash64(seg_idx, seg_first, next_scan, is_last, inventory_hash, kernel_running,
        if(is_last = 1, toDateTime(0), seg_last), if(is_last = 1, 0, scans)))`

	// Hosts whose exposures an incremental refresh recomputes: those whose
	// segments changed other than by rescans of their latest inventory, and
	// those that ran an inventory matched since the previous refresh (its
	// findings were not there when the host's exposures were computed).
	sqlExposeChanged = `INSERT INTO {expose} (host_id)
SELECT host_id FROM (
    SELECT host_id, ` + segmentShape + ` AS shape, count() AS n FROM {segments} GROUP BY host_id
)
WHERE (host_id, shape, n) NOT IN (
    SELECT host_id, ` + segmentShape + `, count() FROM host_segments FINAL
    WHERE host_id IN (SELECT host_id FROM refresh_pending_hosts WHERE refresh_id = ?)
    GROUP BY host_id)
UNION DISTINCT
SELECT host_id FROM {segments}
WHERE inventory_hash IN (SELECT inventory_hash FROM refresh_pending_inventories WHERE refresh_id = ?)`

	// The host_id bounds between ? shards of equal size of the hosts %s (a
	// table or subquery with a column host_id), in order (? - 1 of them;
	// none for one shard).
	sqlShardBounds = `SELECT arrayMap(k -> hs[intDiv(k * length(hs), ?) + 1], range(1, ?))
FROM (SELECT arraySort(groupArray(host_id)) AS hs FROM %s)`

	// A full refresh recomputes the exposures of every host.
	sqlExposeAll = `INSERT INTO {expose} (host_id) SELECT host_id FROM refresh_pending_hosts WHERE refresh_id = ?`

	// The pending hosts' segments as staged, against those stored: only
	// new and changed segments are written, and stored ones no longer there
	// (a later scan in the same second can merge two segments into one)
	// are written deleted.
	sqlWriteSegments = `INSERT INTO host_segments (host_id, seg_idx, seg_first, seg_last, next_scan, scans, is_last, inventory_hash, kernel_running, scans_through, version, deleted)
SELECT host_id, seg_idx,
    if(n.in_new = 1, n.seg_first, o.seg_first), if(n.in_new = 1, n.seg_last, o.seg_last), if(n.in_new = 1, n.next_scan, o.next_scan),
    if(n.in_new = 1, n.scans, o.scans), if(n.in_new = 1, n.is_last, o.is_last), if(n.in_new = 1, n.inventory_hash, o.inventory_hash),
    if(n.in_new = 1, n.kernel_running, o.kernel_running), if(n.in_new = 1, n.scans_through, o.scans_through), ?, toUInt8(n.in_new = 0)
FROM (
    SELECT host_id, seg_idx, seg_first, seg_last, next_scan, scans, is_last, inventory_hash, kernel_running, scans_through, toUInt8(1) AS in_new
    FROM {segments}
) AS n
FULL OUTER JOIN (
    SELECT host_id, seg_idx, seg_first, seg_last, next_scan, scans, is_last, inventory_hash, kernel_running, scans_through, toUInt8(1) AS in_old
    FROM host_segments FINAL
    WHERE host_id IN (SELECT host_id FROM refresh_pending_hosts WHERE refresh_id = ?)
) AS o USING (host_id, seg_idx)
WHERE n.in_new = 0 OR o.in_old = 0
    OR (n.seg_first, n.seg_last, n.next_scan, n.scans, n.is_last, n.inventory_hash, n.kernel_running, n.scans_through)
        != (o.seg_first, o.seg_last, o.next_scan, o.scans, o.is_last, o.inventory_hash, o.kernel_running, o.scans_through)
SETTINGS join_use_nulls = 0`

	// sqlExposing is what each distinct (inventory, running kernel) of the
	// hosts %[1]s (a condition on host_segments) exposes among the
	// advisories %[2]s (a condition on match_inventory_findings): one row
	// per (state_key, advisory_key), the 64-bit hashes sqlSpans joins on.
	// Idle kernel images are left out as in 0003's exposure_history
	// (function patchgrid_kernel_state, 0005). The findings stream past
	// the states, which are the join's built side (its right one): a few
	// thousand distinct states against every finding of every matched
	// inventory (the other way round, at `make run` size, the statement
	// held 218 MB and took 0.9 s; this way 142 MB and 0.5 s).
	sqlExposing = `SELECT cityHash64(inventory_hash, kernel_running) AS state_key, cityHash64(source, advisory_id) AS advisory_key
FROM (
    SELECT inventory_hash, source, advisory_id, name, version, arch
    FROM match_inventory_findings FINAL
    WHERE %[2]s AND (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0)
) AS findings
INNER JOIN (SELECT DISTINCT inventory_hash, kernel_running FROM host_segments FINAL WHERE %[1]s) AS states USING (inventory_hash)
WHERE patchgrid_kernel_state(name, version, arch, kernel_running) != 'not_running'
GROUP BY state_key, advisory_key`

	// sqlShardExposing is the staged {exposing} rows of the states of the
	// hosts %s (one shard's condition on host_segments).
	sqlShardExposing = `SELECT state_key, advisory_key FROM {exposing}
WHERE state_key IN (SELECT cityHash64(inventory_hash, kernel_running) FROM host_segments FINAL WHERE %s)`

	// sqlSpans writes the exposure_spans rows that differ from those
	// stored: %[1]s selects the hosts (a condition on host_segments), %[2]s
	// is what their states expose (sqlExposing's rows: state_key,
	// advisory_key), %[3]s the stored rows recomputed (a condition on
	// exposure_spans: the same hosts and advisories). The first placeholder
	// is the version. Columns: schemas/migrations/0018_exposure_spans.sql.
	//
	// A host's exposure to an advisory depends only on which of its segments
	// expose it, and those only on its trajectory: its segments' (seg_idx,
	// state, is_last) in order. Hosts that went through the same states
	// share one, so each distinct trajectory is joined to what its states
	// expose and grouped per advisory once (t: the first and last exposing
	// position, whether the last segment exposes it, the gaps between
	// exposing segments, and which positions expose it as a 0/1 mask); each
	// host then takes its dates and scan counts from its own segments at
	// those positions (h). Segments are numbered in time order, so the first
	// exposing one has the least seg_first, the last the greatest seg_last
	// and the next_scan of the greatest seg_idx. The join emits one row per
	// (host, advisory) kept. Joining every segment to its state's advisories
	// and grouping per (host, advisory) instead emitted a row per exposing
	// segment: at 100,000 hosts × 90 days (723 trajectories, about four
	// segments a host), a shard of 1,000 hosts (1.6M rows, none changed)
	// took 2.5 s against 0.85 s, and at `make run` size the exposures of a
	// full refresh took 16 to 18 s against 9. Where every host's trajectory
	// is its own, t is that grouping again, per host.
	// An open exposure's scans_offset is its exposed scans minus the
	// host's scans through its latest segment (max(scans_through) of its
	// exposing segments, the latest among them).
	//
	// Grouping on 64-bit hashes of host and advisory, and joining their
	// strings back afterwards, is several times faster than grouping on
	// the strings, and so is comparing with the stored rows on the hashes
	// (the hash table of the stored side holds no string); the rows
	// written, new, changed or deleted, get their strings back from the
	// hosts' segments and the advisories table (which keeps withdrawn
	// records). Two distinct hosts, advisories or trajectories colliding
	// would need a 64-bit cityHash collision among at most millions of
	// keys.
	sqlSpans = `INSERT INTO exposure_spans (host_id, source, advisory_id, first_seen, last_seen, resolved_at, reopened, exposed_now, scans_offset, version, deleted)
SELECT h.host_id, a.source, a.advisory_id, d.first_seen, d.last_seen, d.resolved_at, d.reopened, d.exposed_now, d.scans_offset, ?, toUInt8(d.in_new = 0)
FROM (
    SELECT host_key, advisory_key,
        if(n.in_new = 1, n.first_seen, o.first_seen) AS first_seen, if(n.in_new = 1, n.last_seen, o.last_seen) AS last_seen,
        if(n.in_new = 1, n.resolved_at, o.resolved_at) AS resolved_at, if(n.in_new = 1, n.reopened, o.reopened) AS reopened,
        if(n.in_new = 1, n.exposed_now, o.exposed_now) AS exposed_now, if(n.in_new = 1, n.scans_offset, o.scans_offset) AS scans_offset,
        n.in_new AS in_new
    FROM (
        SELECT h.host_key AS host_key, t.advisory_key AS advisory_key,
            h.firsts[t.first_pos] AS first_seen, t.open AS exposed_now,
            if(t.open = 1, toDateTime(0), h.lasts[t.last_pos]) AS last_seen,
            if(t.open = 1, toDateTime(0), h.nexts[t.last_pos]) AS resolved_at,
            t.reopened AS reopened,
            toInt64(arraySum(arrayMap((m, c) -> m * c, t.mask, h.scans)))
                - if(t.open = 1, toInt64(arrayMax(arrayMap((m, c) -> m * c, t.mask, h.throughs))), 0) AS scans_offset,
            toUInt8(1) AS in_new
        FROM (
            SELECT traj_key, advisory_key, min(pos) AS first_pos, max(pos) AS last_pos, max(is_last) AS open,
                toUInt32(arrayCount(d -> d > 1, arrayDifference(arraySort(groupArray(seg_idx))))) AS reopened,
                groupArray(pos) AS ps, arrayMap(i -> toUInt8(has(ps, i)), range(1, any(n) + 1)) AS mask
            FROM (
                SELECT traj_key, n, pos, tr[pos].1 AS seg_idx, tr[pos].2 AS state_key, tr[pos].3 AS is_last
                FROM (
                    SELECT DISTINCT cityHash64(tr) AS traj_key, tr, length(tr) AS n
                    FROM (
                        SELECT arraySort(groupArray((seg_idx, cityHash64(inventory_hash, kernel_running), is_last))) AS tr
                        FROM host_segments FINAL WHERE %[1]s
                        GROUP BY host_id
                    )
                )
                ARRAY JOIN arrayEnumerate(tr) AS pos
            ) AS s
            INNER JOIN (%[2]s) AS exposing USING (state_key)
            GROUP BY traj_key, advisory_key
        ) AS t
        INNER JOIN (
            SELECT cityHash64(host_id) AS host_key, cityHash64(arrayMap(x -> (x.1, x.2, x.3), sg)) AS traj_key,
                arrayMap(x -> x.4, sg) AS firsts, arrayMap(x -> x.5, sg) AS lasts, arrayMap(x -> x.6, sg) AS nexts,
                arrayMap(x -> x.7, sg) AS scans, arrayMap(x -> x.8, sg) AS throughs
            FROM (
                SELECT host_id, arraySort(groupArray((seg_idx, cityHash64(inventory_hash, kernel_running), is_last,
                    seg_first, seg_last, next_scan, scans, scans_through))) AS sg
                FROM host_segments FINAL WHERE %[1]s
                GROUP BY host_id
            )
        ) AS h USING (traj_key)
    ) AS n
    FULL OUTER JOIN (
        SELECT cityHash64(host_id) AS host_key, cityHash64(source, advisory_id) AS advisory_key,
            first_seen, last_seen, resolved_at, reopened, exposed_now, scans_offset, toUInt8(1) AS in_old
        FROM exposure_spans FINAL WHERE %[3]s
    ) AS o USING (host_key, advisory_key)
    WHERE n.in_new = 0 OR o.in_old = 0
        OR (n.first_seen, n.last_seen, n.resolved_at, n.reopened, n.exposed_now, n.scans_offset)
            != (o.first_seen, o.last_seen, o.resolved_at, o.reopened, o.exposed_now, o.scans_offset)
) AS d
INNER JOIN (SELECT DISTINCT host_id, cityHash64(host_id) AS host_key FROM host_segments FINAL WHERE %[1]s) AS h USING (host_key)
INNER JOIN (SELECT DISTINCT source, advisory_id, cityHash64(source, advisory_id) AS advisory_key FROM advisories) AS a USING (advisory_key)
SETTINGS join_use_nulls = 0`

	// First loads of advisory records (0006's advisory_known): advisories
	// keeps a record's latest load once merged, so each refresh records the
	// loads it sees and min() keeps the earliest, where the SLA clock of a
	// record without a published date starts.
	sqlAdvisoryKnown = `INSERT INTO advisory_known (source, advisory_id, first_loaded_at)
SELECT source, advisory_id, min(loaded_at) FROM advisories GROUP BY source, advisory_id`

	sqlDoneInventories = `INSERT INTO refresh_done_inventories (inventory_hash, done_at)
SELECT inventory_hash, ? FROM refresh_pending_inventories WHERE refresh_id = ?`

	sqlDoneAdvisories = `INSERT INTO refresh_done_advisories (source, advisory_id, record_hash, done_at)
SELECT source, advisory_id, record_hash, ? FROM refresh_pending_advisories WHERE refresh_id = ?`
)

var sqlDropPending = []string{
	`ALTER TABLE refresh_pending_hosts DELETE WHERE refresh_id = ?`,
	`ALTER TABLE refresh_pending_inventories DELETE WHERE refresh_id = ?`,
	`ALTER TABLE refresh_pending_advisories DELETE WHERE refresh_id = ?`,
}

// The per-host snapshots (schemas/migrations/0026_incremental_snapshots.sql):
// host_facts, the exception snapshots and advisory_facts are recomputed
// whole (one row per host, covered row or advisory) into staging tables
// ({hosts}, {xexposures}, {xfindings}, {advisories}), compared with the
// stored ones, then swapped in; exposure_base and finding_risk_base are
// rewritten only for the hosts in {rewrite}.
const (
	// sqlHostFacts is host_facts' rows as of now: kpi_hosts, the hash of
	// each host's end-of-life exposure (last_seen apart: rescans move it),
	// whether it is stale, ? (the refresh's time: where open windows end
	// until the next refresh), the hash of its latest segment's
	// (inventory, running kernel), and ? (the refresh's version).
	sqlHostFacts = `SELECT h.host_id, h.hostname, h.owner, h.ring, h.criticality, h.internet_facing, h.os, h.last_scan_at, e.eol_fp,
    toUInt8(h.last_scan_at < assumeNotNull((SELECT stale_before FROM kpi_stale_limit))), ?, l.state_key, ?
FROM kpi_hosts AS h
LEFT JOIN (
    SELECT host_id, groupBitXor(cityHash64(source, advisory_id, first_seen, resolved_at, reopened, exposed_now, eol_at, eol_source, os_ecosystem, basis)) AS eol_fp
    FROM eol_exposures GROUP BY host_id
) AS e ON e.host_id = h.host_id
LEFT JOIN (
    SELECT host_id, cityHash64(inventory_hash, kernel_running) AS state_key FROM host_segments FINAL WHERE is_last = 1
) AS l ON l.host_id = h.host_id
SETTINGS join_use_nulls = 0`

	// sqlAdvisoryFacts is advisory_facts' rows as of now: per advisory, a
	// hash of its kpi_advisories row, its current record (whose findings
	// say whether a fix exists) and its per-release ratings.
	sqlAdvisoryFacts = `SELECT a.source, a.advisory_id, cityHash64(a.row, r.record_hash, rr.ratings)
FROM (SELECT source, advisory_id, cityHash64(*) AS row FROM kpi_advisories) AS a
LEFT JOIN (SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0) AS r
    ON r.source = a.source AND r.advisory_id = a.advisory_id
LEFT JOIN (
    SELECT source, advisory_id, groupBitXor(cityHash64(ecosystem, severity, severity_source)) AS ratings
    FROM vuln_release_ratings GROUP BY source, advisory_id
) AS rr ON rr.source = a.source AND rr.advisory_id = a.advisory_id
SETTINGS join_use_nulls = 0`

	// sqlRewriteChanged is the hosts whose base rows an incremental
	// refresh rewrites, found from what is stored, so that a refresh that
	// died midway leaves nothing unfound: those with exposure rows written
	// after the last refresh that wrote base rows (?: its version);
	// those new to host_facts or whose attributes, end-of-life exposure,
	// staleness or latest (inventory, running kernel) changed ({hosts}
	// against host_facts); those whose exceptions in force changed ({xexposures}
	// and {xfindings} against the exception snapshots); and those exposed
	// to an advisory whose advisory_facts row changed, appeared or went
	// ({advisories} against advisory_facts). The last scan, the clock and
	// the host's attributes are read with the base rows, not stored in
	// them (0036); a host whose attributes changed is rewritten all the
	// same, so that the groups written from its rows (groups.go) follow.
	sqlRewriteChanged = `INSERT INTO {rewrite} (host_id)
SELECT DISTINCT host_id FROM exposure_spans WHERE version > ?
UNION DISTINCT
SELECT host_id FROM {hosts}
WHERE (host_id, hostname, owner, ring, criticality, internet_facing, os, eol_fp, stale, state_key)
    NOT IN (SELECT host_id, hostname, owner, ring, criticality, internet_facing, os, eol_fp, stale, state_key FROM host_facts)
UNION DISTINCT
SELECT host_id FROM (SELECT * FROM {xexposures} EXCEPT SELECT * FROM exposure_exceptions_snapshot)
UNION DISTINCT
SELECT host_id FROM (SELECT * FROM exposure_exceptions_snapshot EXCEPT SELECT * FROM {xexposures})
UNION DISTINCT
SELECT host_id FROM (SELECT * FROM {xfindings} EXCEPT SELECT * FROM finding_exceptions_snapshot)
UNION DISTINCT
SELECT host_id FROM (SELECT * FROM finding_exceptions_snapshot EXCEPT SELECT * FROM {xfindings})
UNION DISTINCT
SELECT DISTINCT host_id FROM exposure_spans FINAL
WHERE (source, advisory_id) IN (
    SELECT source, advisory_id FROM (SELECT source, advisory_id, fp FROM {advisories} EXCEPT SELECT source, advisory_id, fp FROM advisory_facts)
    UNION ALL
    SELECT source, advisory_id FROM (SELECT source, advisory_id, fp FROM advisory_facts EXCEPT SELECT source, advisory_id, fp FROM {advisories}))`

	// sqlRewriteAll: every host with history, and every host with base
	// rows (whose rows, if it has none any more, are deleted).
	sqlRewriteAll = `INSERT INTO {rewrite} (host_id)
SELECT DISTINCT host_id FROM host_segments
UNION DISTINCT
SELECT DISTINCT host_id FROM exposure_base`

	// sqlEngineSettings: whether the engine knows the settings of engine.
	sqlEngineSettings = `SELECT countIf(name = 'query_plan_optimize_join_order_limit'), countIf(name = 'optimize_on_insert')
FROM system.settings`

	// The base rows of the hosts %s (one shard's condition) under version
	// ? (the only placeholder): exposure_base's from the live view,
	// finding_risk_base's from the exposure_base rows just written
	// (0029_finding_base.sql). Neither holds the host's attributes, which
	// the views read from host_facts (0036_base_host_columns.sql).
	sqlExposureBase = `SELECT * EXCEPT (hostname, owner, ring, criticality, internet_facing, os, dims, window_end, window_days)
    REPLACE (if(is_open = 1, toDateTime(0), last_seen) AS last_seen, assumeNotNull(stale) AS stale),
    ? AS version, toUInt8(0) AS deleted
FROM kpi_exposures_live WHERE %s`

	sqlFindingBase = `SELECT *, cityHash64(package, installed_version, arch, ecosystem, match_name, match_version) AS row_key,
    ? AS version, toUInt8(0) AS deleted
FROM finding_base_live WHERE %s`

	// The rows of the rewritten hosts that this refresh (version ?) did
	// not write again are gone: written deleted under that version. The
	// version is compared after FINAL, which picks each row's latest.
	sqlExposureBaseGone = `INSERT INTO exposure_base (host_id, source, advisory_id, version, deleted)
SELECT host_id, source, advisory_id, ?, 1 FROM (
    SELECT host_id, source, advisory_id, version FROM exposure_base FINAL
    WHERE host_id IN (SELECT host_id FROM {rewrite})
) WHERE version < ?`

	sqlFindingBaseGone = `INSERT INTO finding_risk_base (host_id, source, advisory_id, row_key, version, deleted)
SELECT host_id, source, advisory_id, row_key, ?, 1 FROM (
    SELECT host_id, source, advisory_id, row_key, version FROM finding_risk_base FINAL
    WHERE host_id IN (SELECT host_id FROM {rewrite})
) WHERE version < ?`

	// sqlGroupInputs is, for a group table (0032_group_tables.sql: ? its
	// view, ? the table, ? its name in snapshot_inputs), the fingerprint
	// of the definitions it is computed by (the view's, the table's,
	// kpi_exposures' and the SQL functions'), the one stored when it was
	// last brought up to date and the exposure_base version it was then
	// up to date with (both 0: never), and the table's sorting key (the
	// columns a group is one row of).
	sqlGroupInputs = `SELECT cityHash64(
        (SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = 'kpi_exposures'),
        (SELECT sum(cityHash64(name, create_query)) FROM system.functions WHERE origin = 'SQLUserDefined'),
        (SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = ?),
        (SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = ?)),
    s.fp, s.version, k.sorting_key
FROM (SELECT argMax(fp, written_at) AS fp, argMax(version, written_at) AS version FROM snapshot_inputs WHERE snapshot = ?) AS s
CROSS JOIN (SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = ?) AS k`

	// sqlRegroupHosts: into %s, the hosts whose exposure_base rows were
	// written, deleted included, after version ? (a group table's).
	sqlRegroupHosts = `INSERT INTO %s (host_id) SELECT DISTINCT host_id FROM exposure_base WHERE version > ?`

	// sqlGroupsChanged writes to the group table %[1]s, under version ?,
	// the groups of the hosts %[2]s (a condition) as staged in %[3]s
	// (which holds theirs alone) that it does not hold as they are;
	// sqlGroupsGone writes deleted those of its groups of the hosts that
	// are no longer staged (%[4]s: the table's sorting key, which makes a
	// row a group).
	sqlGroupsChanged = `INSERT INTO %[1]s
SELECT *, ?, toUInt8(0) FROM (
    SELECT * FROM %[3]s
    EXCEPT
    SELECT * EXCEPT (version, deleted) FROM %[1]s FINAL WHERE %[2]s AND deleted = 0)`

	sqlGroupsGone = `INSERT INTO %[1]s
SELECT * EXCEPT (version, deleted), ?, toUInt8(1) FROM %[1]s FINAL
WHERE %[2]s AND deleted = 0 AND (%[4]s) NOT IN (SELECT %[4]s FROM %[3]s)`

	// sqlSnapshotInputs is, for each snapshot of baseOnlySnapshots (%[1]s:
	// the quoted names of their X_live views), the fingerprint of what its
	// view is computed from (0028_snapshot_inputs.sql): exposure_base's
	// greatest version, and the definitions of the view, of kpi_exposures,
	// of the SQL functions and of the group tables' views (%[2]s, quoted:
	// a snapshot may count groups, which follow exposure_base); then the
	// fingerprint stored when its table was last written (0: never, so it
	// is copied).
	sqlSnapshotInputs = `SELECT v.snapshot, v.fp, s.fp FROM (
    SELECT substring(name, 1, length(name) - 5) AS snapshot,
        cityHash64((SELECT max(version) FROM exposure_base),
            (SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = 'kpi_exposures'),
            (SELECT sum(cityHash64(name, create_query)) FROM system.functions WHERE origin = 'SQLUserDefined'),
            (SELECT sum(cityHash64(name, create_table_query)) FROM system.tables WHERE database = currentDatabase() AND name IN (%[2]s)),
            create_table_query) AS fp
    FROM system.tables
    WHERE database = currentDatabase() AND name IN (%[1]s)
) AS v
LEFT JOIN (SELECT snapshot, fp FROM snapshot_inputs FINAL) AS s ON s.snapshot = v.snapshot
SETTINGS join_use_nulls = 0`

	// sqlBaseState is the version of the last refresh that wrote the base
	// rows (0: none), and of the one that last wrote host_facts. Facts
	// newer than that refresh were written by one that failed or died
	// before it recorded itself, perhaps between the facts and the base
	// rows: the changes the facts no longer show must still reach the base
	// rows, so every host is rewritten.
	sqlBaseState = `SELECT
    (SELECT max(version) FROM refresh_runs WHERE error = '' AND layout >= 3),
    (SELECT max(refresh_version) FROM host_facts),
    (SELECT count() FROM exceptions_current WHERE effective_status = 'approved')`
)
