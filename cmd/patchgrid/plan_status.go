package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/deploy"
	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/schemas"
)

const planStatusUsage = `usage:
  patchgrid plan status [ID] [--due] [--format text|json]
  patchgrid plan approve --package P --version V [--ecosystem E] [--group G] --approver WHO [--reason R]`

// runPlanDeploy is `patchgrid plan status` and `plan approve`
// (analytics/deploy): where a plan's actions stand, each ring's gate, the
// holds after rollbacks, what may run now, and lifting a hold.
func runPlanDeploy(ctx context.Context, env *cliEnv, sub string, args []string) int {
	fs := flag.NewFlagSet("plan "+sub, flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	var (
		format, pkg, ver, eco, group, approver, reason string
		due                                            bool
	)
	switch sub {
	case "status":
		fs.StringVar(&format, "format", "text", "text or json")
		fs.BoolVar(&due, "due", false, "also list the actions that may run now (gate open, not held, in their window, attempts left)")
	default: // approve
		fs.StringVar(&pkg, "package", "", "package of the held fix")
		fs.StringVar(&ver, "version", "", "target version of the held fix")
		fs.StringVar(&eco, "ecosystem", "", "only holds of this ecosystem (default: all)")
		fs.StringVar(&group, "group", "", "only holds of this group (default: every group holding the fix)")
		fs.StringVar(&approver, "approver", "", "who approves (required; recorded in the audit trail)")
		fs.StringVar(&reason, "reason", "", "why the fix may run again")
	}
	var id string
	if sub == "status" && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(env.stderr, "patchgrid plan "+sub+": "+format+"\n", a...)
		return code
	}
	if sub == "status" && id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() != 0 {
		return fail(exitUsage, "unexpected arguments %q\n%s", fs.Args(), planStatusUsage)
	}
	switch {
	case sub == "status" && format != "text" && format != "json":
		return fail(exitUsage, "--format %q: want text or json", format)
	case sub == "approve" && (pkg == "" || ver == ""):
		return fail(exitUsage, "--package and --version name the held fix\n%s", planStatusUsage)
	case sub == "approve" && strings.TrimSpace(approver) == "":
		return fail(exitUsage, "--approver: who approves the held fix?")
	}
	st, err := sf.open(ctx)
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	defer st.Close()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		return fail(exitFailure, "%v", err)
	}
	cfg := deploy.Config{Store: st, Audit: audit.New(st), Actor: actor(env), Log: env.logger(nil)}
	if sub == "approve" {
		held, err := deploy.Approve(ctx, cfg, deploy.ApproveRequest{Package: pkg, Version: ver, Ecosystem: eco, Group: group,
			Approver: approver, Reason: reason})
		if err != nil {
			code := exitFailure
			if errors.Is(err, deploy.ErrNoHold) {
				code = exitUsage
			}
			return fail(code, "%v", err)
		}
		for _, h := range held {
			fmt.Fprintf(env.stdout, "approved %s (held since %s after %d rollback(s)) by %s\n", h.Fix, h.HeldAt.Format(time.RFC3339), h.Rollbacks, approver)
		}
		return exitOK
	}
	r, err := deploy.Status(ctx, cfg, id, due)
	if err != nil {
		if errors.Is(err, plan.ErrNotFound) {
			return fail(exitUsage, "%v", err)
		}
		return fail(exitFailure, "%v", err)
	}
	if format == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fail(exitFailure, "%v", err)
		}
		return exitOK
	}
	printPlanStatus(env.stdout, r)
	return exitOK
}

// printPlanStatus writes a Report for people.
func printPlanStatus(w io.Writer, r *deploy.Report) {
	fmt.Fprintf(w, "plan %s (policy version %d), evaluated %s: max %d attempts, verification window %s\n",
		r.Plan.ID, r.PolicyVersion, r.EvaluatedAt.Format(time.RFC3339), r.MaxAttempts, r.Verification)
	fmt.Fprintf(w, "actions: %s\n\n", stateCounts(r.States))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RING\tGATE\tEMERGENCY\tPREVIOUS RING\tSUCCESSES\tFAILURES\tFAILURE RATE\tSOAK\tACTIONS\tWHY\t")
	for _, g := range r.Rings {
		prev, succ, fails, rate, soak := "-", "-", "-", "-", "-"
		if g.PrevRing != "" {
			prev = g.PrevRing
			succ = fmt.Sprintf("%d/%d", g.Prev.Successes, g.MinSuccesses)
			fails = fmt.Sprint(g.Prev.Failures)
			rate = fmt.Sprintf("%.3f/%.3f", g.FailureRate, g.MaxFailureRate)
			soak = fmt.Sprintf("%s/%s", g.Soak.Round(time.Minute), g.MinSoak)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", g.Ring, openWord(g.Open), openWord(g.EmergencyOpen), prev,
			succ, fails, rate, soak, stateCounts(g.States), g.Reason)
	}
	tw.Flush()
	if len(r.Holds) > 0 {
		fmt.Fprintf(w, "\n%d fix(es) held after a rollback (patchgrid plan approve --package P --version V --approver WHO):\n", len(r.Holds))
		for _, h := range r.Holds {
			fmt.Fprintf(w, "  %s: %d rollback(s), last %s\n", h.Fix, h.Rollbacks, h.Reason)
		}
	}
	if r.Due != nil {
		fmt.Fprintf(w, "\n%d action(s) may run now", len(r.Due.Actions))
		if len(r.Due.NotDue) > 0 {
			fmt.Fprintf(w, "; not now: %s", countList(r.Due.NotDue))
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACTION\tHOST\tPACKAGE\tTARGET\tRING\tWAVE\tSTATE\tATTEMPT\tWHY\t")
		for _, a := range r.Due.Actions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d/%d\t%s\t\n", a.ActionID, a.Hostname, a.Package, a.TargetVersion, a.Ring, a.Wave,
				a.State, a.Attempt, a.MaxAttempts, a.Why)
		}
		tw.Flush()
	}
}

func openWord(b bool) string {
	if b {
		return "open"
	}
	return "closed"
}

// stateCounts lists non-zero counts in lifecycle order.
func stateCounts(m map[deploy.State]uint64) string {
	var parts []string
	for _, s := range deploy.States {
		if n := m[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func countList(m map[string]uint64) string {
	keys := []string{deploy.NotDueGate, deploy.NotDueHeld, deploy.NotDueWindow, deploy.NotDueEnded, deploy.NotDueExhausted,
		deploy.NotDueUnsched, deploy.NotDueNoRetrySlt}
	var parts []string
	for _, k := range keys {
		if n := m[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	return strings.Join(parts, ", ")
}
