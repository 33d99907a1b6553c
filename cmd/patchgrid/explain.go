package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// runExplain explains, step by step, why HOST is or is not exposed to
// ADVISORY (an advisory id or an alias such as a CVE).
func runExplain(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	all := fs.Bool("all", false, "list the advisory's ranges for every release and product stream, not only the host's")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: patchgrid explain [flags] HOST ADVISORY\n\nHOST is a host id or a hostname; ADVISORY an advisory id or an alias such as a CVE.\nAn unknown host or advisory exits 1.")
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
	if err := schemas.RequireMigrated(ctx, st); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid explain: %v\n", err)
		return exitFailure
	}
	e, err := match.Explain(ctx, st, version.Compare, fs.Arg(0), fs.Arg(1), match.ExplainOptions{All: *all})
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
