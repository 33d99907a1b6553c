// Package report builds the summary `patchgrid run` prints: fleet size,
// open findings by severity, the riskiest advisories, and this machine's own
// exposure. It reads the same views as the API and exports (finding_risk,
// kpi_hosts in schemas/migrations/0004_kpis.sql), so the numbers agree.
package report

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/schemas/severity"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Options shapes a summary.
type Options struct {
	Top       int    // riskiest advisories listed; default 10
	LocalHost string // host id of the machine that ran the job; '' for none
	// StaleAfter is how old a host's last scan may be before it is reported
	// stale; 0 means match.DefaultStaleAfter.
	StaleAfter time.Duration
	Now        time.Time // judges staleness; default time.Now
}

// Summary is the state of the fleet after a run.
type Summary struct {
	Hosts             uint64 // hosts with at least one scan
	InstalledPackages uint64 // package rows of every host's current inventory
	DistinctVersions  uint64 // distinct (ecosystem, package, version) among them
	Advisories        uint64 // current, not withdrawn advisory records
	BySeverity        []SeverityCount
	Top               []TopRisk
	Local             *HostSummary
	DeadLettered      int64 // messages ingest could not load (filled by the caller)
	// Verdicts beyond package findings (analytics/match verdicts.go):
	// hosts whose last scan is too old to stand for their current state,
	// hosts on an end-of-life release, and packages matching cannot judge.
	StaleAfter time.Duration
	Stale      []match.StaleHost
	EOL        []match.EOLFinding
	Unmatched  []match.Unmatched
	// Scanned are the hosts whose scans this run published (filled by the
	// caller): `run --fail-on` gates on their findings unless --scope fleet.
	Scanned []string
	// ScannedBySeverity is SeverityOf(Scanned), filled by the caller when it
	// gates on them.
	ScannedBySeverity []SeverityCount
}

// SeverityCount is the open findings of one severity.
type SeverityCount struct {
	Severity   string
	Findings   uint64 // (host, advisory) pairs
	Hosts      uint64
	Advisories uint64
	KEV        uint64 // findings whose advisory is in CISA KEV
}

// TopRisk is one advisory's open exposure across the fleet.
type TopRisk struct {
	AdvisoryID string
	CVEs       []string
	Severity   string
	MaxRisk    float64
	Hosts      uint64
	KEV        bool
	EPSS       float64 // NaN-free: 0 when unscored
	Packages   string  // the affected packages, comma-separated (first few)
}

// HostSummary is one host's open findings.
type HostSummary struct {
	HostID, Hostname, OS string
	Packages             uint64
	BySeverity           []SeverityCount
	Top                  []TopRisk
}

const (
	// latestSQL is each host's latest scan (ties broken by scan_id, as in
	// host_findings): its inventory is the host's current one.
	latestSQL = `(SELECT host_id, argMax((inventory_hash, hostname, if(os_ecosystem != '', os_ecosystem, os_id)), (scanned_at, scan_id)) AS latest
    FROM scans GROUP BY host_id)`

	fleetSQL = `SELECT count(), sum(n), (SELECT count() FROM advisories FINAL WHERE withdrawn = 0)
FROM ` + latestSQL + ` AS h
LEFT JOIN (SELECT inventory_hash, count() AS n FROM inventory_packages FINAL GROUP BY inventory_hash) AS p
    ON p.inventory_hash = h.latest.1`

	versionsSQL = `SELECT uniqExact(ecosystem, name, version) FROM inventory_packages FINAL
WHERE inventory_hash IN (SELECT latest.1 FROM ` + latestSQL + `)`

	severitySQL = `SELECT severity, count(), uniqExact(host_id), uniqExact(advisory_id), countIf(kev = 1)
FROM finding_risk %s
GROUP BY severity`

	// topSQL ranks advisories by their highest risk, then by hosts. The
	// hosts of every advisory would be counted exactly, for a handful of
	// them shown: a set of hosts per advisory held 1.8 GB at `make run`
	// size (29M findings of 2,452 advisories), and ten times that at
	// 100,000 hosts. So the advisories are ranked by highest risk first, a
	// small aggregate, and only those the top rows can come from are
	// counted in full: the first n with every one tied with the nth (WITH
	// TIES), since any other advisory's highest risk is below the nth's.
	// 0.45 GB, in the same time. %[1]s is a condition and AND, or
	// nothing; %[2]s the same condition as a WHERE clause.
	topSQL = `SELECT advisory_id, any(cves), any(severity), max(risk_score), uniqExact(host_id), max(kev),
    max(if(has_epss = 1, epss, 0)), arrayStringConcat(arraySlice(groupUniqArray(package), 1, 4), ',')
FROM finding_risk
WHERE %[1]s(source, advisory_id) IN (
    SELECT source, advisory_id FROM finding_risk %[2]s
    GROUP BY source, advisory_id ORDER BY max(risk_score) DESC LIMIT ? WITH TIES)
GROUP BY source, advisory_id
ORDER BY max(risk_score) DESC, uniqExact(host_id) DESC, advisory_id
LIMIT ?`

	hostSQL = `SELECT h.latest.2, h.latest.3, ifNull(p.n, 0)
FROM (SELECT * FROM ` + latestSQL + ` WHERE host_id = ?) AS h
LEFT JOIN (SELECT inventory_hash, count() AS n FROM inventory_packages FINAL GROUP BY inventory_hash) AS p
    ON p.inventory_hash = h.latest.1`
)

