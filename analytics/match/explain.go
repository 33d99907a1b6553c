package match

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Explanation says step by step why a host is or is not exposed to an
// advisory. Lines are meant for people; Exposed is the verdict.
type Explanation struct {
	Host     string // the host id
	Hostname string
	Advisory string
	Exposed  bool
	Lines    []string
	step     int
}

// ExplainOptions shapes an explanation.
type ExplainOptions struct {
	// All lists the ranges of every release and product stream; by default
	// only those of ecosystems the host has packages in (its OS release and
	// its language ecosystems) are listed, the others counted.
	All bool
}

// ErrUnknownHost and ErrUnknownAdvisory are what Explain returns (wrapped)
// for a host or advisory the store has never seen: a verdict on something
// unknown would fail open.
var (
	ErrUnknownHost     = errors.New("unknown host")
	ErrUnknownAdvisory = errors.New("unknown advisory")
)

// AmbiguousHostError is returned when a hostname names several hosts.
type AmbiguousHostError struct {
	Name    string
	HostIDs []string
}

func (e *AmbiguousHostError) Error() string {
	return fmt.Sprintf("hostname %q names %d hosts (%s): give a host id", e.Name, len(e.HostIDs), strings.Join(e.HostIDs, ", "))
}

// stepf starts the next numbered step; linef adds an indented line to it.
func (e *Explanation) stepf(format string, args ...any) {
	e.step++
	e.Lines = append(e.Lines, fmt.Sprintf("%d. ", e.step)+fmt.Sprintf(format, args...))
}

func (e *Explanation) linef(format string, args ...any) {
	e.Lines = append(e.Lines, "   "+fmt.Sprintf(format, args...))
}

// WriteTo prints the explanation.
func (e *Explanation) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	for _, l := range e.Lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	verdict := "NOT EXPOSED"
	if e.Exposed {
		verdict = "EXPOSED"
	}
	name := e.Host
	if e.Hostname != "" && e.Hostname != e.Host {
		name = fmt.Sprintf("%s (%s)", e.Host, e.Hostname)
	}
	fmt.Fprintf(&b, "verdict: host %s is %s to %s\n", name, verdict, e.Advisory)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// sqlExplainHosts resolves a host argument: a host id, else a hostname
// (latest hostname of each host).
const sqlExplainHosts = `SELECT host_id FROM (
    SELECT host_id, argMax(hostname, (scanned_at, scan_id)) AS latest_hostname
    FROM scans WHERE host_id = ? OR hostname = ?
    GROUP BY host_id
)
WHERE host_id = ? OR latest_hostname = ?
ORDER BY host_id != ?, host_id`

const sqlExplainScan = `SELECT latest.1, latest.2, latest.3, latest.4, latest.5, latest.6, latest.7
FROM (
    SELECT argMax((scan_id, scanned_at, os_ecosystem, kernel_running, inventory_hash, heartbeat, hostname), (scanned_at, scan_id)) AS latest
    FROM scans WHERE host_id = ?
)
WHERE latest.1 != ''`

const sqlExplainAdvisories = `SELECT source, advisory_id, record_hash, withdrawn, aliases, cves, severity, cvss_score, file
FROM advisories FINAL
WHERE advisory_id = ? OR has(aliases, ?)
ORDER BY source, advisory_id`

// sqlExplainPackages: the inventory's packages whose match name (or binary
// name) is, under the ecosystem's naming rule, one the ranges name. %s is
// the name key of match_name, then of name.
const sqlExplainPackages = `SELECT DISTINCT ecosystem, name, version, arch, match_name, match_version, v_key
FROM inventory_packages
WHERE inventory_hash = ? AND (has(?, %s) OR has(?, %s))
ORDER BY ecosystem, name, version`

const sqlExplainEcosystems = `SELECT DISTINCT ecosystem FROM inventory_packages WHERE inventory_hash = ?`

const sqlExplainKEV = `SELECT cve, date_added, due_date, ransomware FROM kev FINAL WHERE has(?, cve) ORDER BY cve`

const sqlExplainEPSS = `SELECT cve, epss, percentile, score_date, loaded_at FROM epss FINAL WHERE has(?, cve) ORDER BY cve`

const sqlExplainRecorded = `SELECT count() FROM host_findings
WHERE host_id = ? AND (advisory_id = ? OR has(aliases, ?)) AND kernel_state != 'not_running'`

