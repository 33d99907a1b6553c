package match

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// Evidence is a range as a finding shows it, with the advisory's identity
// and provenance.
type Evidence struct {
	Range
	Aliases  []string
	Severity string
	File     string
}

const sqlVersionFindings = `SELECT DISTINCT ecosystem, match_name, match_version, source, advisory_id, record_hash,
    range_idx, range_type, status, comparator, introduced, fixed, last_affected, fix_published
FROM match_version_findings
WHERE (source, advisory_id, record_hash) IN (` + currentRecords + `)`

// VersionFindings reads the version-level findings of current records, in
// Reference's order: what the SQL matcher concluded.
func VersionFindings(ctx context.Context, s store.Store) ([]Finding, error) {
	rows, err := s.Query(ctx, sqlVersionFindings)
	if err != nil {
		return nil, fmt.Errorf("reading version findings: %w", err)
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		var f Finding
		r := &f.Range
		if err := rows.Scan(&f.Version.Ecosystem, &f.Version.Name, &f.Version.Version, &r.Source, &r.AdvisoryID, &r.RecordHash,
			&r.Idx, &r.Type, &r.Status, &r.Comparator, &r.Introduced, &r.Fixed, &r.LastAffected, &r.FixPublished); err != nil {
			return nil, fmt.Errorf("reading version findings: %w", err)
		}
		r.Ecosystem, r.Package = f.Version.Ecosystem, f.Version.Name
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading version findings: %w", err)
	}
	SortFindings(out)
	return out, nil
}

// sqlRanges selects current ranges with their advisory's aliases, severity
// and file. %s is a WHERE conjunct on affected_ranges.
const sqlRanges = `SELECT source, advisory_id, record_hash, ecosystem, package, range_idx, range_type, status, comparator,
    introduced, fixed, last_affected, fix_published, aliases, severity, file
FROM (
    SELECT source, advisory_id, record_hash, ecosystem, package, range_idx, range_type, status, comparator,
        introduced, fixed, last_affected, fix_published
    FROM affected_ranges
    WHERE %s
) AS ranges
ALL INNER JOIN (
    SELECT source, advisory_id, record_hash, aliases, severity, file FROM advisories FINAL WHERE withdrawn = 0
) AS current_advisories USING (source, advisory_id, record_hash)
ORDER BY ecosystem, package, source, advisory_id, range_idx`

func queryRanges(ctx context.Context, s store.Store, where string, args ...any) ([]Evidence, error) {
	rows, err := s.Query(ctx, fmt.Sprintf(sqlRanges, where), args...)
	if err != nil {
		return nil, fmt.Errorf("reading advisory ranges: %w", err)
	}
	defer rows.Close()
	var out []Evidence
	seen := map[string]bool{} // affected_ranges may hold a range twice until merged
	for rows.Next() {
		var e Evidence
		r := &e.Range
		if err := rows.Scan(&r.Source, &r.AdvisoryID, &r.RecordHash, &r.Ecosystem, &r.Package, &r.Idx, &r.Type, &r.Status,
			&r.Comparator, &r.Introduced, &r.Fixed, &r.LastAffected, &r.FixPublished, &e.Aliases, &e.Severity, &e.File); err != nil {
			return nil, fmt.Errorf("reading advisory ranges: %w", err)
		}
		k := fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%s\x00%d", r.Source, r.AdvisoryID, r.RecordHash, r.Ecosystem, r.Package, r.Idx)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading advisory ranges: %w", err)
	}
	return out, nil
}

// Pair is an (ecosystem with release, package) advisories key ranges by.
type Pair struct{ Ecosystem, Package string }

