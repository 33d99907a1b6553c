package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
)

const planUsage = `usage:
  patchgrid plan create [--at TIME] [--horizon 30d] [--actor WHO] [finding filters]
  patchgrid plan list [--limit N]
  patchgrid plan show [ID] [--by fix|wave|action] [--limit N]
  patchgrid plan export [ID] --format json|csv|arrow|arrow-stream|parquet|ansible [--out FILE] [finding filters]
  patchgrid plan status [ID] [--due] [--format text|json]
  patchgrid plan approve --package P --version V [--ecosystem E] [--group G] --approver WHO [--reason R]
finding filters: --severity, --kev, --ring, --owner, --os, --host, --min-risk (as for export)`

// runPlan is `patchgrid plan ...`: remediation plans (analytics/plan)
// under the active policy.
func runPlan(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, planUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fmt.Fprintln(env.stdout, "Remediation plans: one action per (host, package) with its target version, ring, wave and window, under the active policy.")
		fmt.Fprintln(env.stdout, planUsage)
		return exitOK
	}
	// plan status / plan approve: deployment verification, gates and holds
	// (issue 13, plan_status.go).
	if sub == "status" || sub == "approve" {
		return runPlanDeploy(ctx, env, sub, args)
	}
	fs := flag.NewFlagSet("plan "+sub, flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	var (
		atText, horizon, actor, by, format, out string
		limit                                   int
	)
	filters := map[string]*string{}
	addFilters := func() {
		for _, f := range []struct{ name, usage string }{
			{"severity", "only these severities, comma separated"},
			{"kev", "true: only KEV advisories; false: only others"},
			{"ring", "only hosts of this ring"},
			{"owner", "only hosts of this owner"},
			{"os", "only hosts of this OS"},
			{"host", "only this host id"},
			{"min-risk", "only findings (actions: risk removed) at least this"},
		} {
			filters[f.name] = fs.String(f.name, "", f.usage)
		}
	}
	takesID := true
	switch sub {
	case "create":
		takesID = false
		fs.StringVar(&atText, "at", "", "the plan's now, RFC 3339 (default: now)")
		fs.StringVar(&horizon, "horizon", "30d", "how far ahead to schedule, e.g. 30d, 2w")
		fs.StringVar(&actor, "actor", env.getenv("USER"), "who creates the plan (recorded)")
		addFilters()
	case "list":
		takesID = false
		fs.IntVar(&limit, "limit", 20, "how many plans, newest first")
	case "show":
		fs.StringVar(&by, "by", "fix", "fix (group by package and target version), wave, or action")
		fs.IntVar(&limit, "limit", 20, "how many rows")
	case "export":
		fs.StringVar(&format, "format", "json", "json (lines), csv, arrow, arrow-stream, parquet or ansible")
		fs.StringVar(&out, "out", "-", "output file ('-' for stdout)")
		addFilters()
	default:
		fmt.Fprintf(env.stderr, "patchgrid plan: unknown subcommand %q\n%s\n", sub, planUsage)
		return exitUsage
	}
	var id string
	if takesID && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(env.stderr, "patchgrid plan "+sub+": "+format+"\n", a...)
		return code
	}
	if takesID && id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() != 0 {
		return fail(exitUsage, "unexpected arguments %q", fs.Args())
	}
	var filter risk.Filter
	if len(filters) > 0 {
		var err error
		if filter, err = risk.ParseFilter(func(name string) string { return *filters[name] }); err != nil {
			return fail(exitUsage, "%v", err)
		}
	}
	opts := plan.CreateOptions{Actor: actor, Scope: filter}
	switch sub {
	case "create":
		var err error
		if atText != "" {
			if opts.At, err = time.Parse(time.RFC3339, atText); err != nil {
				return fail(exitUsage, "--at %q: want RFC 3339, e.g. 2026-12-03T09:00:00Z", atText)
			}
		}
		if opts.Horizon, err = parseSpan(horizon); err != nil {
			return fail(exitUsage, "--horizon: %v", err)
		}
		if actor == "" {
			return fail(exitUsage, "--actor: who creates the plan?")
		}
	case "show":
		if by != "fix" && by != "wave" && by != "action" {
			return fail(exitUsage, "--by %q: want fix, wave or action", by)
		}
	case "export":
		if !slices.Contains(plan.Formats, format) {
			return fail(exitUsage, "--format %q: want one of %s", format, strings.Join(plan.Formats, ", "))
		}
	}

	st, err := sf.open(ctx)
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	defer st.Close()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		return fail(exitFailure, "%v", err)
	}
	switch sub {
	case "create":
		start := time.Now()
		opts.Audit, opts.Log = audit.New(st), env.logger(slog.LevelInfo)
		p, err := plan.Create(ctx, st, opts)
		if err != nil {
			return fail(exitFailure, "%v", err)
		}
		printPlanCreated(env.stdout, p, time.Since(start))
		return exitOK
	case "list":
		list, err := plan.List(ctx, st, limit, 0)
		if err != nil {
			return fail(exitFailure, "%v", err)
		}
		tw := tabwriter.NewWriter(env.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PLAN\tCREATED\tBY\tPOLICY\tACTIONS\tSCHEDULED\tLATE\tUNSCHEDULED\tEMERGENCY\tRISK REMOVED\t")
		for _, s := range list {
			cur := ""
			if s.Current {
				cur = " (current)"
			}
			fmt.Fprintf(tw, "%s%s\t%s\t%s\tv%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t\n", s.ID, cur, s.CreatedAt.UTC().Format(time.RFC3339), s.CreatedBy,
				s.PolicyVersion, s.Actions, s.Scheduled, s.Late, s.Unscheduled, s.Emergency, s.RiskReduction)
		}
		tw.Flush()
		return exitOK
	case "show":
		s, err := plan.Get(ctx, st, id)
		if err != nil {
			return fail(exitFailure, "%v", err)
		}
		if err := showPlan(ctx, env.stdout, st, s, by, limit); err != nil {
			return fail(exitFailure, "%v", err)
		}
		return exitOK
	default: // export
		s, err := plan.Get(ctx, st, id)
		if err != nil {
			return fail(exitFailure, "%v", err)
		}
		var dst io.Writer = env.stdout
		var file *os.File
		if out != "-" {
			if file, err = os.Create(out); err != nil {
				return fail(exitFailure, "%v", err)
			}
			dst = file
		}
		bw := bufio.NewWriterSize(dst, 1<<20)
		n, err := plan.Export(ctx, st, s.ID, filter, format, bw)
		if err == nil {
			err = bw.Flush()
		}
		if file != nil {
			if cerr := file.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(out) // a cut file must not pass for a whole export
			}
		}
		if err != nil {
			return fail(exitFailure, "after %d actions: %v", n, err)
		}
		fmt.Fprintf(env.stderr, "exported %d actions of plan %s as %s\n", n, s.ID, format)
		return exitOK
	}
}