// Build reads the summary from st.
func Build(ctx context.Context, st store.Store, opt Options) (*Summary, error) {
	if opt.Top <= 0 {
		opt.Top = 10
	}
	s := &Summary{}
	if err := queryRow(ctx, st, fleetSQL, nil, &s.Hosts, &s.InstalledPackages, &s.Advisories); err != nil {
		return nil, fmt.Errorf("report: fleet size: %w", err)
	}
	if err := queryRow(ctx, st, versionsSQL, nil, &s.DistinctVersions); err != nil {
		return nil, fmt.Errorf("report: distinct versions: %w", err)
	}
	var err error
	if s.BySeverity, err = bySeverity(ctx, st, ""); err != nil {
		return nil, err
	}
	if s.Top, err = top(ctx, st, "", opt.Top); err != nil {
		return nil, err
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	if s.StaleAfter = opt.StaleAfter; s.StaleAfter <= 0 {
		s.StaleAfter = match.DefaultStaleAfter
	}
	if s.Stale, err = match.StaleHosts(ctx, st, opt.Now, s.StaleAfter); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if s.EOL, err = match.EOLFindings(ctx, st, ""); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if s.Unmatched, err = match.UnmatchedPackages(ctx, st, ""); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if opt.LocalHost != "" {
		h := &HostSummary{HostID: opt.LocalHost}
		if err := queryRow(ctx, st, hostSQL, []any{opt.LocalHost}, &h.Hostname, &h.OS, &h.Packages); err != nil {
			return nil, fmt.Errorf("report: host %s: %w", opt.LocalHost, err)
		}
		if h.BySeverity, err = bySeverity(ctx, st, opt.LocalHost); err != nil {
			return nil, err
		}
		if h.Top, err = top(ctx, st, opt.LocalHost, 5); err != nil {
			return nil, err
		}
		s.Local = h
	}
	return s, nil
}

// SeverityOf counts the open findings of the given hosts by severity (the
// same statement as the summary's table).
func SeverityOf(ctx context.Context, st store.Store, hosts []string) ([]SeverityCount, error) {
	return bySeverityWhere(ctx, st, "WHERE has(?, host_id)", []any{hosts})
}

func hostFilter(hostID string) (string, []any) {
	if hostID == "" {
		return "", nil
	}
	return "WHERE host_id = ?", []any{hostID}
}

func bySeverity(ctx context.Context, st store.Store, hostID string) ([]SeverityCount, error) {
	where, args := hostFilter(hostID)
	return bySeverityWhere(ctx, st, where, args)
}

func bySeverityWhere(ctx context.Context, st store.Store, where string, args []any) ([]SeverityCount, error) {
	rows, err := st.Query(ctx, fmt.Sprintf(severitySQL, where), args...)
	if err != nil {
		return nil, fmt.Errorf("report: findings by severity: %w", err)
	}
	defer rows.Close()
	got := map[string]SeverityCount{}
	for rows.Next() {
		var c SeverityCount
		if err := rows.Scan(&c.Severity, &c.Findings, &c.Hosts, &c.Advisories, &c.KEV); err != nil {
			return nil, fmt.Errorf("report: findings by severity: %w", err)
		}
		got[c.Severity] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report: findings by severity: %w", err)
	}
	out := make([]SeverityCount, 0, len(severity.All))
	for _, sev := range severity.All {
		c := got[sev]
		c.Severity = sev
		out = append(out, c)
	}
	return out, nil
}

func top(ctx context.Context, st store.Store, hostID string, n int) ([]TopRisk, error) {
	cond, where, args := "", "", []any{n, n}
	if hostID != "" {
		cond, where, args = "host_id = ? AND ", "WHERE host_id = ?", []any{hostID, hostID, n, n}
	}
	rows, err := st.Query(ctx, fmt.Sprintf(topSQL, cond, where), args...)
	if err != nil {
		return nil, fmt.Errorf("report: top risks: %w", err)
	}
	defer rows.Close()
	var out []TopRisk
	for rows.Next() {
		var t TopRisk
		var kev uint8
		if err := rows.Scan(&t.AdvisoryID, &t.CVEs, &t.Severity, &t.MaxRisk, &t.Hosts, &kev, &t.EPSS, &t.Packages); err != nil {
			return nil, fmt.Errorf("report: top risks: %w", err)
		}
		t.KEV = kev == 1
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report: top risks: %w", err)
	}
	return out, nil
}

func queryRow(ctx context.Context, st store.Store, q string, args []any, dest ...any) error {
	rows, err := st.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return fmt.Errorf("no row")
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Err()
}

// Write prints s for a person.
func Write(w io.Writer, s *Summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nFleet: %d hosts, %d installed packages (%d distinct versions), %d current advisories\n",
		s.Hosts, s.InstalledPackages, s.DistinctVersions, s.Advisories)
	if s.DeadLettered > 0 {
		fmt.Fprintf(tw, "Dead-lettered scan messages: %d (see the .dlq topic)\n", s.DeadLettered)
	}
	writeSeverities(tw, "\nOpen findings by severity", s.BySeverity)
	writeVerdicts(tw, s)
	writeTop(tw, fmt.Sprintf("\nTop %d risks across the fleet", len(s.Top)), s.Top)
	if h := s.Local; h != nil {
		fmt.Fprintf(tw, "\nThis machine: %s (%s), %d packages, host id %s\n", h.Hostname, h.OS, h.Packages, h.HostID)
		writeSeverities(tw, "Open findings by severity", h.BySeverity)
		writeTop(tw, "Top risks on this machine", h.Top)
	}
	return tw.Flush()
}

