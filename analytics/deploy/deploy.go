package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Config is what evaluating and deciding need.
type Config struct {
	Store store.Store
	// Audit records gate decisions, holds and approvals (required: a
	// decision that cannot be recorded is an error).
	Audit *audit.Log
	// Actor names who evaluates or approves in the trail: a person, a token
	// name, or "patchgrid <command>".
	Actor string
	// Now is the evaluation's time; zero: time.Now().
	Now time.Time
	Log *slog.Logger // nil: discard
}

func (c *Config) check() error {
	if c.Store == nil || c.Audit == nil || c.Actor == "" {
		return errors.New("deploy: Config.Store, Config.Audit and Config.Actor are required (not retryable)")
	}
	if c.Now.IsZero() {
		c.Now = time.Now()
	}
	c.Now = c.Now.UTC().Truncate(time.Second)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// RingReport is one ring of a plan: its gate and its actions by state.
type RingReport struct {
	Gate
	States map[State]uint64 `json:"states"`
	// Changed: this evaluation recorded a new gate decision for the ring.
	Changed bool `json:"changed"`
}

// Report is `plan status`: the plan, each ring's gate and states, the
// holds in force, and (when asked) what may run now.
type Report struct {
	Plan          plan.Summary     `json:"plan"`
	EvaluatedAt   time.Time        `json:"evaluated_at"`
	PolicyVersion uint32           `json:"policy_version"`
	MaxAttempts   uint32           `json:"max_attempts"`
	Verification  time.Duration    `json:"verification_window_ns"`
	Rings         []RingReport     `json:"rings"`
	States        map[State]uint64 `json:"states"`
	Holds         []Hold           `json:"holds"`
	Due           *DueList         `json:"due,omitempty"`
}

// ErrNotFound marks an unknown plan (or no plan yet).
var ErrNotFound = plan.ErrNotFound

// Status evaluates plan id ("" = the current plan): it records the holds
// of new rollbacks, decides each ring's gate and records every gate whose
// decision changed (table gate_decisions and the audit trail), and
// reports. With due it also lists what may run now (Due).
func Status(ctx context.Context, cfg Config, id string, due bool) (*Report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := schemas.RequireAnalytics(ctx, cfg.Store); err != nil {
		return nil, fmt.Errorf("plan status: %w", err)
	}
	sum, err := plan.Get(ctx, cfg.Store, id)
	if err != nil {
		return nil, err
	}
	pol, err := PolicyOf(ctx, cfg.Store, sum.PolicyVersion)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", sum.ID, err)
	}
	if _, err := SyncHolds(ctx, cfg); err != nil {
		return nil, err
	}
	// With due, one evaluation of action_states serves both the counts
	// and the due list (the store counts, and sends only the actions that
	// may be due); without, the store only counts.
	var t *tally
	var candidates []candidate
	if due {
		t, candidates, err = readActions(ctx, cfg.Store, sum.ID, cfg.Now, true)
	} else {
		t, err = ringStats(ctx, cfg.Store, sum.ID)
	}
	if err != nil {
		return nil, err
	}
	gates := Gates(pol, t.stats, cfg.Now)
	changed, err := recordGates(ctx, cfg, sum.ID, gates)
	if err != nil {
		return nil, err
	}
	r := &Report{Plan: sum, EvaluatedAt: cfg.Now, PolicyVersion: sum.PolicyVersion, MaxAttempts: pol.Deployment.Attempts(),
		Verification: pol.Deployment.Window(), States: map[State]uint64{}}
	for _, g := range gates {
		rr := RingReport{Gate: g, States: map[State]uint64{}, Changed: changed[g.Ring]}
		for _, ring := range ringMembers(pol, g.Ring, t.byRing) {
			for s, n := range t.byRing[ring] {
				rr.States[s] += n
			}
		}
		for s, n := range rr.States {
			r.States[s] += n
		}
		r.Rings = append(r.Rings, rr)
	}
	if r.Holds, err = Holds(ctx, cfg.Store); err != nil {
		return nil, err
	}
	if due {
		windows, err := readHostWindows(ctx, cfg.Store, sum.ID, candidates)
		if err != nil {
			return nil, err
		}
		r.Due = dueList(cfg.Now, pol, gates, r.Holds, candidates, windows)
	}
	return r, nil
}

