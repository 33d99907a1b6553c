package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// runExplain explains, step by step, why HOST is or is not exposed to
// ADVISORY (an advisory id or an alias such as a CVE).
func runExplain(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: patchgrid explain [flags] HOST ADVISORY")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return exitUsage
	}
	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid explain: %v\n", err)
		return exitFailure
	}
	defer st.Close()
	e, err := match.Explain(ctx, st, version.Compare, fs.Arg(0), fs.Arg(1))
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid explain: %v\n", err)
		return exitFailure
	}
	if _, err := e.WriteTo(env.stdout); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid explain: %v\n", err)
		return exitFailure
	}
	return exitOK
}
