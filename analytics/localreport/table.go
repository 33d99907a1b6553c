package localreport

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/patchgrid/patchgrid/schemas/version"
)

// TableOptions shape the text table.
type TableOptions struct {
	// Color adds ANSI colours to severities. The caller decides (a TTY and
	// no NO_COLOR); golden files are written without.
	Color bool
	// MaxIDs is how many advisory ids a row lists before "…" (default 3).
	MaxIDs int
}

// packageRow is one vulnerable package of the table.
type packageRow struct {
	pkg      *Package
	worst    Severity
	fixedIn  string // the highest fixed version among its advisories
	unfixed  int    // advisories without a fix
	ids      []string
	findings int
}

// WriteTable writes the human summary: a header with the counts, then one
// row per vulnerable package (worst severity first) with the version that
// fixes all of its fixable advisories, then warnings. `--format json` has
// every finding with its evidence.
func WriteTable(w io.Writer, r *Report, o TableOptions) error {
	if o.MaxIDs <= 0 {
		o.MaxIDs = 3
	}
	ew := &errWriter{w: w}
	s := &r.Summary
	host := r.Target.HostID
	if r.Target.Hostname != "" && r.Target.Hostname != host {
		host += " (" + r.Target.Hostname + ")"
	}
	fmt.Fprintf(ew, "patchgrid local report: %s, %s\n", host, orDash(r.Target.OS))
	fmt.Fprintf(ew, "%d packages, %d vulnerable: %d findings of %d advisories (%d without a fix)", s.Packages, s.PackagesAffected,
		s.Findings, s.Advisories, s.Unfixed)
	if s.Ignored > 0 {
		fmt.Fprintf(ew, ", %d ignored", s.Ignored)
	}
	if s.NotRunningKernel > 0 {
		fmt.Fprintf(ew, ", %d more on installed kernels that are not running (exposed after a reboot into them)", s.NotRunningKernel)
	}
	fmt.Fprintln(ew)
	var sev []string
	for _, v := range []Severity{SeverityUnknown, SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityNone} {
		if n := s.BySeverity[string(v)]; n > 0 {
			sev = append(sev, fmt.Sprintf("%s %d", paint(o.Color, v, string(v)), n))
		}
	}
	if len(sev) > 0 {
		fmt.Fprintf(ew, "by severity: %s\n", strings.Join(sev, ", "))
	}
	if rows := packageRows(r); len(rows) > 0 {
		fmt.Fprintln(ew)
		// Colours are added after tabwriter has aligned the plain text: it
		// counts escape codes as width.
		var plain bytes.Buffer
		tw := tabwriter.NewWriter(&plain, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tPACKAGE\tINSTALLED\tFIXED IN\tADVISORIES\tIDS")
		for _, row := range rows {
			ids := row.ids
			more := ""
			if len(ids) > o.MaxIDs {
				more = fmt.Sprintf(" +%d", len(ids)-o.MaxIDs)
				ids = ids[:o.MaxIDs]
			}
			fixed := orDash(row.fixedIn)
			if row.unfixed > 0 {
				fixed += fmt.Sprintf(" (%d no fix)", row.unfixed)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s%s\n", row.worst, row.pkg.Name, row.pkg.Version, fixed, len(row.ids), strings.Join(ids, " "), more)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		lines := strings.SplitAfter(plain.String(), "\n")
		ew.Write([]byte(lines[0]))
		for i, row := range rows {
			l := lines[i+1]
			n := len(row.worst)
			fmt.Fprint(ew, paint(o.Color, row.worst, l[:n])+l[n:])
		}
	}
	if len(r.NotChecked) > 0 {
		fmt.Fprintf(ew, "\n%d packages not checked (no version order for them):\n", len(r.NotChecked))
		for _, n := range r.NotChecked {
			fmt.Fprintf(ew, "  %s\n", n)
		}
	}
	for _, m := range r.Notes {
		fmt.Fprintf(ew, "\nnote: %s\n", m)
	}
	for _, m := range r.Expired {
		fmt.Fprintf(ew, "\n%s %s\n", paint(o.Color, SeverityMedium, "warning:"), m)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(ew, "\n%s the inventory is incomplete:\n", paint(o.Color, SeverityHigh, "warning:"))
		for _, m := range r.Warnings {
			fmt.Fprintf(ew, "  %s\n", m)
		}
	}
	return ew.err
}

func packageRows(r *Report) []*packageRow {
	idx := map[string]*packageRow{}
	var rows []*packageRow
	for i := range r.Findings {
		f := &r.Findings[i]
		k := f.Package.Ref()
		row := idx[k]
		if row == nil {
			row = &packageRow{pkg: &f.Package, worst: f.SeverityOf()}
			idx[k] = row
			rows = append(rows, row)
		}
		if f.SeverityOf().Rank() > row.worst.Rank() {
			row.worst = f.SeverityOf()
		}
		row.ids = append(row.ids, f.Match.AdvisoryID)
		row.findings++
		switch {
		case f.Match.Fixed == "":
			row.unfixed++
		case row.fixedIn == "":
			row.fixedIn = f.Match.Fixed
		default:
			// Fixed versions compare in the package's match ecosystem; a
			// comparison error keeps the first (both are shown in JSON).
			if c, err := version.Compare(f.Package.Ecosystem, f.Match.Fixed, row.fixedIn); err == nil && c > 0 {
				row.fixedIn = f.Match.Fixed
			}
		}
	}
	for _, row := range rows {
		sort.Strings(row.ids)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.worst.Rank() != b.worst.Rank() {
			return a.worst.Rank() > b.worst.Rank()
		}
		if len(a.ids) != len(b.ids) {
			return len(a.ids) > len(b.ids)
		}
		if a.pkg.Name != b.pkg.Name {
			return a.pkg.Name < b.pkg.Name
		}
		return a.pkg.Ref() < b.pkg.Ref()
	})
	return rows
}

// ANSI colours per severity.
var colors = map[Severity]string{
	SeverityUnknown:  "\x1b[0;35m", // magenta: unrated, treated as worst by gates
	SeverityCritical: "\x1b[1;31m",
	SeverityHigh:     "\x1b[0;31m",
	SeverityMedium:   "\x1b[0;33m",
	SeverityLow:      "\x1b[0;36m",
	SeverityNone:     "\x1b[2;37m",
}

func paint(on bool, s Severity, text string) string {
	if !on {
		return text
	}
	return colors[s] + text + "\x1b[0m"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// errWriter keeps the first write error so the table code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
