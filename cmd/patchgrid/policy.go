package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
)

const policyUsage = `usage:
  patchgrid policy apply FILE.yaml [--actor WHO]
  patchgrid policy show [--version N] [--canonical]
  patchgrid policy diff A B
  patchgrid policy history
  patchgrid policy presets [--show FRAMEWORK]`

// runPolicy is `patchgrid policy ...`: the remediation policy as code
// (analytics/policy), versioned in the store.
func runPolicy(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, policyUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fmt.Fprintln(env.stdout, "Remediation policy: SLA days, asset groups, windows, freezes, rings and gates, blast radius, emergency path. Every applied version is kept; the active one feeds the SLA views and the planner.")
		fmt.Fprintln(env.stdout, policyUsage)
		return exitOK
	}
	fs := flag.NewFlagSet("policy "+sub, flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	var actor string
	var ver uint
	var canonical bool
	var showPreset string
	nargs := 0
	switch sub {
	case "apply":
		nargs = 1
		fs.StringVar(&actor, "actor", env.getenv("USER"), "who applies the policy (recorded; default $USER)")
	case "show":
		fs.UintVar(&ver, "version", 0, "show this version (default: the active one)")
		fs.BoolVar(&canonical, "canonical", false, "show the parsed form (JSON) instead of the file as applied")
	case "diff":
		nargs = 2
	case "history":
	case "presets": // compliance frameworks (presets.go)
		fs.StringVar(&showPreset, "show", "", "print this framework's preset file as shipped, with the source it cites")
	default:
		fmt.Fprintf(env.stderr, "patchgrid policy: unknown subcommand %q\n%s\n", sub, policyUsage)
		return exitUsage
	}
	// Positional arguments first (policy apply FILE --actor WHO).
	var pos []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") && len(pos) < nargs {
		pos, args = append(pos, args[0]), args[1:]
	}
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	pos = append(pos, fs.Args()...)
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(env.stderr, "patchgrid policy "+sub+": "+format+"\n", a...)
		return code
	}
	if len(pos) != nargs {
		return fail(exitUsage, "want %d argument(s), got %q\n%s", nargs, pos, policyUsage)
	}
	var src []byte
	var diffA, diffB uint64
	switch sub {
	case "apply":
		if actor == "" {
			return fail(exitUsage, "--actor: who applies the policy?")
		}
		// Checked before the store is opened: a bad file changes nothing.
		var err error
		if src, err = readPolicyFile(pos[0]); err != nil {
			return fail(exitUsage, "%v", err)
		}
		if _, err := policy.Parse(pos[0], src); err != nil {
			return fail(exitUsage, "%v", err)
		}
	case "presets":
		if showPreset != "" {
			return showFrameworkPreset(env, showPreset)
		}
	case "diff":
		var errA, errB error
		diffA, errA = strconv.ParseUint(pos[0], 10, 32)
		diffB, errB = strconv.ParseUint(pos[1], 10, 32)
		if errA != nil || errB != nil {
			return fail(exitUsage, "want two version numbers, got %q %q", pos[0], pos[1])
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
	case "apply":
		res, err := policy.Apply(ctx, st, audit.New(st), pos[0], src, actor, time.Now())
		if err != nil {
			if errors.Is(err, policy.ErrInvalid) {
				return fail(exitUsage, "%v", err)
			}
			return fail(exitFailure, "%v", err)
		}
		switch {
		case res.WasActive:
			fmt.Fprintf(env.stdout, "policy unchanged: version %d is already active\n", res.Version)
		case res.New:
			fmt.Fprintf(env.stdout, "policy version %d applied by %s\n", res.Version, actor)
		default:
			fmt.Fprintf(env.stdout, "policy identical to version %d: re-activated by %s\n", res.Version, actor)
		}
		if !res.SLAWritten {
			fmt.Fprintln(env.stderr, "note: this server has no SLA views; the policy is stored for a current ClickHouse")
		}
		return exitOK
	case "show":
		return showPolicy(ctx, env.stdout, st, uint32(ver), canonical, fail)
	case "presets":
		return listFrameworks(ctx, env, st)
	case "diff":
		a, err := policy.Get(ctx, st, uint32(diffA))
		if err != nil {
			return fail(exitFailure, "%v", err)
		}
		b, err := policy.Get(ctx, st, uint32(diffB))
		if err != nil {
			return fail(exitFailure, "%v", err)
		}
		lines, err := policy.Diff(a.Canonical, b.Canonical)
		if err != nil {
			return fail(exitFailure, "%v", err)
		}
		fmt.Fprintf(env.stdout, "--- policy version %d (%s)\n+++ policy version %d (%s)\n", a.Version, a.SourceFile, b.Version, b.SourceFile)
		for _, l := range lines {
			fmt.Fprintln(env.stdout, l)
		}
		if len(lines) == 0 {
			fmt.Fprintln(env.stdout, "(no difference)")
		}
		return exitOK
	default: // history
		hist, err := policy.History(ctx, st)
		if err != nil {
			return fail(exitFailure, "%v", err)
		}
		for _, h := range hist {
			fmt.Fprintf(env.stdout, "%s  version %d  activated by %s\n", h.ActivatedAt.UTC().Format(time.RFC3339), h.Version, h.ActivatedBy)
		}
		if len(hist) == 0 {
			fmt.Fprintln(env.stdout, "no policy applied yet: the built-in default is in force (any time, one wave)")
		}
		return exitOK
	}
}

func showPolicy(ctx context.Context, w io.Writer, st store.Store, ver uint32, canonical bool, fail func(int, string, ...any) int) int {
	var v policy.Version
	var err error
	active, aerr := policy.Active(ctx, st)
	if aerr != nil && !errors.Is(aerr, policy.ErrNoPolicy) {
		return fail(exitFailure, "%v", aerr)
	}
	if ver == 0 {
		if aerr != nil {
			return fail(exitFailure, "%v", aerr)
		}
		v = active
	} else if v, err = policy.Get(ctx, st, ver); err != nil {
		return fail(exitFailure, "%v", err)
	}
	state := "inactive"
	if aerr == nil && active.Version == v.Version {
		state = fmt.Sprintf("active since %s, applied by %s", active.ActivatedAt.UTC().Format(time.RFC3339), active.ActivatedBy)
	}
	fmt.Fprintf(w, "# policy version %d %q from %s, created %s by %s (%s)\n", v.Version, v.Name, v.SourceFile,
		v.CreatedAt.UTC().Format(time.RFC3339), v.CreatedBy, state)
	if canonical {
		fmt.Fprintln(w, v.Canonical)
	} else {
		fmt.Fprint(w, strings.TrimRight(v.Source, "\n")+"\n")
	}
	return exitOK
}

// readPolicyFile reads a policy file, at most 1 MiB (a policy is a page
// of YAML, not data).
func readPolicyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("%s: larger than 1 MiB: not a policy file", path)
	}
	return b, nil
}