// ResolveHost returns the host id a host argument names: a host id with a
// stored scan, else the one host whose latest hostname it is.
func ResolveHost(ctx context.Context, s store.Store, host string) (string, error) {
	rows, err := s.Query(ctx, sqlExplainHosts, host, host, host, host, host)
	if err != nil {
		return "", fmt.Errorf("resolving host %q: %w", host, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return "", fmt.Errorf("resolving host %q: %w", host, err)
		}
		if id == host {
			return id, nil // a host id wins over another host's hostname
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("resolving host %q: %w", host, err)
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("%w %q: no scan is stored under that host id or hostname", ErrUnknownHost, host)
	case 1:
		return ids[0], nil
	}
	return "", &AmbiguousHostError{Name: host, HostIDs: ids}
}

// Explain explains host's exposure to advisory (an advisory id or an alias
// such as a CVE), from the host's latest scan and the current advisory
// records, comparing versions with cmp. host is a host id or a hostname. It
// also reports what the last fleet match run recorded, so a stale run shows
// up as a disagreement. A host or an advisory the store does not know is an
// error (ErrUnknownHost, ErrUnknownAdvisory), never a verdict.
func Explain(ctx context.Context, s store.Store, cmp CompareFunc, host, advisory string, opt ExplainOptions) (*Explanation, error) {
	fail := func(step string, err error) (*Explanation, error) {
		return nil, fmt.Errorf("explain %s %s: %s: %w", host, advisory, step, err)
	}
	hostID, err := ResolveHost(ctx, s, host)
	if err != nil {
		return nil, err
	}
	e := &Explanation{Host: hostID, Advisory: advisory}

	// The advisory's records first: an unknown advisory is an error before
	// anything is said about the host.
	type record struct {
		src, id, hash, sev, file string
		withdrawn                uint8
		aliases                  []string
		score                    float32
	}
	rows, err := s.Query(ctx, sqlExplainAdvisories, advisory, advisory)
	if err != nil {
		return fail("advisory records", err)
	}
	var recs []record
	var cves []string
	current := 0
	for rows.Next() {
		var r record
		var rc []string
		if err := rows.Scan(&r.src, &r.id, &r.hash, &r.withdrawn, &r.aliases, &rc, &r.sev, &r.score, &r.file); err != nil {
			rows.Close()
			return fail("advisory records", err)
		}
		if r.withdrawn == 0 {
			current++
		}
		recs = append(recs, r)
		cves = append(cves, rc...)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail("advisory records", err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w %q: no loaded record has that id or alias (load its feed with `patchgrid feeds load`)", ErrUnknownAdvisory, advisory)
	}

	// 1. The host's latest scan.
	var scanID, osEco, kernel, inv string
	var scannedAt time.Time
	var heartbeat uint8
	found, err := queryOne(ctx, s, sqlExplainScan, []any{hostID}, &scanID, &scannedAt, &osEco, &kernel, &inv, &heartbeat, &e.Hostname)
	if err != nil {
		return fail("latest scan", err)
	}
	if !found { // ResolveHost found a scan: only a concurrent delete gets here
		return nil, fmt.Errorf("%w %q: its scans disappeared while explaining", ErrUnknownHost, host)
	}
	e.stepf("host %s (hostname %q): latest scan %s at %s, inventory %s", hostID, e.Hostname, scanID, scannedAt.UTC().Format(time.RFC3339), inv)
	e.linef("OS ecosystem %q, running kernel %q", osEco, kernel)
	if osEco == "" {
		e.linef("the scan carries no OS release: distro advisories cannot be matched to it (rescan with --os or an os-release)")
	}
	if age := time.Since(scannedAt); age > DefaultStaleAfter {
		e.linef("STALE: the last scan is %d days old (limit %s); its state may not be the host's current state", int(age.Hours()/24), DefaultStaleAfter)
	}
	eol, err := EOLFindings(ctx, s, hostID)
	if err != nil {
		return fail("end of life", err)
	}
	for _, f := range eol {
		e.linef("END OF LIFE: %s left support on %s (%s; %s): no feed covers it any more, a finding of its own",
			f.OS, f.EOLDate.Format(time.DateOnly), f.Basis, f.Source)
	}
	ecos := map[string]bool{}
	if osEco != "" {
		ecos[osEco] = true
	}
	erows, err := s.Query(ctx, sqlExplainEcosystems, inv)
	if err != nil {
		return fail("inventory ecosystems", err)
	}
	for erows.Next() {
		var eco string
		if err := erows.Scan(&eco); err != nil {
			erows.Close()
			return fail("inventory ecosystems", err)
		}
		ecos[eco] = true
	}
	erows.Close()
	if err := erows.Err(); err != nil {
		return fail("inventory ecosystems", err)
	}

	// 2. The advisory's records.
	e.stepf("records of %s", advisory)
	for _, r := range recs {
		state := "current"
		if r.withdrawn != 0 {
			state = "WITHDRAWN: never a finding"
		}
		e.linef("%s/%s record %.12s (%s), aliases %v, severity %s %.1f, from %s", r.src, r.id, r.hash, state, r.aliases, r.sev, r.score, r.file)
	}
	if current == 0 {
		e.linef("no current record of %s is loaded: nothing to match", advisory)
		return e.finish(ctx, s, hostID, advisory, uniq(cves))
	}
	if err := e.resolvedSeverity(ctx, s, advisory, osEco); err != nil {
		return fail("resolved severity", err)
	}

	// 3. Its ranges that apply to this host, and the host's packages they name.
	ranges, err := queryRanges(ctx, s, `(source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL
        WHERE withdrawn = 0 AND (advisory_id = ? OR has(aliases, ?)))`, advisory, advisory)
	if err != nil {
		return fail("ranges", err)
	}
	e.stepf("ranges of the current records")
	var shown []Evidence
	hidden := map[string]int{}
	for _, r := range ranges {
		if !opt.All && !ecos[r.Ecosystem] {
			hidden[r.Ecosystem]++
			continue
		}
		shown = append(shown, r)
		e.linef("%s/%s#%d %s/%s %s: introduced %q fixed %q last_affected %q (%s)", r.Source, r.AdvisoryID, r.Idx,
			r.Ecosystem, r.Package, r.Status, r.Introduced, r.Fixed, r.LastAffected, r.Comparator)
	}
	if len(hidden) > 0 {
		n := 0
		var names []string
		for eco, c := range hidden {
			n += c
			names = append(names, eco)
		}
		slices.Sort(names)
		if len(names) > 4 {
			names = append(names[:4], fmt.Sprintf("%d more", len(names)-4))
		}
		e.linef("%d range(s) of other releases or product streams not shown (%s; --all lists them)", n, strings.Join(names, ", "))
	}
	if len(shown) == 0 {
		e.linef("no range of %s applies to the ecosystems of this host", advisory)
	}
	var names []string
	for _, r := range shown {
		names = append(names, NormalizeName(r.Ecosystem, r.Package))
	}
	type pkg struct{ eco, name, version, arch, mname, mversion, vkey string }
	var pkgs []pkg
	if len(names) > 0 {
		prows, err := s.Query(ctx, fmt.Sprintf(sqlExplainPackages, nameKeySQL("ecosystem", "match_name"), nameKeySQL("ecosystem", "name")),
			inv, uniq(names), uniq(names))
		if err != nil {
			return fail("packages", err)
		}
		for prows.Next() {
			var p pkg
			if err := prows.Scan(&p.eco, &p.name, &p.version, &p.arch, &p.mname, &p.mversion, &p.vkey); err != nil {
				prows.Close()
				return fail("packages", err)
			}
			pkgs = append(pkgs, p)
		}
		prows.Close()
		if err := prows.Err(); err != nil {
			return fail("packages", err)
		}
	}

	// 4. Range by range.
	e.stepf("installed packages these ranges name")
	if len(pkgs) == 0 {
		e.linef("no installed package is named %v (as binary or source package): not exposed", uniq(names))
	}
	for _, p := range pkgs {
		used := "its own name"
		if p.mname != p.name {
			used = fmt.Sprintf("source package %s %s", p.mname, p.mversion)
		}
		e.linef("package %s %s (%s, %s) is matched by %s, key %s", p.name, p.version, p.eco, p.arch, used, hexKey(p.vkey))
		if p.vkey == "" {
			e.linef("  its version has no key (the encoder rejected it): it matches nothing")
			continue
		}
		var hits []*Evidence
		notAffected := false
		for i := range shown {
			r := &shown[i]
			switch {
			case NormalizeName(r.Ecosystem, r.Package) != NormalizeName(p.eco, p.mname):
				e.linef("  range #%d names %s, matching uses %s: skipped", r.Idx, r.Package, p.mname)
				continue
			case r.Ecosystem != p.eco:
				e.linef("  range #%d is for %s, the package is in %s: another release or product stream, skipped", r.Idx, r.Ecosystem, p.eco)
				continue
			}
			in, err := InRange(cmp, p.mversion, &r.Range)
			if err != nil {
				e.linef("  range #%d: cannot compare %q: %v", r.Idx, p.mversion, err)
				continue
			}
			e.linef("  range #%d: %s", r.Idx, describeRange(cmp, p.mversion, &r.Range, in))
			if in {
				if r.Status == StatusNotAffected {
					notAffected = true
				} else {
					hits = append(hits, r)
				}
			}
		}
		switch {
		case notAffected && len(hits) > 0:
			e.linef("  a not_affected statement covers %s: no finding", p.mversion)
		case len(hits) > 0:
			state := ""
			if isKernelImage(p.name) && kernel != "" {
				if kernelRunningName(p.name, p.version, p.arch, kernel) {
					state = " (the running kernel)"
				} else {
					state = " (an installed kernel that is NOT running: reported, not exposed until booted)"
				}
			}
			e.linef("  => finding, status %s%s", hits[0].Status, state)
			if state == "" || strings.HasPrefix(state, " (the running") {
				e.Exposed = true
			}
		default:
			e.linef("  => no range covers %s", p.mversion)
		}
	}
	return e.finish(ctx, s, hostID, advisory, uniq(cves))
}

// sqlExplainRatings is the severity a finding of each current record
// carries, resolved over every record of its vulnerability with its source
// (0006_findings.sql vuln_ratings: the same view the exports and KPIs read).
const sqlExplainRatings = `SELECT source, advisory_id, severity, severity_source, cvss_version, cvss_score
FROM vuln_ratings
WHERE (source, advisory_id) IN (SELECT source, advisory_id FROM advisories FINAL
    WHERE withdrawn = 0 AND (advisory_id = ? OR has(aliases, ?)))
ORDER BY source, advisory_id`

// resolvedSeverity lists what severity findings of the advisory's current
// records carry on the host's release osEco, and where it comes from
// (Ratings.Of: the rule of the fleet's exposures). On a server too old for
// the analytics migrations findings keep each record's own rating (shown
// with the records), so there is nothing more to say.
func (e *Explanation) resolvedSeverity(ctx context.Context, s store.Store, advisory, osEco string) error {
	if schemas.RequireAnalytics(ctx, s) != nil {
		return nil
	}
	rows, err := s.Query(ctx, sqlExplainRatings, advisory, advisory)
	if err != nil {
		return err
	}
	type line struct {
		key       RecordKey
		sev, from string
		cvssVer   string
		score     float64
	}
	var lines []line
	var keys []RecordKey
	for rows.Next() {
		var l line
		if err := rows.Scan(&l.key.Source, &l.key.AdvisoryID, &l.sev, &l.from, &l.cvssVer, &l.score); err != nil {
			rows.Close()
			return err
		}
		lines = append(lines, l)
		keys = append(keys, l.key)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rt, ok, err := ResolveRatings(ctx, s, keys)
	if err != nil {
		return err
	}
	for _, l := range lines {
		on := ""
		if ok && osEco != "" {
			if r, found := rt.Of(l.key, osEco); found {
				l.sev, l.from, on = r.Severity, r.Source, " on "+osEco
			}
		}
		if l.from == "" {
			l.from = "no loaded record of this vulnerability rates it"
		}
		cvss := ""
		if l.score > 0 {
			cvss = fmt.Sprintf(", CVSS %s %.1f", l.cvssVer, l.score)
		}
		e.linef("a finding of %s/%s%s has severity %s%s (source: %s)", l.key.Source, l.key.AdvisoryID, on, l.sev, cvss, l.from)
	}
	return nil
}

// finish adds the risk context and what the last fleet match recorded.
func (e *Explanation) finish(ctx context.Context, s store.Store, hostID, advisory string, cves []string) (*Explanation, error) {
	if len(cves) > 0 {
		e.stepf("risk context")
		if err := e.risk(ctx, s, cves); err != nil {
			return nil, fmt.Errorf("explain %s %s: KEV/EPSS: %w", hostID, advisory, err)
		}
	}
	var recorded uint64
	if err := queryUint(ctx, s, &recorded, sqlExplainRecorded, hostID, advisory, advisory); err != nil {
		return nil, fmt.Errorf("explain %s %s: recorded findings: %w", hostID, advisory, err)
	}
	agree := "agrees"
	if (recorded > 0) != e.Exposed {
		agree = "DISAGREES (run `patchgrid match --fleet`)"
	}
	e.stepf("the last fleet match recorded %d exposing finding(s) for this host: %s", recorded, agree)
	return e, nil
}

func (e *Explanation) risk(ctx context.Context, s store.Store, cves []string) error {
	rows, err := s.Query(ctx, sqlExplainKEV, cves)
	if err != nil {
		return err
	}
	n := 0
	for rows.Next() {
		var cve, ransomware string
		var added, due time.Time
		if err := rows.Scan(&cve, &added, &due, &ransomware); err != nil {
			rows.Close()
			return err
		}
		n++
		e.linef("%s is in CISA KEV since %s, due %s, ransomware use %s", cve, added.Format(time.DateOnly), due.Format(time.DateOnly), ransomware)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if n == 0 {
		e.linef("%v: not in CISA KEV", cves)
	}
	rows, err = s.Query(ctx, sqlExplainEPSS, cves)
	if err != nil {
		return err
	}
	defer rows.Close()
	n = 0
	for rows.Next() {
		var cve string
		var score, pct float64
		var date, loaded time.Time
		if err := rows.Scan(&cve, &score, &pct, &date, &loaded); err != nil {
			return err
		}
		n++
		e.linef("%s EPSS %.5f (percentile %.5f), %s", cve, score, pct, epssDate(date, loaded))
	}
	if n == 0 {
		e.linef("%v: no EPSS score", cves)
	}
	return rows.Err()
}

// epssDate says when an EPSS score is from. Files without the
// "#model_version:...,score_date:..." line leave score_date at the zero
// Date (1970-01-01), which is not a date to show.
func epssDate(score, loaded time.Time) string {
	if score.Unix() > 0 {
		return "scored on " + score.UTC().Format(time.DateOnly)
	}
	if loaded.Unix() > 0 {
		return "score date not given by the feed, loaded on " + loaded.UTC().Format(time.DateOnly)
	}
	return "score date not given by the feed"
}

func describeRange(cmp CompareFunc, v string, r *Range, in bool) string {
	var parts []string
	rel := func(bound string) string {
		c, err := cmp(r.Ecosystem, v, bound)
		switch {
		case err != nil:
			return "?"
		case c < 0:
			return "<"
		case c > 0:
			return ">"
		}
		return "="
	}
	if r.Introduced == "" || r.Introduced == "0" {
		parts = append(parts, "no lower bound")
	} else {
		parts = append(parts, fmt.Sprintf("%s %s introduced %s", v, rel(r.Introduced), r.Introduced))
	}
	if r.Fixed != "" {
		parts = append(parts, fmt.Sprintf("%s %s fixed %s", v, rel(r.Fixed), r.Fixed))
	}
	if r.LastAffected != "" {
		parts = append(parts, fmt.Sprintf("%s %s last_affected %s", v, rel(r.LastAffected), r.LastAffected))
	}
	verdict := "outside"
	if in {
		verdict = "INSIDE, status " + r.Status
	}
	return fmt.Sprintf("%s (%s): %s", strings.Join(parts, ", "), r.Comparator, verdict)
}

// isKernelImage and kernelRunningName are the Go form of the kernel rules
// in 0003_matching.sql (host_findings.kernel_state).
func isKernelImage(name string) bool {
	if name == "kernel" || name == "kernel-core" {
		return true
	}
	if rest, ok := strings.CutPrefix(name, "linux-image-"); ok {
		return rest != "" && rest[0] >= '0' && rest[0] <= '9'
	}
	switch name {
	case "linux-lts", "linux-virt", "linux-edge", "linux-rpi", "linux-rpi2", "linux-rpi4":
		return true
	}
	return false
}

func kernelRunningName(name, version, arch, running string) bool {
	if name == "linux-image-"+running {
		return true
	}
	v := version
	if i := strings.IndexByte(v, ':'); i >= 0 && allDigits(v[:i]) {
		v = v[i+1:]
	}
	if v+"."+arch == running {
		return true
	}
	if i := strings.LastIndex(version, "-r"); i >= 0 && allDigits(version[i+2:]) && len(name) > 6 {
		return version[:i]+"-"+version[i+2:]+"-"+name[6:] == running
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func hexKey(k string) string {
	if k == "" {
		return "(none)"
	}
	return hex.EncodeToString([]byte(k))
}

func uniq(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// queryOne scans the first row of a query into dest; found is false when
// there is none.
func queryOne(ctx context.Context, s store.Store, q string, args []any, dest ...any) (bool, error) {
	rows, err := s.Query(ctx, q, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return false, rows.Err()
	}
	if err := rows.Scan(dest...); err != nil {
		return false, err
	}
	return true, rows.Err()
}