func printPlanCreated(w io.Writer, p plan.Summary, took time.Duration) {
	fmt.Fprintf(w, "plan %s (policy version %d): %d actions on %d hosts from %d open findings in %s\n",
		p.ID, p.PolicyVersion, p.Actions, p.Hosts, p.Findings, took.Round(time.Millisecond))
	fmt.Fprintf(w, "  %d scheduled, %d late (first window after the deadline), %d unscheduled (listed with the reason), %d emergency, %d waves, risk removed %.1f\n",
		p.Scheduled, p.Late, p.Unscheduled, p.Emergency, p.Waves, p.RiskReduction)
	fmt.Fprintf(w, "  %d findings have no fix available (no action)\n", p.NoFix)
	if p.EndOfLife > 0 {
		fmt.Fprintf(w, "  %d hosts run an end-of-life OS release (%d findings): upgrade the release, not a package action (no action)\n", p.EndOfLifeHosts, p.EndOfLife)
	}
	fmt.Fprintf(w, "  %d findings are covered by an approved exception (no action; table plan_excepted)\n", p.Excepted)
}

func showPlan(ctx context.Context, w io.Writer, st store.Store, s plan.Summary, by string, limit int) error {
	cur := ""
	if s.Current {
		cur = ", current"
	}
	fmt.Fprintf(w, "plan %s (policy version %d%s), created %s by %s for %s, horizon to %s\n", s.ID, s.PolicyVersion, cur,
		s.CreatedAt.UTC().Format(time.RFC3339), s.CreatedBy, s.At.UTC().Format(time.RFC3339), s.HorizonEnd.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "%d actions on %d hosts: %d scheduled, %d late, %d unscheduled, %d emergency; %d waves; risk removed %.1f; %d findings: no fix available; %d findings: excepted (accepted risk)",
		s.Actions, s.Hosts, s.Scheduled, s.Late, s.Unscheduled, s.Emergency, s.Waves, s.RiskReduction, s.NoFix, s.Excepted)
	if s.EndOfLife > 0 {
		fmt.Fprintf(w, "; %d hosts on an end-of-life OS release (%d findings, no action)", s.EndOfLifeHosts, s.EndOfLife)
	}
	fmt.Fprint(w, "\n\n")
	switch by {
	case "fix":
		fixes, err := plan.Fixes(ctx, st, s.ID, limit)
		if err != nil {
			return err
		}
		for _, f := range fixes {
			fmt.Fprintln(w, FixLine(f))
		}
		// End-of-life releases are no package fix: listed after the
		// fixes, apart, so a change board sees them without mistaking
		// them for plan actions.
		eol, err := plan.EndOfLifeReleases(ctx, st, s.ID, limit)
		if err != nil {
			return err
		}
		if len(eol) > 0 {
			fmt.Fprintln(w, "\nnot a package action (no plan action):")
		}
		for _, x := range eol {
			fmt.Fprintln(w, EOLLine(x))
		}
	case "wave":
		waves, err := plan.Waves(ctx, st, s.ID)
		if err != nil {
			return err
		}
		for i, x := range waves {
			if i == limit {
				break
			}
			fmt.Fprintln(w, WaveLine(x))
		}
	default:
		rows, err := plan.Actions(ctx, st, s.ID, risk.Filter{}, &risk.Page{Limit: limit})
		if err != nil {
			return err
		}
		t, err := export.ReadTable(rows, 0)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RANK\tHOST\tPACKAGE\tINSTALLED\tTARGET\tRING\tWAVE\tWINDOW\tSTATUS\tRISK\tREASON\t")
		for _, r := range t.Records() {
			win := "-"
			if ws, ok := r["window_start"].(time.Time); ok {
				win = ws.UTC().Format("2006-01-02 15:04") + ".."
				if we, ok := r["window_end"].(time.Time); ok {
					win += we.UTC().Format("15:04")
				}
			}
			fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%v\t%v\t%s\t%v\t%.1f\t%v\t\n", r["rank"], r["hostname"], r["package"],
				r["installed_version"], r["target_version"], r["ring"], r["wave"], win, r["status"], r["risk_reduction"], r["reason"])
		}
		tw.Flush()
	}
	return nil
}

