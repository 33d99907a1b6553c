package refresh

// The refresh's statements. Tables and the meaning of their columns:
// schemas/migrations/0005_snapshots.sql. Placeholders bind in order.

const (
	sqlPreviousWatermark = `SELECT max(watermark) FROM refresh_runs WHERE error = ''`
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

	// Segments of one shard of the pending hosts (cityHash64(host_id) % ?
	// = ?), from all their scans. Array lambdas
	// capture nothing: a lambda that indexes an outer array copies it per
	// element.
	sqlSegments = `INSERT INTO host_segments (host_id, seg_idx, seg_first, seg_last, next_scan, scans, is_last, inventory_hash, kernel_running, version, deleted)
SELECT host_id, toUInt32(seg_idx), raw[s].1, raw[e - 1].1, if(e <= length(raw), raw[e].1, toDateTime(0)),
    toUInt32(e - s), toUInt8(e > length(raw)), raw[s].2, raw[s].3, ?, 0
FROM (
    SELECT host_id, arraySort(x -> x.1, groupArray((t, ik.1, ik.2))) AS raw,
        arrayMap(x -> cityHash64(x.2, x.3), raw) AS keys,
        arrayFilter((i, k, p) -> i = 1 OR k != p, arrayEnumerate(keys), keys, arrayPushFront(arrayPopBack(keys), 0)) AS starts,
        arrayPushBack(arrayPopFront(starts), length(raw) + 1) AS ends
    FROM (
        SELECT host_id, scanned_at AS t, argMax((inventory_hash, kernel_running), scan_id) AS ik
        FROM scans FINAL
        WHERE host_id IN (SELECT host_id FROM refresh_pending_hosts WHERE refresh_id = ?) AND cityHash64(host_id) % ? = ?
        GROUP BY host_id, scanned_at
    )
    GROUP BY host_id
)
ARRAY JOIN starts AS s, ends AS e, arrayEnumerate(starts) AS seg_idx`

	// sqlExposures writes exposure rows: %[1]s selects the hosts (a
	// condition on host_segments), %[2]s the advisories (a condition on
	// match_inventory_findings). What each distinct (inventory, running
	// kernel) exposes is worked out once, then fanned out to the segments
	// that ran it; idle kernel images are left out as in 0003's
	// exposure_history (function patchgrid_kernel_state, 0005).
	// Grouping on 64-bit hashes of host and advisory, and joining their
	// strings back afterwards, is several times faster than grouping on
	// the strings. Two distinct hosts or advisories colliding would need a
	// 64-bit cityHash collision among at most millions of keys.
	sqlExposures = `INSERT INTO exposures (host_id, source, advisory_id, first_seen, last_seen, resolved_at, reopened, exposed_now, exposed_scans, version, deleted)
SELECT h.host_id, a.source, a.advisory_id, first_seen, last_seen, resolved_at, reopened, exposed_now, exposed_scans, ?, 0
FROM (
    SELECT host_key, advisory_key,
        min(seg_first) AS first_seen, max(seg_last) AS last_seen, argMax(next_scan, seg_idx) AS resolved_at,
        toUInt32(arrayCount(d -> d > 1, arrayDifference(arraySort(groupArray(seg_idx))))) AS reopened,
        max(is_last) AS exposed_now, toUInt64(sum(scans)) AS exposed_scans
    FROM (
        SELECT cityHash64(host_id) AS host_key, seg_idx, seg_first, seg_last, next_scan, scans, is_last, inventory_hash, kernel_running
        FROM host_segments FINAL WHERE %[1]s
    ) AS segments
    INNER JOIN (
        SELECT inventory_hash, kernel_running, cityHash64(source, advisory_id) AS advisory_key
        FROM (SELECT DISTINCT inventory_hash, kernel_running FROM host_segments FINAL WHERE %[1]s) AS states
        INNER JOIN (
            SELECT inventory_hash, source, advisory_id, name, version, arch
            FROM match_inventory_findings FINAL
            WHERE %[2]s AND (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0)
        ) AS findings USING (inventory_hash)
        WHERE patchgrid_kernel_state(name, version, arch, kernel_running) != 'not_running'
        GROUP BY inventory_hash, kernel_running, advisory_key
    ) AS exposing USING (inventory_hash, kernel_running)
    GROUP BY host_key, advisory_key
) AS x
INNER JOIN (SELECT DISTINCT host_id, cityHash64(host_id) AS host_key FROM host_segments FINAL WHERE %[1]s) AS h USING (host_key)
INNER JOIN (SELECT DISTINCT source, advisory_id, cityHash64(source, advisory_id) AS advisory_key FROM advisories) AS a USING (advisory_key)`

	// Rows of the rewritten hosts and advisories that this refresh did not
	// write again no longer hold: they are marked deleted.
	sqlDeleteStale = `INSERT INTO exposures (host_id, source, advisory_id, first_seen, last_seen, resolved_at, reopened, exposed_now, exposed_scans, version, deleted)
SELECT host_id, source, advisory_id, first_seen, last_seen, resolved_at, reopened, exposed_now, exposed_scans, ?, 1
FROM exposures FINAL
WHERE version < ? AND (host_id IN (SELECT host_id FROM refresh_pending_hosts WHERE refresh_id = ?)
    OR (source, advisory_id) IN (SELECT source, advisory_id FROM refresh_pending_advisories WHERE refresh_id = ?))`

	// Segments of the rewritten hosts that this refresh did not write again
	// (the host has fewer segments now) are marked deleted.
	sqlDeleteStaleSegments = `INSERT INTO host_segments (host_id, seg_idx, seg_first, seg_last, next_scan, scans, is_last, inventory_hash, kernel_running, version, deleted)
SELECT host_id, seg_idx, seg_first, seg_last, next_scan, scans, is_last, inventory_hash, kernel_running, ?, 1
FROM host_segments FINAL
WHERE version < ? AND host_id IN (SELECT host_id FROM refresh_pending_hosts WHERE refresh_id = ?)`

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