// ringMembers lists the plan's ring labels that gate entry ring covers:
// the ring itself, or for OtherRings every ring the policy does not name.
func ringMembers(pol *policy.Policy, ring string, byRing map[string]map[State]uint64) []string {
	if ring != OtherRings {
		return []string{ring}
	}
	var out []string
	for r := range byRing {
		if _, known := pol.RingIndex(r); !known || len(pol.Rings) == 0 {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// gateRing is the gate entry that applies to an action of ring label r.
func gateRing(pol *policy.Policy, r string) string {
	if _, known := pol.RingIndex(r); known && len(pol.Rings) > 0 {
		return r
	}
	return OtherRings
}

// PolicyOf reads the policy a plan was made under: stored version v, or
// the built-in default for version 0.
func PolicyOf(ctx context.Context, st store.Store, v uint32) (*policy.Policy, error) {
	if v == 0 {
		return policy.Default()
	}
	ver, err := policy.Get(ctx, st, v)
	if err != nil {
		return nil, err
	}
	return ver.Policy()
}

// stateList is a SQL list of the states for which pred holds.
func stateList(pred func(State) bool) string {
	var q []string
	for _, s := range States {
		if pred(s) {
			q = append(q, "'"+string(s)+"'")
		}
	}
	return "(" + strings.Join(q, ", ") + ")"
}

// tally accumulates a plan's actions by ring and state, with each ring's
// gate figures.
type tally struct {
	stats  map[string]RingStats
	byRing map[string]map[State]uint64
}

func newTally() *tally {
	return &tally{stats: map[string]RingStats{}, byRing: map[string]map[State]uint64{}}
}

// add counts n actions of ring in state s, the latest finished at last.
func (t *tally) add(ring string, s State, n uint64, last time.Time) {
	rs := t.stats[ring]
	rs.Ring = ring
	rs.Actions += n
	switch {
	case s.Success():
		rs.Successes += n
		if last.Unix() > 0 && last.After(rs.LastSuccess) {
			rs.LastSuccess = last.UTC()
		}
	case s.Failure():
		rs.Failures += n
	}
	t.stats[ring] = rs
	if t.byRing[ring] == nil {
		t.byRing[ring] = map[State]uint64{}
	}
	t.byRing[ring][s] += n
}

// ringStats reads a plan's actions counted by ring and state (the view
// aggregates; nothing per action leaves the store).
func ringStats(ctx context.Context, st store.Store, planID string) (*tally, error) {
	rows, err := st.Query(ctx, `SELECT ring, state, count(), max(finished_at) FROM action_states WHERE plan_id = ? GROUP BY ring, state`, planID)
	if err != nil {
		return nil, fmt.Errorf("plan %s: read action states: %w", planID, err)
	}
	defer rows.Close()
	t := newTally()
	for rows.Next() {
		var ring, state string
		var n uint64
		var last time.Time
		if err := rows.Scan(&ring, &state, &n, &last); err != nil {
			return nil, fmt.Errorf("plan %s: read action states: %w", planID, err)
		}
		s, err := ParseState(state)
		if err != nil {
			return nil, fmt.Errorf("plan %s: action_states: %w", planID, err)
		}
		t.add(ring, s, n, last)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plan %s: read action states: %w", planID, err)
	}
	return t, nil
}

// recordGates writes a gate_decisions row and an audit entry for every
// gate whose open/closed decision differs from the last one recorded for
// the plan and ring (or that has none yet). It returns the rings recorded.
func recordGates(ctx context.Context, cfg Config, planID string, gates []Gate) (map[string]bool, error) {
	rows, err := cfg.Store.Query(ctx, "SELECT ring, open FROM gate_decisions_current WHERE plan_id = ?", planID)
	if err != nil {
		return nil, fmt.Errorf("plan %s: read gate decisions: %w", planID, err)
	}
	last := map[string]bool{}
	seen := map[string]bool{}
	for rows.Next() {
		var ring string
		var open uint8
		if err := rows.Scan(&ring, &open); err != nil {
			rows.Close()
			return nil, fmt.Errorf("plan %s: read gate decisions: %w", planID, err)
		}
		last[ring], seen[ring] = open != 0, true
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("plan %s: read gate decisions: %w", planID, err)
	}
	changed := map[string]bool{}
	for _, g := range gates {
		if seen[g.Ring] && last[g.Ring] == g.Open {
			continue
		}
		row := []any{planID, g.Ring, uint32(g.RingIndex), cfg.Now, cfg.Actor, b8(g.Open), g.Reason, g.PrevRing,
			g.Prev.Successes, g.Prev.Failures, g.FailureRate, orEpoch(g.Prev.LastSuccess), uint64(g.Soak / time.Second),
			uint64(g.MinSoak / time.Second), g.MaxFailureRate, uint64(g.MinSuccesses)}
		if err := cfg.Store.Insert(ctx, "gate_decisions", gateColumns, [][]any{row}); err != nil {
			return nil, fmt.Errorf("plan %s: record the gate of ring %s: %w", planID, g.Ring, err)
		}
		action := "gate.close"
		if g.Open {
			action = "gate.open"
		}
		var before any
		if seen[g.Ring] {
			before = map[string]any{"open": last[g.Ring]}
		}
		if _, err := cfg.Audit.Append(ctx, audit.Event{Actor: cfg.Actor, Action: action, Object: "plan:" + planID + "/ring:" + g.Ring,
			Before: before, After: g, Detail: g.Reason, At: cfg.Now}); err != nil {
			return nil, fmt.Errorf("plan %s: the gate of ring %s is recorded, but its audit entry failed: %w", planID, g.Ring, err)
		}
		cfg.Log.Info("gate decision", "plan", planID, "ring", g.Ring, "open", g.Open, "reason", g.Reason)
		changed[g.Ring] = true
	}
	return changed, nil
}

var gateColumns = []string{"plan_id", "ring", "ring_index", "decided_at", "decided_by", "open", "reason", "prev_ring",
	"successes", "failures", "failure_rate", "last_success", "soak_s", "min_soak_s", "max_failure_rate", "min_successes"}

func b8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func orEpoch(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t
}
