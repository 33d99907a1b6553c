package match

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// Explanation says step by step why a host is or is not exposed to an
// advisory. Lines are meant for people; Exposed is the verdict.
type Explanation struct {
	Host     string
	Advisory string
	Exposed  bool
	Lines    []string
}

func (e *Explanation) addf(format string, args ...any) {
	e.Lines = append(e.Lines, fmt.Sprintf(format, args...))
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
	fmt.Fprintf(&b, "verdict: host %s is %s to %s\n", e.Host, verdict, e.Advisory)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

const sqlExplainScan = `SELECT latest.1, latest.2, latest.3, latest.4, latest.5, latest.6
FROM (
    SELECT argMax((scan_id, scanned_at, os_ecosystem, kernel_running, inventory_hash, heartbeat), (scanned_at, scan_id)) AS latest
    FROM scans WHERE host_id = ?
)
WHERE latest.1 != ''`

const sqlExplainAdvisories = `SELECT source, advisory_id, record_hash, withdrawn, aliases, cves, severity, cvss_score, file
FROM advisories FINAL
WHERE advisory_id = ? OR has(aliases, ?)
ORDER BY source, advisory_id`

const sqlExplainPackages = `SELECT DISTINCT ecosystem, name, version, arch, match_name, match_version, v_key
FROM inventory_packages
WHERE inventory_hash = ? AND (has(?, match_name) OR has(?, name))
ORDER BY ecosystem, name, version`

const sqlExplainKEV = `SELECT cve, date_added, due_date, ransomware FROM kev FINAL WHERE has(?, cve) ORDER BY cve`

const sqlExplainEPSS = `SELECT cve, epss, percentile, score_date FROM epss FINAL WHERE has(?, cve) ORDER BY cve`

const sqlExplainRecorded = `SELECT count() FROM host_findings
WHERE host_id = ? AND (advisory_id = ? OR has(aliases, ?)) AND kernel_state != 'not_running'`

// Explain explains host's exposure to advisory (an advisory id or an alias
// such as a CVE), from the host's latest scan and the current advisory
// records, comparing versions with cmp. It also reports what the last fleet
// match run recorded, so a stale run shows up as a disagreement.
func Explain(ctx context.Context, s store.Store, cmp CompareFunc, host, advisory string) (*Explanation, error) {
	e := &Explanation{Host: host, Advisory: advisory}
	fail := func(step string, err error) (*Explanation, error) {
		return nil, fmt.Errorf("explain %s %s: %s: %w", host, advisory, step, err)
	}

	// 1. The host's latest scan.
	var scanID, osEco, kernel, inv string
	var scannedAt time.Time
	var heartbeat uint8
	found, err := queryOne(ctx, s, sqlExplainScan, []any{host}, &scanID, &scannedAt, &osEco, &kernel, &inv, &heartbeat)
	if err != nil {
		return fail("latest scan", err)
	}
	if !found {
		e.addf("1. host %s: no scan stored", host)
		return e, nil
	}
	e.addf("1. latest scan of %s: %s at %s (inventory %s)", host, scanID, scannedAt.UTC().Format(time.RFC3339), inv)
	e.addf("2. OS ecosystem %q, running kernel %q", osEco, kernel)

	// 2. The advisory's records.
	rows, err := s.Query(ctx, sqlExplainAdvisories, advisory, advisory)
	if err != nil {
		return fail("advisory records", err)
	}
	var cves []string
	current := 0
	for rows.Next() {
		var src, id, hash, sev, file string
		var withdrawn uint8
		var aliases, rc []string
		var score float32
		if err := rows.Scan(&src, &id, &hash, &withdrawn, &aliases, &rc, &sev, &score, &file); err != nil {
			rows.Close()
			return fail("advisory records", err)
		}
		state := "current"
		if withdrawn != 0 {
			state = "WITHDRAWN: never a finding"
		} else {
			current++
		}
		e.addf("3. advisory %s/%s record %.12s (%s), aliases %v, severity %s %.1f, from %s", src, id, hash, state, aliases, sev, score, file)
		cves = append(cves, rc...)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail("advisory records", err)
	}
	if current == 0 {
		e.addf("3. no current record of %s is loaded: nothing to match", advisory)
		return e, nil
	}

	// 3. Its ranges, and the host's packages they name.
	ranges, err := queryRanges(ctx, s, `(source, advisory_id, record_hash) IN (SELECT source, advisory_id, record_hash FROM advisories FINAL
        WHERE withdrawn = 0 AND (advisory_id = ? OR has(aliases, ?)))`, advisory, advisory)
	if err != nil {
		return fail("ranges", err)
	}
	var names []string
	for _, r := range ranges {
		names = append(names, r.Package)
		e.addf("4. range %s/%s#%d %s/%s %s: introduced %q fixed %q last_affected %q (%s)", r.Source, r.AdvisoryID, r.Idx,
			r.Ecosystem, r.Package, r.Status, r.Introduced, r.Fixed, r.LastAffected, r.Comparator)
	}
	type pkg struct{ eco, name, version, arch, mname, mversion, vkey string }
	var pkgs []pkg
	prows, err := s.Query(ctx, sqlExplainPackages, inv, names, names)
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
	if len(pkgs) == 0 {
		e.addf("5. no installed package is named %v (as binary or source package): not exposed", uniq(names))
	}

	// 4. Range by range.
	for _, p := range pkgs {
		used := "its own name"
		if p.mname != p.name {
			used = fmt.Sprintf("source package %s %s", p.mname, p.mversion)
		}
		e.addf("5. package %s %s (%s, %s) is matched by %s, key %s", p.name, p.version, p.eco, p.arch, used, hexKey(p.vkey))
		if p.vkey == "" {
			e.addf("   its version has no key (the encoder rejected it): it matches nothing")
			continue
		}
		var hits []*Evidence
		notAffected := false
		for i := range ranges {
			r := &ranges[i]
			switch {
			case r.Package != p.mname:
				e.addf("   range #%d names %s, matching uses %s: skipped", r.Idx, r.Package, p.mname)
				continue
			case r.Ecosystem != p.eco:
				e.addf("   range #%d is for %s, the package is in %s: another release or product stream, skipped", r.Idx, r.Ecosystem, p.eco)
				continue
			}
			in, err := InRange(cmp, p.mversion, &r.Range)
			if err != nil {
				e.addf("   range #%d: cannot compare %q: %v", r.Idx, p.mversion, err)
				continue
			}
			e.addf("   range #%d: %s", r.Idx, describeRange(cmp, p.mversion, &r.Range, in))
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
			e.addf("   a not_affected statement covers %s: no finding", p.mversion)
		case len(hits) > 0:
			state := ""
			if isKernelImage(p.name) && kernel != "" {
				if kernelRunningName(p.name, p.version, p.arch, kernel) {
					state = " (the running kernel)"
				} else {
					state = " (an installed kernel that is NOT running: reported, not exposed until booted)"
				}
			}
			e.addf("   => finding, status %s%s", hits[0].Status, state)
			if state == "" || strings.HasPrefix(state, " (the running") {
				e.Exposed = true
			}
		default:
			e.addf("   => no range covers %s", p.mversion)
		}
	}

	// 5. Risk context.
	if len(cves) > 0 {
		if err := e.risk(ctx, s, uniq(cves)); err != nil {
			return fail("KEV/EPSS", err)
		}
	}
	var recorded uint64
	if err := queryUint(ctx, s, &recorded, sqlExplainRecorded, host, advisory, advisory); err != nil {
		return fail("recorded findings", err)
	}
	agree := "agrees"
	if (recorded > 0) != e.Exposed {
		agree = "DISAGREES (run `patchgrid match --fleet`)"
	}
	e.addf("7. the last fleet match recorded %d exposing finding(s) for this host: %s", recorded, agree)
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
		e.addf("6. %s is in CISA KEV since %s, due %s, ransomware use %s", cve, added.Format(time.DateOnly), due.Format(time.DateOnly), ransomware)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if n == 0 {
		e.addf("6. %v: not in CISA KEV", cves)
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
		var date time.Time
		if err := rows.Scan(&cve, &score, &pct, &date); err != nil {
			return err
		}
		n++
		e.addf("6. %s EPSS %.5f (percentile %.5f) on %s", cve, score, pct, date.Format(time.DateOnly))
	}
	if n == 0 {
		e.addf("6. %v: no EPSS score", cves)
	}
	return rows.Err()
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