// writeVerdicts prints what the package findings cannot show: stale hosts
// (their findings are of an old state: never patched, never compliant),
// end-of-life releases, and packages no advisory could be matched against.
func writeVerdicts(w io.Writer, s *Summary) {
	if len(s.Stale) > 0 {
		fmt.Fprintf(w, "\nStale hosts (last scan over %s ago; never counted as patched or compliant): %d\n", s.StaleAfter, len(s.Stale))
		for i, h := range s.Stale {
			if i == 5 {
				fmt.Fprintf(w, "... and %d more\n", len(s.Stale)-5)
				break
			}
			fmt.Fprintf(w, "%s\t%s\t%s\tlast scan %s\n", h.HostID, h.Hostname, h.OS, h.LastScannedAt.UTC().Format(time.RFC3339))
		}
	}
	if len(s.EOL) > 0 {
		byOS := map[string]int{}
		var oses []string
		for _, f := range s.EOL {
			if byOS[f.OS] == 0 {
				oses = append(oses, f.OS)
			}
			byOS[f.OS]++
		}
		fmt.Fprintf(w, "\nEnd-of-life releases (a finding per host; no feed covers them any more): %d hosts\n", len(s.EOL))
		fmt.Fprintln(w, "RELEASE\tHOSTS\tSINCE\tSOURCE")
		for _, o := range oses {
			for _, f := range s.EOL {
				if f.OS == o {
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", o, byOS[o], f.EOLDate.Format(time.DateOnly), f.Source)
					break
				}
			}
		}
	}
	if len(s.Unmatched) > 0 {
		fmt.Fprintln(w, "\nPackages that could not be matched")
		fmt.Fprintln(w, "REASON\tECOSYSTEM\tPACKAGES\tHOSTS")
		for _, u := range s.Unmatched {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", u.Reason, u.Ecosystem, u.Packages, u.Hosts)
		}
	}
}

func writeSeverities(w io.Writer, title string, cs []SeverityCount) {
	fmt.Fprintln(w, title)
	fmt.Fprintln(w, "SEVERITY\tFINDINGS\tHOSTS\tADVISORIES\tIN KEV")
	var total, unknown uint64
	for _, c := range cs {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\n", c.Severity, c.Findings, c.Hosts, c.Advisories, c.KEV)
		total += c.Findings
		if c.Severity == "unknown" {
			unknown = c.Findings
		}
	}
	// Severity is resolved across every loaded record of a vulnerability
	// (schemas/VIEWS.md): unknown means no loaded record rates it.
	if total > 0 {
		fmt.Fprintf(w, "unknown severity: %d of %d findings (%.1f%%): no loaded record rates their vulnerability\n",
			unknown, total, 100*float64(unknown)/float64(total))
	}
}

func writeTop(w io.Writer, title string, ts []TopRisk) {
	fmt.Fprintln(w, title)
	if len(ts) == 0 {
		fmt.Fprintln(w, "(no open findings)")
		return
	}
	fmt.Fprintln(w, "RISK\tADVISORY\tCVES\tSEVERITY\tKEV\tEPSS\tHOSTS\tPACKAGES")
	for _, t := range ts {
		kev := ""
		if t.KEV {
			kev = "yes"
		}
		cves := strings.Join(t.CVEs, ",")
		if len(cves) > 40 {
			cves = cves[:37] + "..."
		}
		fmt.Fprintf(w, "%.1f\t%s\t%s\t%s\t%s\t%.3f\t%d\t%s\n", t.MaxRisk, t.AdvisoryID, cves, t.Severity, kev, t.EPSS, t.Hosts, t.Packages)
	}
}
