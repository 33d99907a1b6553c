package match

import "strings"

// The fleet job's statements. They follow the 18.16 rules of 0003_matching.sql:
// one JOIN per SELECT, USING on uniquely named columns, range predicates in
// WHERE (inequalities inside JOIN ON fail on the 2018 server).
//
// Placeholders bind in text order: matched_at and run id in the select
// lists of the INSERTs, then the run id in each restriction.

// currentRecords is the set of advisory records that count: the current row
// of every advisory, not withdrawn.
const currentRecords = `SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0`

// Snapshots. Order matters (see Job.Run): inventories first, so that every
// inventory a run fans out had all its packages stored before the version
// snapshot was taken (ingest writes inventory_packages before the scan row).

const sqlPendingInventoriesAll = `INSERT INTO match_pending_inventories (run_id, inventory_hash)
SELECT DISTINCT ?, inventory_hash FROM scans WHERE inventory_hash != ''`

const sqlPendingInventoriesNew = `INSERT INTO match_pending_inventories (run_id, inventory_hash)
SELECT DISTINCT ?, inventory_hash FROM scans
WHERE inventory_hash != '' AND inventory_hash NOT IN (SELECT inventory_hash FROM match_done_inventories)`

const sqlPendingVersionsAll = `INSERT INTO match_pending_versions (run_id, ecosystem, match_name, v_key)
SELECT DISTINCT ?, ecosystem, match_name, v_key FROM inventory_packages WHERE v_key != ''`

// sqlPendingVersionsNew reads the packages of this run's pending
// inventories only (on inventory_packages' primary key), not every stored
// package: an inventory is marked done after its versions, so the
// versions of done inventories are done (0007, which unmarked versions,
// unmarked their inventories too).
const sqlPendingVersionsNew = `INSERT INTO match_pending_versions (run_id, ecosystem, match_name, v_key)
SELECT DISTINCT ?, ecosystem, match_name, v_key FROM inventory_packages
WHERE v_key != '' AND inventory_hash IN (SELECT inventory_hash FROM match_pending_inventories WHERE run_id = ?)
    AND (ecosystem, match_name, v_key) NOT IN (SELECT ecosystem, match_name, v_key FROM match_done_versions)`

const sqlPendingAdvisoriesAll = `INSERT INTO match_pending_advisories (run_id, source, advisory_id, record_hash)
SELECT ?, source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0`

const sqlPendingAdvisoriesNew = `INSERT INTO match_pending_advisories (run_id, source, advisory_id, record_hash)
SELECT ?, source, advisory_id, record_hash FROM advisories FINAL
WHERE withdrawn = 0 AND (source, advisory_id, record_hash) NOT IN (SELECT source, advisory_id, record_hash FROM match_done_advisories)`

// matchVersions is the version-level match. %[1]s restricts the versions,
// %[2]s the ranges and %[3]s the advisories whose current records are read
// (complete WHERE conjuncts; the run id is bound inside them, in that
// order). The advisory restriction only narrows which advisories the
// engine reads to find the current records: it must admit every advisory
// of a range %[2]s admits. Each distinct (ecosystem, match_name, v_key) meets the
// ranges of its (ecosystem, package) once, names compared under the
// ecosystem's rule (names.go: name_key on both sides); ranges of one
// advisory that cover the version are kept as separate rows unless one of
// them is not_affected, which drops the advisory for that version. The
// finding keeps the installed package's match_name, which fanOut joins on.
var matchVersions = `INSERT INTO match_version_findings
    (ecosystem, match_name, v_key, match_version, source, advisory_id, record_hash,
     range_idx, range_type, status, comparator, introduced, fixed, last_affected, fix_published, matched_at, run_id)
SELECT ecosystem, match_name, v_key, match_version, source, advisory_id, record_hash,
    r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, ?, ?
FROM (
    SELECT ecosystem, match_name, v_key, match_version, source, advisory_id, record_hash,
        groupArray((range_idx, range_type, status, comparator, introduced, fixed, last_affected, fix_published)) AS rs
    FROM (
        SELECT ecosystem, match_name, ` + nameKeySQL("ecosystem", "match_name") + ` AS name_key, v_key, any(match_version) AS match_version
        FROM inventory_packages
        WHERE v_key != '' AND %[1]s
        GROUP BY ecosystem, match_name, v_key
    ) AS versions
    ALL INNER JOIN (
        SELECT ecosystem, ` + nameKeySQL("ecosystem", "package") + ` AS name_key, source, advisory_id, record_hash, range_idx, range_type, status, comparator,
            introduced, introduced_key, fixed, fixed_key, last_affected, last_affected_key, fix_published
        FROM affected_ranges
        WHERE (source, advisory_id, record_hash) IN (` + currentRecords + ` AND %[3]s) AND %[2]s
    ) AS ranges USING (ecosystem, name_key)
    WHERE v_key >= introduced_key
        AND (fixed_key = '' OR v_key < fixed_key)
        AND (last_affected_key = '' OR v_key <= last_affected_key)
    GROUP BY ecosystem, match_name, v_key, match_version, source, advisory_id, record_hash
    HAVING countIf(status = 'not_affected') = 0
)
ARRAY JOIN rs AS r`

