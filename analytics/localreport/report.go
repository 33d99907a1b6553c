// Package localreport is patchgrid's one-shot local report (`patchgrid scan
// --report`): one host's inventory matched against the advisories in the
// embedded store, without Kafka or the fleet tables, written as a table,
// JSON, SARIF 2.1.0, CycloneDX 1.6 or OpenVEX.
//
// Matching goes through match.MatchInputs, the code path of `patchgrid
// match`, so the local report, `scan --dry-run | patchgrid match` and the
// fleet job (which the tests hold it against) agree on every finding.
//
// A finding is one (installed package, advisory) pair: the package's version
// lies in one of the advisory's affected ranges. An exposure is the fleet's
// view of the same fact for a host over time (host_findings, exposure
// history, SLA clocks); a local report has findings only.
package localreport

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/match"
	schema "github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// matchBatch is how many packages share one ranges query, as in `patchgrid match`.
const matchBatch = 500

// Tool names the producer in SARIF, CycloneDX and OpenVEX output.
const Tool = "patchgrid"

// ToolURI is the producer's information URI.
const ToolURI = "https://github.com/patchgrid/patchgrid"

// Target is what was scanned.
type Target struct {
	HostID    string    `json:"host_id"`
	Hostname  string    `json:"hostname,omitempty"`
	OS        string    `json:"os,omitempty"` // OSV ecosystem with release, "Debian:12"
	Sources   []string  `json:"sources"`      // the files or root read
	ScannedAt time.Time `json:"scanned_at"`
}

// Package is an installed package as a finding names it.
type Package struct {
	Ecosystem     string `json:"ecosystem"`
	Name          string `json:"name"`
	Version       string `json:"version"`
	Arch          string `json:"arch,omitempty"`
	SourceName    string `json:"source_name,omitempty"`
	SourceVersion string `json:"source_version,omitempty"`
	PURL          string `json:"purl,omitempty"`
	Location      string `json:"location,omitempty"`
}

// Ref is a stable identifier of the package inside one report (the PURL
// when the scanner made one).
func (p *Package) Ref() string {
	if p.PURL != "" {
		return p.PURL
	}
	r := "pkg:generic/" + p.Name + "@" + p.Version + "?ecosystem=" + p.Ecosystem
	if p.Arch != "" {
		r += "&arch=" + p.Arch
	}
	return r
}

// Finding is one installed package matching one advisory, with the
// evidence `patchgrid match` gives.
type Finding struct {
	Package Package     `json:"package"`
	Match   match.Match `json:"match"`
	// Ignored holds the ignore-file entry that hides this finding.
	Ignored *IgnoreRule `json:"ignored,omitempty"`
	// KernelState is host_findings.kernel_state for kernel image packages
	// of a host whose running kernel is known: running or not_running.
	KernelState string `json:"kernel_state,omitempty"`
}

// SeverityOf is the finding's severity in the report vocabulary.
func (f *Finding) SeverityOf() Severity { return NormalizeSeverity(f.Match.Severity) }

// Summary counts what the report shows (ignored findings excluded).
type Summary struct {
	Packages         int            `json:"packages"`
	PackagesAffected int            `json:"packages_affected"`
	Findings         int            `json:"findings"`
	Advisories       int            `json:"advisories"`
	Ignored          int            `json:"ignored"`
	NotRunningKernel int            `json:"not_running_kernel"`
	Unfixed          int            `json:"unfixed"`
	BySeverity       map[string]int `json:"by_severity"`
	// NotChecked are packages whose version the ecosystem's comparator
	// rejects, or whose ecosystem has none: nothing is known about them,
	// which is not the same as "no findings".
	NotChecked int `json:"not_checked"`
}

// Report is the local report of one host.
type Report struct {
	Target   Target    `json:"target"`
	Summary  Summary   `json:"summary"`
	Findings []Finding `json:"findings"`
	Ignored  []Finding `json:"ignored"`
	// NotRunningKernel are findings on installed kernel images that are not
	// the running kernel: they expose the host only after a reboot into
	// them, so, as in the fleet's exposure figures, they are not counted.
	NotRunningKernel []Finding `json:"not_running_kernel"`
	// Notes say what the report could not judge (and so counted).
	Notes []string `json:"notes"`
	// NotChecked lists the packages of Summary.NotChecked with the reason.
	NotChecked []string `json:"not_checked"`
	// Warnings are inventory problems (unreadable files, skipped records):
	// with any, the inventory is partial and Complete is false.
	Warnings []string `json:"warnings"`
	Complete bool     `json:"complete"`
	// Expired are ignore-file entries past their expiry: warned about,
	// and they hide nothing.
	Expired []string `json:"expired_ignores"`

	// packages is the whole inventory, for the CycloneDX component list.
	packages []Package
}

// Options shape a report.
type Options struct {
	// IgnoreUnfixed drops findings no fixed version exists for yet.
	IgnoreUnfixed bool
	// Ignore is the parsed ignore file.
	Ignore *IgnoreFile
	// Now judges ignore entries' expiry. Default time.Now.
	Now func() time.Time
}

