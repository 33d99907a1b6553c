// Package outcomes loads deployment outcomes (schemas/outcome) into the
// outcomes table (schemas/migrations/0013_outcomes.sql): the Kafka consumer
// of the topic patchgrid.outcomes, built on ingest/consumer's generic core,
// and the direct insert that POST /api/v1/outcomes and the bench use.
//
// Exactly-once effect: outcomes is a ReplacingMergeTree keyed by (plan_id,
// action_id, attempt), so an outcome delivered again after a crash replaces
// its first copy; readers count with FINAL or read outcomes_current.
//
// Fail closed: every outcome is checked against plan_actions before it is
// stored. An outcome whose plan_id is not a plan, whose action_id is not an
// action of that plan, or whose host_id or package is not the action's is
// refused (dead-lettered by the consumer, a 422 from the API) with a reason
// naming it. Checks are made per batch: one query reads the actions of the
// plans a batch names that are not in memory yet; actions, immutable once
// planned, are remembered, so a steady stream of outcomes for one plan
// queries it once (an unknown action is looked up again every time: the
// check never remembers a refusal).
package outcomes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/schemas/outcome"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Defaults of Run.
const (
	DefaultGroupID = "patchgrid-outcomes"
	// MetricsPrefix names the consumer's Prometheus series
	// (patchgrid_outcome_ingest_messages_consumed_total, ...).
	MetricsPrefix = "patchgrid_outcome_ingest"
	// Table is where outcomes are stored.
	Table = "outcomes"
)

// Dead-letter reasons (header patchgrid-dlq-reason) of outcomes refused by
// the plan check; a malformed message has consumer.ReasonInvalid, a row the
// store refuses consumer.ReasonStoreRejected.
const (
	ReasonUnknownPlan    = "unknown_plan"
	ReasonUnknownAction  = "unknown_action"
	ReasonActionMismatch = "action_mismatch"
)

// Columns of the outcomes table that Row fills, in its order.
var Columns = []string{
	"plan_id", "action_id", "attempt", "host_id", "package", "from_version", "to_version", "status",
	"started_at", "finished_at", "error", "reboot_required", "received_at",
}

// Row is o's row of the outcomes table (Columns), received at received.
func Row(o outcome.Outcome, received time.Time) []any {
	reboot := uint8(0)
	if o.RebootRequired {
		reboot = 1
	}
	return []any{
		o.PlanID, o.ActionID, o.Attempt, o.HostID, o.Package, o.FromVersion, o.ToVersion, string(o.Status),
		o.StartedAt.UTC(), o.FinishedAt.UTC(), o.Error, reboot, received.UTC(),
	}
}

// Rows are the rows of outs (Columns), received at received: Row for each,
// built for a batch at once. The rows share one backing array, and a value
// equal to the previous row's (plan, package, versions, status and error
// repeat along a wave of a plan; received is the same for all) is boxed
// once, so a row costs a few allocations instead of one per column.
func Rows(outs []outcome.Outcome, received time.Time) [][]any {
	ncol := len(Columns)
	vals := make([]any, len(outs)*ncol)
	rows := make([][]any, len(outs))
	recv := any(received.UTC())
	var plan, pkg, from, to, status, errText boxed
	for i := range outs {
		o := &outs[i]
		reboot := uint8(0)
		if o.RebootRequired {
			reboot = 1
		}
		row := vals[i*ncol : (i+1)*ncol : (i+1)*ncol]
		row[0], row[1], row[2], row[3] = plan.box(o.PlanID), o.ActionID, o.Attempt, o.HostID
		row[4], row[5], row[6], row[7] = pkg.box(o.Package), from.box(o.FromVersion), to.box(o.ToVersion), status.box(string(o.Status))
		row[8], row[9], row[10], row[11], row[12] = o.StartedAt.UTC(), o.FinishedAt.UTC(), errText.box(o.Error), reboot, recv
		rows[i] = row
	}
	return rows
}

