package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/patchgrid/patchgrid/schemas"
)

// runMigrate applies the embedded schema migrations and prints what it
// applied and what the server is too old for.
func runMigrate(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(env.stderr, "patchgrid migrate: takes no arguments")
		return exitUsage
	}
	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid migrate: %v\n", err)
		return exitFailure
	}
	defer st.Close()
	log := env.logger(slog.LevelWarn)
	applied, err := schemas.Migrate(ctx, st, log)
	for _, name := range applied {
		fmt.Fprintf(env.stdout, "applied %s\n", name)
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid migrate: %v\n", err)
		return exitFailure
	}
	skipped, err := schemas.Skipped(ctx, st)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid migrate: %v\n", err)
		return exitFailure
	}
	ver, _ := st.ServerVersion(ctx)
	for _, m := range skipped {
		fmt.Fprintf(env.stdout, "skipped %s: needs ClickHouse %s, this one is %s; unavailable: %s\n",
			m.Name, m.MinServerText(), ver.Text, m.Summary)
	}
	if len(applied) == 0 {
		fmt.Fprintf(env.stdout, "schema up to date (%s, ClickHouse %s)\n", st.Backend(), ver.Text)
	}
	return exitOK
}
