// Package deploy closes the patch loop after a plan: where each planned
// action stands (the view action_states of
// schemas/migrations/0014_deploy.sql, whose state names are the State
// constants here), whether each ring's gate lets its waves open, which
// failed actions are due again, and which fixes are held after a rollback
// until someone approves them.
//
// Lifecycle of one action (state names as stored and shown):
//
//	planned ──window starts──▶ in_progress ──outcome──▶ succeeded | failed | rolled_back | skipped
//	succeeded ──rescan fixed──▶ verified
//	succeeded ──rescan still vulnerable──▶ still_exposed
//	succeeded ──no rescan within the verification window──▶ unverified
//	failed ──next window, attempts left──▶ (due again) ──outcome──▶ …
//
// in_progress means precisely: no outcome has been reported for the action
// and its window has started (window_start <= now); an unscheduled action
// stays planned. Outcomes are reported when an attempt ends, so an action
// stays in_progress until automation reports one (state_reason says when
// its window ended without one).
package deploy

import (
	"fmt"

	"github.com/patchgrid/patchgrid/schemas/outcome"
)

// State is where an action stands.
type State string

// The states, in lifecycle order. The outcome states are the outcome wire
// schema's statuses (schemas/outcome): one vocabulary.
const (
	Planned      State = "planned"
	InProgress   State = "in_progress"
	Succeeded          = State(outcome.Succeeded)
	Failed             = State(outcome.Failed)
	RolledBack         = State(outcome.RolledBack)
	Skipped            = State(outcome.Skipped)
	Verified     State = "verified"
	StillExposed State = "still_exposed"
	Unverified   State = "unverified"
)

// States lists every state in rank order (Rank is the index here).
var States = []State{Planned, InProgress, Succeeded, Failed, RolledBack, Skipped, Verified, StillExposed, Unverified}

// Rank is s's position in States (lifecycle order: planned first), or -1
// for a name that is not a state.
func (s State) Rank() int {
	for i, x := range States {
		if x == s {
			return i
		}
	}
	return -1
}

// ParseState checks a state name (e.g. a filter typed by a person).
func ParseState(name string) (State, error) {
	if s := State(name); s.Rank() >= 0 {
		return s, nil
	}
	return "", fmt.Errorf("unknown action state %q (want one of %v; not retryable)", name, States)
}

// Success reports whether an action in state s counts as a success for
// its ring's gate: its latest outcome succeeded and no rescan contradicts
// it (a still_exposed action counts as a failure).
func (s State) Success() bool {
	return s == Succeeded || s == Verified || s == Unverified
}

// Failure reports whether an action in state s counts as a failure for its
// ring's gate: failed (whatever attempts are left), rolled back, or still
// exposed after a reported success.
func (s State) Failure() bool {
	return s == Failed || s == RolledBack || s == StillExposed
}
