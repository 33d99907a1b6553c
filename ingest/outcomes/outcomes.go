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
// naming it. Checks are made per group of outcomes (a chunk of the
// consumer's messages, a request of the API): one query reads the whole
// plans the group names that are not in memory yet; actions, immutable
// once planned, are remembered, so a steady stream of outcomes for one
// plan reads it once (an unknown action is looked up again every time,
// alone: the check never remembers a refusal).
package outcomes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
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

// planned is what an outcome must agree with.
type planned struct{ host, pkg string }

// maxKnown bounds the Checker's memory of planned actions (about 80 bytes
// each); past it the memory starts afresh, costing one query per plan
// until it fills again.
const maxKnown = 1 << 20

// Checker checks outcomes against plan_actions. It is safe for concurrent
// use (the consumer's decoders check their chunks at once, the API its
// requests).
//
// It remembers plans read whole, by plan then action id: an outcome's
// check is then a map lookup or two. An action missing from a plan in
// memory is looked up alone (a query for the missing ids, not the plan
// again), so a storm of outcomes naming actions that do not exist costs
// small queries. Two Checks missing the same plan read it once: the
// second waits for the first.
type Checker struct {
	st store.Store

	mu      sync.Mutex
	plans   map[string]map[string]planned // plan → action → planned; plans read whole, never written once here
	actions int                           // actions in plans
	loading map[string]chan struct{}      // plans being read whole, closed when done
}

// NewChecker returns a Checker reading st.
func NewChecker(st store.Store) *Checker {
	return &Checker{st: st, plans: map[string]map[string]planned{}, loading: map[string]chan struct{}{}}
}