// boxed remembers the last string put in an interface value, to reuse it
// while the same string comes again.
type boxed struct {
	s  string
	v  any
	ok bool
}

func (b *boxed) box(s string) any {
	if !b.ok || s != b.s {
		b.s, b.v, b.ok = s, s, true
	}
	return b.v
}

// Insert stores outcomes that Checker.Check accepted, in one insert. It is
// the direct way in (no Kafka); a repeated call stores nothing new (the
// table replaces rows with the same key).
func Insert(ctx context.Context, st store.Store, outs []outcome.Outcome, received time.Time) error {
	if len(outs) == 0 {
		return nil
	}
	if err := st.Insert(ctx, Table, Columns, Rows(outs, received)); err != nil {
		return fmt.Errorf("insert %d outcomes: %w", len(outs), err)
	}
	return nil
}

// actionKey identifies one action of one plan.
type actionKey struct{ plan, action string }

// planned is what an outcome must agree with.
type planned struct{ host, pkg string }

// maxKnown bounds the Checker's memory of planned actions (about 100 bytes
// each); past it the memory starts afresh, costing one query per batch
// until it fills again.
const maxKnown = 1 << 20

// Checker checks outcomes against plan_actions. It is safe for concurrent
// use.
type Checker struct {
	st store.Store

	mu    sync.Mutex
	known map[actionKey]planned
}

// NewChecker returns a Checker reading st.
func NewChecker(st store.Store) *Checker {
	return &Checker{st: st, known: map[actionKey]planned{}}
}