// Version and range restrictions for matchVersions.
var (
	versionsPending = `(ecosystem, match_name, v_key) IN (SELECT ecosystem, match_name, v_key FROM match_pending_versions WHERE run_id = ?)`
	// versionsOfPendingPairs: versions not matched by this run's pending
	// set whose (ecosystem, package) a pending advisory names.
	versionsOfPendingPairs = `(ecosystem, ` + nameKeySQL("ecosystem", "match_name") + `) IN (SELECT ecosystem, ` + nameKeySQL("ecosystem", "package") + ` FROM affected_ranges
            WHERE (source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM match_pending_advisories WHERE run_id = ?))
        AND (ecosystem, match_name, v_key) NOT IN (SELECT ecosystem, match_name, v_key FROM match_pending_versions WHERE run_id = ?)`
	rangesAll     = `1`
	rangesPending = `(source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM match_pending_advisories WHERE run_id = ?)`
	// rangesOfPendingVersions: ranges of the (ecosystem, package) pairs of
	// this run's pending versions, on affected_ranges' primary key. Names
	// of the ecosystems that normalize them (names.go) are compared after
	// normalizing, and only in the ecosystems of pending versions: keeping
	// every range of those ecosystems (PyPI alone holds two thirds of the
	// ranges) made an incremental run's version match, for a day's few
	// dozen new versions, read as many ranges as a full match.
	rangesOfPendingVersions = `((ecosystem, package) IN (SELECT ecosystem, match_name FROM match_pending_versions WHERE run_id = ?)
            OR (ecosystem IN (SELECT DISTINCT ecosystem FROM match_pending_versions WHERE run_id = ? AND ecosystem IN (` + normalizingList + `))
                AND (ecosystem, ` + nameKeySQL("ecosystem", "package") + `) IN (SELECT ecosystem, ` + nameKeySQL("ecosystem", "match_name") + `
                    FROM match_pending_versions WHERE run_id = ? AND ecosystem IN (` + normalizingList + `))))`
)

// normalizingList is normalizingEcosystems as an SQL list of literals.
var normalizingList = "'" + strings.Join(normalizingEcosystems, "', '") + "'"

// Advisory restrictions for matchVersions and fanOut (see matchVersions):
// on advisories' primary key, so that reading the current records of a few
// advisories does not read them all.
var (
	advisoriesAll               = `1`
	advisoriesOfPendingVersions = `(source, advisory_id) IN (SELECT source, advisory_id FROM affected_ranges WHERE ` + rangesOfPendingVersions + `)`
	advisoriesPending           = `(source, advisory_id) IN (SELECT source, advisory_id FROM match_pending_advisories WHERE run_id = ?)`
	// advisoriesOfPendingInventories: advisories with a version finding of
	// a version the pending inventories hold.
	advisoriesOfPendingInventories = `(source, advisory_id) IN (SELECT source, advisory_id FROM match_version_findings WHERE ` + findingsOfPendingInventories + `)`
)