// Check returns one error per outcome: nil when its plan and action exist
// and the action is for its host and package, else a *consumer.Rejection
// whose reason is ReasonUnknownPlan, ReasonUnknownAction or
// ReasonActionMismatch and whose error names the ids. Its own error means
// the store could not be asked (a retry can help); nothing is accepted
// then.
func (c *Checker) Check(ctx context.Context, outs []outcome.Outcome) ([]error, error) {
	out := make([]error, len(outs))
	// The maps of the plans outs name, taken under c.mu (usually one
	// plan); the lookups run outside it, in parallel with other Checks.
	inMemory := map[string]map[string]planned{}
	var read []string // plans to read whole
	var wait []chan struct{}
	// Plans read by another Check: wait for them, then look again.
	for pass := 0; ; pass++ {
		read, wait = read[:0], wait[:0]
		c.mu.Lock()
		for i := range outs {
			p := outs[i].PlanID
			if i > 0 && p == outs[i-1].PlanID {
				continue
			}
			if _, ok := inMemory[p]; ok || slices.Contains(read, p) {
				continue
			}
			if m, ok := c.plans[p]; ok {
				inMemory[p] = m
			} else if ch, busy := c.loading[p]; busy {
				if !slices.Contains(wait, ch) {
					wait = append(wait, ch)
				}
			} else {
				read = append(read, p)
			}
		}
		if len(wait) == 0 || pass > 0 {
			// Claim the plans to read (after one wait, a plan another
			// Check failed to read is read here).
			for _, p := range read {
				c.loading[p] = make(chan struct{})
			}
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		for _, ch := range wait {
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, fmt.Errorf("wait for plan_actions: %w", ctx.Err())
			}
		}
	}
	var missing []int // outcomes whose action is not in memory
	var acts map[string]planned
	for i := range outs {
		o := &outs[i]
		if i == 0 || o.PlanID != outs[i-1].PlanID {
			acts = inMemory[o.PlanID]
		}
		if p, ok := acts[o.ActionID]; ok {
			out[i] = verdict(o, p, true, false)
		} else {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	found, err := c.lookup(ctx, read, outs, missing)
	c.mu.Lock()
	for _, p := range read {
		if ch, ok := c.loading[p]; ok {
			close(ch)
			delete(c.loading, p)
		}
	}
	if err == nil {
		c.remember(read, found)
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	// A plan without a single action may still be a plan (with no
	// action, every outcome of it is refused either way): ask plans, for
	// the reason.
	var empty []string
	for _, i := range missing {
		p := outs[i].PlanID
		if _, known := inMemory[p]; !known && len(found[p]) == 0 && !slices.Contains(empty, p) {
			empty = append(empty, p)
		}
	}
	var unknownPlans map[string]bool
	if len(empty) > 0 {
		if unknownPlans, err = c.unknownPlans(ctx, empty); err != nil {
			return nil, err
		}
	}
	for _, i := range missing {
		o := &outs[i]
		p, ok := found[o.PlanID][o.ActionID]
		out[i] = verdict(o, p, ok, unknownPlans[o.PlanID])
	}
	return out, nil
}

// remember keeps the plans read whole that lookup found; c.mu is held.
// Actions found alone are not added to their plan's map: plans' maps are
// read without c.mu once stored, so they are never written again. (An
// action missing from a plan read whole is an anomaly: the plan was read
// while its actions were being stored.)
func (c *Checker) remember(read []string, found map[string]map[string]planned) {
	n := 0
	for _, p := range read {
		n += len(found[p])
	}
	if c.actions+n > maxKnown {
		c.plans, c.actions = map[string]map[string]planned{}, 0
	}
	for _, p := range read {
		if acts, ok := found[p]; ok && len(acts) <= maxKnown {
			// Kept as read, not copied: found is not written after this.
			c.plans[p] = acts
			c.actions += len(acts)
		}
	}
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

// sqlSomeActions reads some actions of a set of plans: those missing from
// plans in memory (the result may hold pairs that were not asked; they
// are true actions all the same).
const sqlSomeActions = `SELECT plan_id, action_id, host_id, package FROM plan_actions
WHERE plan_id IN (SELECT arrayJoin(?)) AND action_id IN (SELECT arrayJoin(?))`

// sqlPlans reads which of a set of plan ids are plans.
const sqlPlans = `SELECT DISTINCT plan_id FROM plans WHERE plan_id IN (SELECT arrayJoin(?))`

// lookup reads the actions of outs[missing]: every action of the plans
// read, and the missing actions of the other plans. The result maps plan
// → action → planned.
func (c *Checker) lookup(ctx context.Context, read []string, outs []outcome.Outcome, missing []int) (map[string]map[string]planned, error) {
	found := map[string]map[string]planned{}
	if len(read) > 0 {
		if err := c.readActions(ctx, found, sqlActions, read); err != nil {
			return nil, fmt.Errorf("read plan_actions of %d plans: %w", len(read), err)
		}
	}
	var plans, acts []string
	for _, i := range missing {
		o := &outs[i]
		if slices.Contains(read, o.PlanID) {
			continue
		}
		if !slices.Contains(plans, o.PlanID) {
			plans = append(plans, o.PlanID)
		}
		acts = append(acts, o.ActionID)
	}
	if len(acts) > 0 {
		if err := c.readActions(ctx, found, sqlSomeActions, plans, acts); err != nil {
			return nil, fmt.Errorf("read %d actions of %d plans from plan_actions: %w", len(acts), len(plans), err)
		}
	}
	return found, nil
}

// readActions adds the rows of query (plan_id, action_id, host_id,
// package) to found. On the embedded engine the result comes as one
// RowBinary document whose strings the maps slice, instead of a string
// allocated per value (a 100,000-action plan is read while every outcome
// of the consumer waits for it).
func (c *Checker) readActions(ctx context.Context, found map[string]map[string]planned, query string, args ...any) error {
	var g gathered
	if rq, ok := c.st.(store.RawQuerier); ok {
		var buf bytes.Buffer
		if _, err := rq.QueryRaw(ctx, &buf, "RowBinary", query, args...); err != nil {
			return err
		}
		doc := buf.String()
		var col [4]string
		for len(doc) > 0 {
			for i := range col {
				var err error
				if col[i], doc, err = store.CutRowBinaryString(doc); err != nil {
					return fmt.Errorf("decode result: %w", err)
				}
			}
			g.add(col[0], col[1], col[2], col[3])
		}
	} else {
		rows, err := c.st.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var plan, action, host, pkg string
		for rows.Next() {
			if err := rows.Scan(&plan, &action, &host, &pkg); err != nil {
				return err
			}
			g.add(plan, action, host, pkg)
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	g.into(found)
	return nil
}

// gathered collects a result's actions by plan, so that each plan's map is
// made at its size: growing a map of a 100,000-action plan row by row
// rehashes it again and again.
type gathered struct {
	byPlan   map[string][]plannedAction
	lastPlan string
	cur      []plannedAction
	lastPkg  string
}

type plannedAction struct {
	id string
	planned
}

func (g *gathered) add(plan, action, host, pkg string) {
	if g.byPlan == nil {
		g.byPlan = map[string][]plannedAction{}
	}
	if g.cur == nil || plan != g.lastPlan {
		if g.cur != nil {
			g.byPlan[g.lastPlan] = g.cur
		}
		g.cur, g.lastPlan = g.byPlan[plan], plan
	}
	// A plan's actions upgrade a few packages: one copy each.
	if pkg != g.lastPkg {
		g.lastPkg = pkg
	}
	g.cur = append(g.cur, plannedAction{action, planned{host, g.lastPkg}})
}

func (g *gathered) into(found map[string]map[string]planned) {
	if g.cur != nil {
		g.byPlan[g.lastPlan] = g.cur
	}
	for p, as := range g.byPlan {
		m := found[p]
		if m == nil {
			m = make(map[string]planned, len(as))
			found[p] = m
		}
		for _, a := range as {
			m[a.id] = a.planned
		}
	}
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
