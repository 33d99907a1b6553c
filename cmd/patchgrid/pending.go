package main

// Commands whose owners have not landed them yet. Each owner deletes its
// line here when it adds its own file.

import (
	"context"
	"fmt"
)

func pending(name string) func(context.Context, *cliEnv, []string) int {
	return func(_ context.Context, env *cliEnv, _ []string) int {
		fmt.Fprintf(env.stderr, "patchgrid %s: not available in this build\n", name)
		return exitFailure
	}
}

var (
	runMatch   = pending("match")
	runExplain = pending("explain")
)