// fanOut writes inventory-level findings: packages of the inventories %[1]s
// selects, joined to the version findings %[2]s selects (of current records
// among the advisories %[3]s admits, see matchVersions), collapsed to one row
// per (inventory, package, advisory) with the lowest matching range as
// evidence. Only findings of current records are fanned out.
const fanOut = `INSERT INTO match_inventory_findings
    (inventory_hash, ecosystem, name, version, arch, location, match_name, match_version, v_key,
     source, advisory_id, record_hash, range_idx, range_type, status, comparator,
     introduced, fixed, last_affected, fix_published, matched_at, run_id)
SELECT inventory_hash, ecosystem, name, version, arch, location, match_name, match_version, v_key,
    source, advisory_id, record_hash, ev.1, ev.2, ev.3, ev.4, ev.5, ev.6, ev.7, ev.8, ?, ?
FROM (
    SELECT inventory_hash, ecosystem, name, version, arch, location, match_name, match_version, v_key
    FROM inventory_packages
    WHERE v_key != '' AND %[1]s
) AS packages
ALL INNER JOIN (
    SELECT ecosystem, match_name, v_key, source, advisory_id, record_hash,
        argMin((range_idx, range_type, status, comparator, introduced, fixed, last_affected, fix_published), range_idx) AS ev
    FROM match_version_findings
    WHERE (source, advisory_id, record_hash) IN (` + currentRecords + ` AND %[3]s) AND %[2]s
    GROUP BY ecosystem, match_name, v_key, source, advisory_id, record_hash
) AS version_findings USING (ecosystem, match_name, v_key)`

// sqlHasOptimizeOnInsert counts the engine's optimize_on_insert setting
// (1 where it exists); settingsNoInsertMerge turns it off for one
// statement (see Job.run).
const (
	sqlHasOptimizeOnInsert = `SELECT count() FROM system.settings WHERE name = 'optimize_on_insert'`
	settingsNoInsertMerge  = "\nSETTINGS optimize_on_insert = 0"
)

// Restrictions for fanOut.
const (
	inventoriesPending    = `inventory_hash IN (SELECT inventory_hash FROM match_pending_inventories WHERE run_id = ?)`
	inventoriesNotPending = `inventory_hash IN (SELECT inventory_hash FROM match_done_inventories)
        AND inventory_hash NOT IN (SELECT inventory_hash FROM match_pending_inventories WHERE run_id = ?)`
	findingsOfPendingInventories = `(ecosystem, match_name, v_key) IN (SELECT DISTINCT ecosystem, match_name, v_key FROM inventory_packages
            WHERE inventory_hash IN (SELECT inventory_hash FROM match_pending_inventories WHERE run_id = ?))`
	findingsOfPendingAdvisories = `(source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM match_pending_advisories WHERE run_id = ?)`
)

// Marking done, after the findings are written.
const (
	sqlDoneVersions = `INSERT INTO match_done_versions (ecosystem, match_name, v_key, matched_at)
SELECT ecosystem, match_name, v_key, ? FROM match_pending_versions WHERE run_id = ?`
	sqlDoneAdvisories = `INSERT INTO match_done_advisories (source, advisory_id, record_hash, matched_at)
SELECT source, advisory_id, record_hash, ? FROM match_pending_advisories WHERE run_id = ?`
	sqlDoneInventories = `INSERT INTO match_done_inventories (inventory_hash, matched_at)
SELECT inventory_hash, ? FROM match_pending_inventories WHERE run_id = ?`
)

const sqlCountPending = `SELECT
    (SELECT count() FROM match_pending_versions WHERE run_id = ?),
    (SELECT count() FROM match_pending_advisories WHERE run_id = ?),
    (SELECT count() FROM match_pending_inventories WHERE run_id = ?)`

const sqlCountVersionFindings = `SELECT count() FROM match_version_findings WHERE run_id = ?`

// The pending rows of a finished run are deleted (a mutation: asynchronous,
// and harmless if it never completes, since every reader filters by run id).
var sqlDropPending = []string{
	`ALTER TABLE match_pending_versions DELETE WHERE run_id = ?`,
	`ALTER TABLE match_pending_advisories DELETE WHERE run_id = ?`,
	`ALTER TABLE match_pending_inventories DELETE WHERE run_id = ?`,
}

// runColumns are the match_runs columns a run writes.
var runColumns = []string{"run_id", "mode", "started_at", "finished_at", "versions", "advisories", "inventories", "version_findings", "error"}