// FixLine is one fix as a change board reads it.
func FixLine(f plan.Fix) string {
	var b strings.Builder
	fmt.Fprintf(&b, "upgrade %s to %s on %d host", f.Package, f.TargetVersion, f.Hosts)
	if f.Hosts != 1 {
		b.WriteString("s")
	}
	fmt.Fprintf(&b, ": closes %d advisor", f.Advisories)
	if f.Advisories == 1 {
		b.WriteString("y")
	} else {
		b.WriteString("ies")
	}
	if f.KEVAdvisories > 0 {
		fmt.Fprintf(&b, " (%d KEV)", f.KEVAdvisories)
	}
	fmt.Fprintf(&b, ", risk -%.1f", f.RiskReduction)
	if !f.FirstWindow.IsZero() {
		fmt.Fprintf(&b, ", first window %s", f.FirstWindow.UTC().Format("2006-01-02 15:04 MST"))
	}
	if f.Emergency {
		b.WriteString(", EMERGENCY")
	}
	if f.Unscheduled > 0 {
		fmt.Fprintf(&b, ", %d unscheduled", f.Unscheduled)
	}
	return b.String()
}

// EOLLine is one end-of-life release in one line.
func EOLLine(x plan.EOLRelease) string {
	s := ""
	if x.Hosts != 1 {
		s = "s"
	}
	return fmt.Sprintf("upgrade the OS release %s (end of life, %s) on %d host%s, risk %.1f", x.Release, x.Advisory, x.Hosts, s, x.RiskScore)
}

// WaveLine is one wave in one line.
func WaveLine(x plan.Wave) string {
	em := ""
	if x.Emergency {
		em = " (emergency)"
	}
	return fmt.Sprintf("wave %d%s, ring %s: %s .. %s, %d hosts, %d actions, risk -%.1f", x.Wave, em, x.Ring,
		x.Opens.UTC().Format("2006-01-02 15:04"), x.Closes.UTC().Format("2006-01-02 15:04"), x.Hosts, x.Actions, x.RiskReduction)
}

// samplePlan is the last stage of `patchgrid run`: it applies the sample
// policy shipped with patchgrid when no policy was ever applied, creates a
// plan under the active policy, and writes the top fixes by risk removed
// and the first wave to w.
func samplePlan(ctx context.Context, st store.Store, w io.Writer, top int) error {
	const actor = "patchgrid run"
	if _, err := policy.Active(ctx, st); errors.Is(err, policy.ErrNoPolicy) {
		if _, err := policy.Apply(ctx, st, audit.New(st), "analytics/policy/sample.yaml", policy.SampleYAML, actor, time.Now()); err != nil {
			return fmt.Errorf("apply the sample policy: %w", err)
		}
	} else if err != nil {
		return err
	}
	start := time.Now()
	p, err := plan.Create(ctx, st, plan.CreateOptions{Actor: actor, Audit: audit.New(st)})
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	printPlanCreated(w, p, time.Since(start))
	fixes, err := plan.Fixes(ctx, st, p.ID, top)
	if err != nil {
		return err
	}
	if len(fixes) > 0 {
		fmt.Fprintf(w, "top fixes by risk removed (patchgrid plan show %s --by fix):\n", p.ID)
		for _, f := range fixes {
			fmt.Fprintln(w, "  "+FixLine(f))
		}
	}
	waves, err := plan.Waves(ctx, st, p.ID)
	if err != nil {
		return err
	}
	if len(waves) > 0 {
		fmt.Fprintln(w, "first wave: "+WaveLine(waves[0]))
		acts, err := plan.WaveActions(ctx, st, p.ID, waves[0].Wave, top+1)
		if err != nil {
			return err
		}
		for i, a := range acts {
			if i == top {
				fmt.Fprintf(w, "  ... (patchgrid plan export %s --format ansible)\n", p.ID)
				break
			}
			fmt.Fprintf(w, "  %s: %s %s -> %s (%s)\n", a.Hostname, a.Package, a.InstalledVersion, a.TargetVersion, a.Status)
		}
	}
	return nil
}