// Check returns one error per outcome: nil when its plan and action exist
// and the action is for its host and package, else a *consumer.Rejection
// whose reason is ReasonUnknownPlan, ReasonUnknownAction or
// ReasonActionMismatch and whose error names the ids. Its own error means
// the store could not be asked (a retry can help); nothing is accepted
// then.
func (c *Checker) Check(ctx context.Context, outs []outcome.Outcome) ([]error, error) {
	out := make([]error, len(outs))
	var missing []int // outcomes whose action is not in memory
	c.mu.Lock()
	for i := range outs {
		o := &outs[i]
		if p, ok := c.known[actionKey{o.PlanID, o.ActionID}]; ok {
			out[i] = verdict(o, p, true, false)
		} else {
			missing = append(missing, i)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	var plans []string
	seen := map[string]bool{}
	for _, i := range missing {
		if p := outs[i].PlanID; !seen[p] {
			seen[p] = true
			plans = append(plans, p)
		}
	}
	found, err := c.lookup(ctx, plans)
	if err != nil {
		return nil, err
	}
	// A plan without a single action may still be a plan (with no
	// action, every outcome of it is refused either way): ask plans, for
	// the reason.
	withActions := map[string]bool{}
	for k := range found {
		withActions[k.plan] = true
	}
	var empty []string
	for _, p := range plans {
		if !withActions[p] {
			empty = append(empty, p)
		}
	}
	var unknownPlans map[string]bool
	if len(empty) > 0 {
		if unknownPlans, err = c.unknownPlans(ctx, empty); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(c.known) == 0 && len(found) <= maxKnown:
		// The first plan read (a consumer's usual case: one plan's wave)
		// is kept as read, not copied. found is read under the lock from
		// here on, as c.known is.
		c.known = found
	default:
		if len(c.known)+len(found) > maxKnown {
			c.known = make(map[actionKey]planned, len(found))
		}
		for k, p := range found {
			c.known[k] = p
		}
	}
	for _, i := range missing {
		o := &outs[i]
		p, ok := found[actionKey{o.PlanID, o.ActionID}]
		out[i] = verdict(o, p, ok, unknownPlans[o.PlanID])
	}
	return out, nil
}

// verdict judges o against its planned action p (ok: there is one;
// unknownPlan: not even its plan exists).
func verdict(o *outcome.Outcome, p planned, ok, unknownPlan bool) error {
	switch {
	case !ok && unknownPlan:
		return consumer.Reject(ReasonUnknownPlan, fmt.Errorf("plan_id %q is not a plan (action_id %q)", o.PlanID, o.ActionID))
	case !ok:
		return consumer.Reject(ReasonUnknownAction, fmt.Errorf("action_id %q is not an action of plan %q", o.ActionID, o.PlanID))
	case p.host != o.HostID:
		return consumer.Reject(ReasonActionMismatch, fmt.Errorf("action %q of plan %q is for host_id %q, not %q", o.ActionID, o.PlanID, p.host, o.HostID))
	case p.pkg != o.Package:
		return consumer.Reject(ReasonActionMismatch, fmt.Errorf("action %q of plan %q upgrades package %q, not %q", o.ActionID, o.PlanID, p.pkg, o.Package))
	}
	return nil
}

// sqlActions reads every action of a set of plans (the IN subquery uses
// plan_actions' sorting key). Whole plans are read, not just the actions a
// batch names: a plan's outcomes keep arriving for days, and with the plan
// in memory every later batch is checked without a query.
const sqlActions = `SELECT plan_id, action_id, host_id, package FROM plan_actions
WHERE plan_id IN (SELECT arrayJoin(?))`

// sqlPlans reads which of a set of plan ids are plans.
const sqlPlans = `SELECT DISTINCT plan_id FROM plans WHERE plan_id IN (SELECT arrayJoin(?))`

// lookup reads every action of plans.
func (c *Checker) lookup(ctx context.Context, plans []string) (map[actionKey]planned, error) {
	rows, err := c.st.Query(ctx, sqlActions, plans)
	if err != nil {
		return nil, fmt.Errorf("read plan_actions of %d plans: %w", len(plans), err)
	}
	defer rows.Close()
	found := map[actionKey]planned{}
	for rows.Next() {
		var k actionKey
		var p planned
		if err := rows.Scan(&k.plan, &k.action, &p.host, &p.pkg); err != nil {
			return nil, fmt.Errorf("read plan_actions: %w", err)
		}
		found[k] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read plan_actions: %w", err)
	}
	return found, nil
}

func (c *Checker) unknownPlans(ctx context.Context, plans []string) (map[string]bool, error) {
	rows, err := c.st.Query(ctx, sqlPlans, plans)
	if err != nil {
		return nil, fmt.Errorf("read plans: %w", err)
	}
	defer rows.Close()
	unknown := make(map[string]bool, len(plans))
	for _, p := range plans {
		unknown[p] = true
	}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("read plans: %w", err)
		}
		delete(unknown, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read plans: %w", err)
	}
	return unknown, nil
}

// sink is the consumer.Sink of outcomes.
type sink struct{ checker *Checker }

func (sink) Table() string     { return Table }
func (sink) Columns() []string { return Columns }

func (sink) Decode(value []byte) (outcome.Outcome, error) { return outcome.Decode(value) }

func (s sink) Check(ctx context.Context, outs []outcome.Outcome) ([]error, error) {
	return s.checker.Check(ctx, outs)
}

func (sink) Rows(outs []outcome.Outcome, received time.Time) [][]any { return Rows(outs, received) }

// Run consumes outcomes (cfg.Topic, default patchgrid.outcomes; group
// default patchgrid-outcomes; dead-letter topic default the topic +
// ".dlq") into st until ctx is cancelled or, with cfg.Drain, the topic is
// drained. See consumer.RunSink for delivery and failure handling; the
// tables must exist (schemas.Migrate), else inserts wait as for a store
// being migrated.
func Run(ctx context.Context, cfg consumer.Config, st store.Store) (consumer.SinkStats, error) {
	if cfg.Topic == "" {
		cfg.Topic = outcome.Topic
	}
	if cfg.GroupID == "" {
		cfg.GroupID = DefaultGroupID
	}
	if st == nil {
		return consumer.SinkStats{}, errors.New("outcome ingest: no store")
	}
	return consumer.RunSink[outcome.Outcome](ctx, cfg, st, sink{checker: NewChecker(st)}, MetricsPrefix)
}