// RangesFor loads the current ranges of the given pairs. Package names are
// compared under the ecosystem's naming rule (NormalizeName), so ranges of
// "flask" come back for the pair (PyPI, Flask); callers key what they get
// by NormalizeName too. Pairs of ecosystems without a rule keep the exact
// (ecosystem, package) condition the table's primary key serves.
func RangesFor(ctx context.Context, s store.Store, pairs []Pair) ([]Evidence, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	var exact, norm strings.Builder
	var exactArgs, normArgs []any
	for _, p := range pairs {
		b, args := &exact, &exactArgs
		if slices.Contains(normalizingEcosystems, p.Ecosystem) {
			b, args = &norm, &normArgs
			p.Package = NormalizeName(p.Ecosystem, p.Package)
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?)")
		*args = append(*args, p.Ecosystem, p.Package)
	}
	var conds []string
	if exact.Len() > 0 {
		conds = append(conds, "(ecosystem, package) IN ("+exact.String()+")")
	}
	if norm.Len() > 0 {
		conds = append(conds, "(ecosystem IN ('"+strings.Join(normalizingEcosystems, "', '")+"') AND (ecosystem, "+
			nameKeySQL("ecosystem", "package")+") IN ("+norm.String()+"))")
	}
	return queryRanges(ctx, s, "("+strings.Join(conds, " OR ")+")", append(exactArgs, normArgs...)...)
}

// Exposure is one host exposed to an advisory at a point in time.
type Exposure struct {
	HostID     string
	ScanID     string
	ScannedAt  time.Time
	Source     string
	AdvisoryID string
	Packages   []string // name=version of the installed packages that carry it
}

// sqlExposedAt answers "which hosts were exposed to X at time T": each
// host's last scan at or before T, its inventory's findings of current
// records whose id or aliases include X, kernel images that were not
// running excluded. Binds: T, X, X.
const sqlExposedAt = `SELECT host_id, scan_id, scanned_at, source, advisory_id,
    arraySort(groupUniqArray(concat(name, '=', version))) AS packages
FROM (
    SELECT host_id, latest.1 AS scan_id, latest.2 AS scanned_at, latest.3 AS inventory_hash, latest.4 AS kernel_running
    FROM (
        SELECT host_id, argMax((scan_id, scanned_at, inventory_hash, kernel_running), (scanned_at, scan_id)) AS latest
        FROM scans
        WHERE scanned_at <= ?
        GROUP BY host_id
    )
) AS latest_scans
ALL INNER JOIN (
    SELECT inventory_hash, source, advisory_id, name, version, arch
    FROM (
        SELECT inventory_hash, source, advisory_id, record_hash, name, version, arch FROM match_inventory_findings
    ) AS findings
    ALL INNER JOIN (
        SELECT source, advisory_id, record_hash FROM advisories FINAL
        WHERE withdrawn = 0 AND (advisory_id = ? OR has(aliases, ?))
    ) AS matching_advisories USING (source, advisory_id, record_hash)
) AS inventory_findings USING (inventory_hash)
WHERE NOT (` + kernelImage + ` AND kernel_running != '' AND NOT ` + kernelRunning + `)
GROUP BY host_id, scan_id, scanned_at, source, advisory_id
ORDER BY host_id, source, advisory_id`

// kernelImage and kernelRunning are the kernel rules of 0003_matching.sql
// (host_findings.kernel_state), over columns name, version, arch and
// kernel_running.
const (
	kernelImage   = `(match(name, '^linux-image-[0-9]') OR name IN ('kernel', 'kernel-core') OR match(name, '^linux-(lts|virt|edge|rpi|rpi2|rpi4)$'))`
	kernelRunning = `(name = concat('linux-image-', kernel_running)
        OR concat(replaceRegexpOne(version, '^[0-9]+:', ''), '.', arch) = kernel_running
        OR concat(replaceRegexpOne(version, '-r([0-9]+)$', '-\\1'), '-', substring(name, 7)) = kernel_running)`
)

// ExposedAt lists the hosts exposed to advisory id (an advisory id or an
// alias such as a CVE) at time at, judged by each host's latest scan at or
// before at and today's advisory records.
func ExposedAt(ctx context.Context, s store.Store, id string, at time.Time) ([]Exposure, error) {
	rows, err := s.Query(ctx, sqlExposedAt, at, id, id)
	if err != nil {
		return nil, fmt.Errorf("hosts exposed to %s at %s: %w", id, at.UTC().Format(time.RFC3339), err)
	}
	defer rows.Close()
	var out []Exposure
	for rows.Next() {
		var e Exposure
		if err := rows.Scan(&e.HostID, &e.ScanID, &e.ScannedAt, &e.Source, &e.AdvisoryID, &e.Packages); err != nil {
			return nil, fmt.Errorf("hosts exposed to %s: %w", id, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("hosts exposed to %s: %w", id, err)
	}
	return out, nil
}
