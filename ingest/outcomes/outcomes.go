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

// maxKnown bounds the Checker's memory of planned actions (about 70
// bytes each with ids of a dozen bytes); past it the memory starts
// afresh, costing one query per plan until it fills again.
const maxKnown = 1 << 20

// Checker checks outcomes against plan_actions. It is safe for concurrent
// use (the consumer's decoders check their chunks at once, the API its
// requests).
//
// It remembers plans read whole, each in a planIndex: an outcome's check
// is then a map lookup and a probe or two. An action missing from a plan
// in memory is looked up alone (a query for the missing ids, not the plan
// again), so a storm of outcomes naming actions that do not exist costs
// small queries. Two Checks missing the same plan read it once: the
// second waits for the first.
type Checker struct {
	st   store.Store
	hash func(string) uint64 // of the planIndexes' action ids

	mu      sync.Mutex
	plans   map[string]*planIndex    // plans read whole, never written once here
	actions int                      // actions in plans
	loading map[string]chan struct{} // plans being read whole, closed when done
}

// NewChecker returns a Checker reading st.
func NewChecker(st store.Store) *Checker {
	return &Checker{st: st, hash: newHash(), plans: map[string]*planIndex{}, loading: map[string]chan struct{}{}}
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
	inMemory := map[string]*planIndex{}
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
	var acts *planIndex
	for i := range outs {
		o := &outs[i]
		if i == 0 || o.PlanID != outs[i-1].PlanID {
			acts = inMemory[o.PlanID]
		}
		if p, ok := acts.get(o.ActionID); ok {
			out[i] = verdict(o, p, true, false)
		} else {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	found, err := c.lookup(ctx, read, outs, missing)
	c.loaded(read, found, err)
	if err != nil {
		return nil, err
	}
	// A plan without a single action may still be a plan (with no
	// action, every outcome of it is refused either way): ask plans, for
	// the reason.
	var empty []string
	for _, i := range missing {
		p := outs[i].PlanID
		if _, known := inMemory[p]; !known && found[p].len() == 0 && !slices.Contains(empty, p) {
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
		p, ok := found[o.PlanID].get(o.ActionID)
		out[i] = verdict(o, p, ok, unknownPlans[o.PlanID])
	}
	return out, nil
}

// loaded ends the reads of plans read whole that a Check or Warm
// claimed (c.loading): their waiters go on, and when the read succeeded
// the plans are remembered.
func (c *Checker) loaded(read []string, found map[string]*planIndex, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range read {
		if ch, ok := c.loading[p]; ok {
			close(ch)
			delete(c.loading, p)
		}
	}
	if err == nil {
		c.remember(read, found)
	}
}

// sqlRecentPlans lists the newest plans, newest first, with their sizes.
const sqlRecentPlans = `SELECT plan_id, max(actions) FROM plans
GROUP BY plan_id ORDER BY max(created_at) DESC, plan_id LIMIT 64`

// Warm reads whole the newest plans, as many as fill half the Checker's
// memory (maxKnown actions), before any outcome names them. Without it
// a consumer that starts holds its first batch until the plan its first
// outcomes name is read: every decoder waits on that read (0.1 s for a
// 200,000-action plan), which Warm does while the consumer joins its
// group and connects. A Check that needs a plan Warm is reading waits
// for it as for another Check's read; when Warm fails, the Check reads
// the plan itself, so a failed Warm costs time, never a verdict.
func (c *Checker) Warm(ctx context.Context) error {
	newest, err := c.newestPlans(ctx)
	if err != nil {
		return fmt.Errorf("warm the plan check: list plans: %w", err)
	}
	var read []string
	c.mu.Lock()
	for _, p := range newest {
		_, known := c.plans[p]
		_, busy := c.loading[p]
		if !known && !busy {
			c.loading[p] = make(chan struct{})
			read = append(read, p)
		}
	}
	c.mu.Unlock()
	if len(read) == 0 {
		return nil
	}
	found, err := c.lookup(ctx, read, nil, nil)
	c.loaded(read, found, err)
	if err != nil {
		return fmt.Errorf("warm the plan check: %w", err)
	}
	return nil
}

// newestPlans lists the newest plans, newest first, up to the first that
// would take the actions listed past half the Checker's memory.
func (c *Checker) newestPlans(ctx context.Context) ([]string, error) {
	rows, err := c.st.Query(ctx, sqlRecentPlans)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var newest []string
	total := uint64(0)
	for rows.Next() {
		var p string
		var n uint64
		if err := rows.Scan(&p, &n); err != nil {
			return nil, err
		}
		if total += n; total > maxKnown/2 {
			break
		}
		newest = append(newest, p)
	}
	return newest, rows.Err()
}

// remember keeps the plans read whole that lookup found; c.mu is held.
// Actions found alone are not added to their plan's map: plans' maps are
// read without c.mu once stored, so they are never written again. (An
// action missing from a plan read whole is an anomaly: the plan was read
// while its actions were being stored.)
func (c *Checker) remember(read []string, found map[string]*planIndex) {
	n := 0
	for _, p := range read {
		n += found[p].len()
	}
	if c.actions+n > maxKnown {
		c.plans, c.actions = map[string]*planIndex{}, 0
	}
	for _, p := range read {
		if acts, ok := found[p]; ok && acts.len() <= maxKnown {
			// Kept as read, not copied: found is not written after this.
			c.plans[p] = acts
			c.actions += acts.len()
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
// read, and the missing actions of the other plans, by plan.
func (c *Checker) lookup(ctx context.Context, read []string, outs []outcome.Outcome, missing []int) (map[string]*planIndex, error) {
	found := map[string]*planIndex{}
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
// RowBinary document whose strings go to the indexes, instead of a string
// allocated per value (a 200,000-action plan is read while every outcome
// of the consumer waits for it).
func (c *Checker) readActions(ctx context.Context, found map[string]*planIndex, query string, args ...any) error {
	if rq, ok := c.st.(store.RawQuerier); ok {
		var buf bytes.Buffer
		if _, err := rq.QueryRaw(ctx, &buf, "RowBinary", query, args...); err != nil {
			return err
		}
		doc := buf.String()
		return addActions(found, c.hash, func(yield func(plan, action, host, pkg string)) error {
			var col [4]string
			for rest := doc; len(rest) > 0; {
				for i := range col {
					var err error
					if col[i], rest, err = store.CutRowBinaryString(rest); err != nil {
						return fmt.Errorf("decode result: %w", err)
					}
				}
				yield(col[0], col[1], col[2], col[3])
			}
			return nil
		})
	}
	rows, err := c.st.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var all [][4]string
	for rows.Next() {
		var r [4]string
		if err := rows.Scan(&r[0], &r[1], &r[2], &r[3]); err != nil {
			return err
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return addActions(found, c.hash, func(yield func(plan, action, host, pkg string)) error {
		for _, r := range all {
			yield(r[0], r[1], r[2], r[3])
		}
		return nil
	})
}

// addActions adds the actions each yields to found, by plan, in indexes
// made with hash; a plan's actions come from one query (lookup's two
// queries read disjoint plans). each is walked twice: first to size each
// plan's index, so that the second walk fills it without growing it (a
// 200,000-action index grown row by row is copied again and again, and
// the check of every outcome waits for it).
func addActions(found map[string]*planIndex, hash func(string) uint64, each func(yield func(plan, action, host, pkg string)) error) error {
	type size struct{ actions, bytes int }
	sizes := map[string]*size{}
	var cur *size
	last := ""
	if err := each(func(plan, action, host, pkg string) {
		// Rows come by plan: one map lookup per run of a plan's rows.
		if cur == nil || plan != last {
			if cur = sizes[plan]; cur == nil {
				cur = &size{}
				sizes[plan] = cur
			}
			last = plan
		}
		cur.actions++
		cur.bytes += len(action) + len(host) + len(pkg)
	}); err != nil {
		return err
	}
	builders := make(map[string]*planIndexBuilder, len(sizes))
	for p, n := range sizes {
		builders[p] = newPlanIndexBuilder(n.actions, n.bytes, hash)
	}
	var b *planIndexBuilder
	var err error
	last = ""
	if werr := each(func(plan, action, host, pkg string) {
		if err != nil {
			return
		}
		if b == nil || plan != last {
			b, last = builders[plan], plan
		}
		if err = b.add(action, host, pkg); err != nil {
			err = fmt.Errorf("index plan %q: %w", plan, err)
		}
	}); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	for p, b := range builders {
		found[p] = b.index()
	}
	return nil
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

func (sink) NewDecoder() func([]byte) (outcome.Outcome, error) { return new(outcome.Decoder).Decode }

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
	checker := NewChecker(st)
	// The newest plans are read while the consumer joins its group; the
	// read ends with Run.
	warmCtx, stopWarm := context.WithCancel(ctx)
	var warming sync.WaitGroup
	defer warming.Wait()
	defer stopWarm()
	warming.Go(func() {
		if err := checker.Warm(warmCtx); err != nil && warmCtx.Err() == nil && cfg.Logger != nil {
			cfg.Logger.Warn("the plan check reads plans as outcomes name them", "err", err)
		}
	})
	return consumer.RunSink[outcome.Outcome](ctx, cfg, st, sink{checker: checker}, MetricsPrefix)
}
