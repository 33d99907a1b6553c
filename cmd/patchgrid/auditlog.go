package main

import (
	"time"

	"context"
	"fmt"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"os"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// actor names who runs a command, for the audit trail: $PATCHGRID_ACTOR
// when set (automation names itself there), else the login user, with
// the host it ran on.
func actor(env *cliEnv) string {
	if a := env.getenv("PATCHGRID_ACTOR"); a != "" {
		return a
	}
	user := env.getenv("USER")
	if user == "" {
		user = "unknown-user"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return user
	}
	return user + "@" + host
}

// recordDecision appends one entry to the audit trail of st. A decision
// that took effect but could not be recorded is reported as an error: the
// trail must not silently miss it.
func recordDecision(ctx context.Context, st store.Store, env *cliEnv, action, object string, before, after any, detail string) error {
	if _, err := audit.New(st).Append(ctx, audit.Event{
		Actor: actor(env), Action: action, Object: object, Before: before, After: after, Detail: detail,
	}); err != nil {
		return fmt.Errorf("%s of %s took effect, but recording it in the audit trail failed: %w", action, object, err)
	}
	return nil
}

// parseSpan reads a span people type (30d, 2w, 12h): analytics/policy's
// parser, so every command means the same by "30d".
func parseSpan(s string) (time.Duration, error) { return policy.ParseSpan(s) }
