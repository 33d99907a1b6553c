package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/patchgrid/patchgrid/analytics/refresh"
	"github.com/patchgrid/patchgrid/schemas"
)

// runRefresh brings exposure history and the KPI and risk tables up to
// date without matching: after an SLA policy change, or on a schedule so
// that open windows and SLA states move with the clock. `match --fleet`
// does the same after matching.
func runRefresh(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("refresh", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	full := fs.Bool("full", false, "rewrite every host's exposure history, not only what changed since the last refresh")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(env.stderr, "patchgrid refresh: takes no arguments")
		return exitUsage
	}
	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid refresh: %v\n", err)
		return exitFailure
	}
	defer st.Close()
	// A refresh writes (and records itself in the audit trail): bring the
	// schema up to date first, as every writing command does.
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid refresh: %v\n", err)
		return exitFailure
	}
	if err := schemas.RequireAnalytics(ctx, st); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid refresh: %v\n", err)
		return exitFailure
	}
	mode := refresh.Incremental
	if *full {
		mode = refresh.Full
	}
	log := env.logger(nil)
	rs, err := (&refresh.Job{Store: st, Log: log}).Run(ctx, mode)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid refresh: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(env.stdout, "refresh %s (%s): %d hosts, %d advisories, %d exposure rows in %s\n",
		rs.RefreshID, rs.Mode, rs.Hosts, rs.Advisories, rs.Exposures, rs.Finished.Sub(rs.Started))
	if err := recordRefresh(ctx, st, env, rs); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid refresh: %v\n", err)
		return exitFailure
	}
	return exitOK
}