// Build matches the scan's packages against the store's current advisory
// records and applies opts. Sources names the inputs for the report.
func Build(ctx context.Context, st store.Store, s *schema.Scan, sources []string, opts Options) (*Report, error) {
	if len(s.Packages) == 0 {
		return nil, fmt.Errorf("local report of %s: the inventory has no packages (%s)", s.HostID, strings.Join(sources, ", "))
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	r := &Report{
		Target:   Target{HostID: s.HostID, Hostname: s.Hostname, OS: s.OS.Ecosystem, Sources: sources, ScannedAt: s.ScannedAt.UTC()},
		Warnings: append([]string{}, s.Warnings...),
		Findings: []Finding{}, Ignored: []Finding{}, NotRunningKernel: []Finding{}, NotChecked: []string{}, Expired: []string{},
		Notes: []string{},
	}
	var (
		ins  []match.Input
		pkgs []Package
	)
	for i := range s.Packages {
		p := &s.Packages[i]
		pkg := Package{Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version, Arch: p.Arch,
			SourceName: p.SourceName, SourceVersion: p.SourceVersion, PURL: p.PURL, Location: p.Location}
		r.packages = append(r.packages, pkg)
		if _, err := version.Key(p.Ecosystem, p.MatchVersion()); err != nil {
			r.NotChecked = append(r.NotChecked, fmt.Sprintf("%s %s %s: %v", p.Ecosystem, p.Name, p.Version, err))
			continue
		}
		ins = append(ins, match.Input{Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version,
			SourceName: p.SourceName, SourceVersion: p.SourceVersion})
		pkgs = append(pkgs, pkg)
	}
	var all []Finding
	for lo := 0; lo < len(ins); lo += matchBatch {
		hi := min(lo+matchBatch, len(ins))
		res, err := match.MatchInputs(ctx, st, version.Compare, ins[lo:hi])
		if err != nil {
			return nil, fmt.Errorf("local report of %s: %w", s.HostID, err)
		}
		for i, ms := range res {
			for _, m := range ms {
				all = append(all, Finding{Package: pkgs[lo+i], Match: m})
			}
		}
	}
	if s.KernelRunning != "" && len(all) > 0 {
		affected := make([]Package, len(all))
		for i := range all {
			affected[i] = all[i].Package
		}
		states, err := kernelStates(ctx, st, s.KernelRunning, affected)
		if err != nil {
			// An old server without the function: count every kernel,
			// which can only overstate exposure.
			r.Notes = append(r.Notes, fmt.Sprintf("findings on kernels that are not running are counted: %v", err))
		}
		for i := range all {
			p := &all[i].Package
			all[i].KernelState = states[pkgKey{p.Name, p.Version, p.Arch}]
		}
	}
	r.apply(all, len(s.Packages), opts, now())
	return r, nil
}

// apply files the matched findings into shown and ignored ones per opts and
// fills the summary.
func (r *Report) apply(all []Finding, packages int, opts Options, now time.Time) {
	if opts.Ignore != nil {
		r.Expired = append(r.Expired, opts.Ignore.Expired(now)...)
	}
	for _, f := range all {
		if opts.IgnoreUnfixed && f.Match.Fixed == "" {
			continue
		}
		if f.KernelState == "not_running" {
			r.NotRunningKernel = append(r.NotRunningKernel, f)
			continue
		}
		if opts.Ignore != nil {
			if rule := opts.Ignore.Match(&f, now); rule != nil {
				f.Ignored = rule
				r.Ignored = append(r.Ignored, f)
				continue
			}
		}
		r.Findings = append(r.Findings, f)
	}
	sortFindings(r.Findings)
	sortFindings(r.Ignored)
	sortFindings(r.NotRunningKernel)
	r.Summary = summarize(packages, r)
	r.Complete = len(r.Warnings) == 0 && len(r.NotChecked) == 0
}

func summarize(packages int, r *Report) Summary {
	sum := Summary{Packages: packages, Findings: len(r.Findings), Ignored: len(r.Ignored), NotChecked: len(r.NotChecked),
		NotRunningKernel: len(r.NotRunningKernel),
		BySeverity:       map[string]int{}}
	affected, advisories := map[string]bool{}, map[string]bool{}
	for i := range r.Findings {
		f := &r.Findings[i]
		affected[f.Package.Ref()] = true
		advisories[f.Match.Source+"\x00"+f.Match.AdvisoryID] = true
		sum.BySeverity[string(f.SeverityOf())]++
		if f.Match.Fixed == "" {
			sum.Unfixed++
		}
	}
	sum.PackagesAffected, sum.Advisories = len(affected), len(advisories)
	return sum
}

// sortFindings orders by severity (worst first), then package, then advisory.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if ra, rb := a.SeverityOf().Rank(), b.SeverityOf().Rank(); ra != rb {
			return ra > rb
		}
		if a.Package.Name != b.Package.Name {
			return a.Package.Name < b.Package.Name
		}
		if a.Package.Version != b.Package.Version {
			return a.Package.Version < b.Package.Version
		}
		if a.Package.Arch != b.Package.Arch {
			return a.Package.Arch < b.Package.Arch
		}
		if a.Match.AdvisoryID != b.Match.AdvisoryID {
			return a.Match.AdvisoryID < b.Match.AdvisoryID
		}
		return a.Match.Source < b.Match.Source
	})
}

// Advisory is one advisory of the report with the findings that name it,
// the grouping SARIF rules, CycloneDX vulnerabilities and VEX statements use.
type Advisory struct {
	Source, ID string
	Aliases    []string
	Severity   Severity
	Findings   []*Finding
}

// Advisories groups the report's findings by advisory, ordered by id.
func (r *Report) Advisories() []*Advisory {
	idx := map[string]*Advisory{}
	var out []*Advisory
	for i := range r.Findings {
		f := &r.Findings[i]
		k := f.Match.Source + "\x00" + f.Match.AdvisoryID
		a := idx[k]
		if a == nil {
			a = &Advisory{Source: f.Match.Source, ID: f.Match.AdvisoryID, Aliases: f.Match.Aliases, Severity: f.SeverityOf()}
			idx[k] = a
			out = append(out, a)
		}
		a.Findings = append(a.Findings, f)
	}
	slices.SortFunc(out, func(a, b *Advisory) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return strings.Compare(a.Source, b.Source)
	})
	return out
}
