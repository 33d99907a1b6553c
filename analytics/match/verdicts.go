package match

import (
	"context"
	"fmt"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// Verdicts beyond package findings (schemas/migrations/0007_verdicts.sql):
// stale hosts, hosts on an end-of-life release, and packages matching
// cannot judge. The summary, the API and explain read them here, so they
// show the same numbers.

// DefaultStaleAfter is how old a host's last scan may be before the host
// is stale.
const DefaultStaleAfter = 72 * time.Hour

// StaleHost is a host whose last scan is older than the stale limit.
type StaleHost struct {
	HostID        string    `json:"host_id"`
	Hostname      string    `json:"hostname"`
	OS            string    `json:"os"`
	LastScannedAt time.Time `json:"last_scanned_at"`
}

const sqlStaleHosts = `SELECT host_id, hostname, os_ecosystem, last_scanned_at
FROM host_last_scan
WHERE last_scanned_at < ?
ORDER BY last_scanned_at, host_id`

// StaleHosts lists the hosts whose last scan is older than after, judged at
// now. after <= 0 means DefaultStaleAfter.
func StaleHosts(ctx context.Context, s store.Store, now time.Time, after time.Duration) ([]StaleHost, error) {
	if after <= 0 {
		after = DefaultStaleAfter
	}
	rows, err := s.Query(ctx, sqlStaleHosts, now.Add(-after).UTC().Truncate(time.Second))
	if err != nil {
		return nil, fmt.Errorf("stale hosts (last scan over %s ago): %w", after, err)
	}
	defer rows.Close()
	var out []StaleHost
	for rows.Next() {
		var h StaleHost
		if err := rows.Scan(&h.HostID, &h.Hostname, &h.OS, &h.LastScannedAt); err != nil {
			return nil, fmt.Errorf("stale hosts: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stale hosts: %w", err)
	}
	return out, nil
}

// EOLFinding is a host whose latest scan is of a release past its end of
// life: a finding of its own, since no feed covers that release any more.
type EOLFinding struct {
	HostID      string    `json:"host_id"`
	Hostname    string    `json:"hostname"`
	OS          string    `json:"os"`
	EOLDate     time.Time `json:"eol_date"`
	DaysPastEOL int64     `json:"days_past_eol"`
	Basis       string    `json:"basis"`  // which support phase ended
	Source      string    `json:"source"` // where the date comes from
}

const sqlEOLFindings = `SELECT host_id, hostname, os_ecosystem, eol_date, days_past_eol, basis, source
FROM eol_findings %s
ORDER BY os_ecosystem, host_id`

// EOLFindings lists the end-of-life findings, of one host when hostID is
// set.
func EOLFindings(ctx context.Context, s store.Store, hostID string) ([]EOLFinding, error) {
	where, args := "", []any(nil)
	if hostID != "" {
		where, args = "WHERE host_id = ?", []any{hostID}
	}
	rows, err := s.Query(ctx, fmt.Sprintf(sqlEOLFindings, where), args...)
	if err != nil {
		return nil, fmt.Errorf("end-of-life findings: %w", err)
	}
	defer rows.Close()
	var out []EOLFinding
	for rows.Next() {
		var f EOLFinding
		if err := rows.Scan(&f.HostID, &f.Hostname, &f.OS, &f.EOLDate, &f.DaysPastEOL, &f.Basis, &f.Source); err != nil {
			return nil, fmt.Errorf("end-of-life findings: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("end-of-life findings: %w", err)
	}
	return out, nil
}

// Unmatched counts the packages of current inventories that matching
// cannot judge, for one reason and ecosystem.
type Unmatched struct {
	Reason    string `json:"reason"` // os_release_unknown, version_not_understood, no_advisories_loaded
	Ecosystem string `json:"ecosystem"`
	Packages  uint64 `json:"packages"` // (host, package) rows
	Hosts     uint64 `json:"hosts"`
}

const sqlUnmatched = `SELECT reason, ecosystem, count(), uniqExact(host_id)
FROM unmatched_packages %s
GROUP BY reason, ecosystem
ORDER BY reason, count() DESC, ecosystem`

// UnmatchedPackages counts unmatched packages by reason and ecosystem, of
// one host when hostID is set.
func UnmatchedPackages(ctx context.Context, s store.Store, hostID string) ([]Unmatched, error) {
	where, args := "", []any(nil)
	if hostID != "" {
		where, args = "WHERE host_id = ?", []any{hostID}
	}
	rows, err := s.Query(ctx, fmt.Sprintf(sqlUnmatched, where), args...)
	if err != nil {
		return nil, fmt.Errorf("unmatched packages: %w", err)
	}
	defer rows.Close()
	var out []Unmatched
	for rows.Next() {
		var u Unmatched
		if err := rows.Scan(&u.Reason, &u.Ecosystem, &u.Packages, &u.Hosts); err != nil {
			return nil, fmt.Errorf("unmatched packages: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("unmatched packages: %w", err)
	}
	return out, nil
}
