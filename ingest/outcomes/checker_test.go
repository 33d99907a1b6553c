package outcomes_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/ingest/outcomes"
	"github.com/patchgrid/patchgrid/schemas/outcome"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// countingStore counts the reads of plan_actions: whole plans, and single
// actions (the query naming action ids). It keeps the embedded engine's
// RawQuerier.
type countingStore struct {
	store.Store
	wholePlans, someActions atomic.Int64
}

func (s *countingStore) count(q string) {
	switch {
	case !strings.Contains(q, "FROM plan_actions"):
	case strings.Contains(q, "action_id IN"):
		s.someActions.Add(1)
	default:
		s.wholePlans.Add(1)
	}
}

func (s *countingStore) Query(ctx context.Context, q string, args ...any) (store.Rows, error) {
	s.count(q)
	return s.Store.Query(ctx, q, args...)
}

func (s *countingStore) QueryRaw(ctx context.Context, w io.Writer, format, q string, args ...any) (int64, error) {
	s.count(q)
	return s.Store.(store.RawQuerier).QueryRaw(ctx, w, format, q, args...)
}

// queryOnly hides the embedded engine's RawQuerier, as the server backend
// lacks it: the Checker reads rows one by one instead.
type queryOnly struct{ store.Store }

// counted wraps st in a countingStore, read the way backend names: "raw"
// (the embedded engine's RowBinary document) or "rows" (one by one, as
// from the server).
func counted(st store.Store, backend string) (*countingStore, store.Store) {
	cs := &countingStore{Store: st}
	if backend == "rows" {
		return cs, queryOnly{cs} // counted, still without QueryRaw
	}
	return cs, cs
}

// TestCheckerVerdicts: each verdict, through both ways of reading
// plan_actions, with the plan read whole once and an unknown action looked
// up alone every time, never remembered (it is found once it is planned).
func TestCheckerVerdicts(t *testing.T) {
	st := testenv.CHDBStore(t)
	migrate(t, st)
	f := newFixture("plan-check", 6)
	f.seed(t, st)
	// A plan without a single action.
	if err := st.Insert(context.Background(), "plans", []string{"plan_id", "created_at", "actions"},
		[][]any{{"plan-empty", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), uint64(0)}}); err != nil {
		t.Fatal(err)
	}
	ok := f.outcomes[1] // plan-check-a0001 on host-0001, openssl
	with := func(edit func(o *outcome.Outcome)) outcome.Outcome {
		o := ok
		edit(&o)
		return o
	}
	cases := []struct {
		name    string
		o       outcome.Outcome
		reason  string // "" accepted
		mention string
	}{
		{"planned", ok, "", ""},
		{"unknown plan", with(func(o *outcome.Outcome) { o.PlanID = "plan-nope" }), outcomes.ReasonUnknownPlan, `"plan-nope"`},
		{"plan without actions", with(func(o *outcome.Outcome) { o.PlanID = "plan-empty" }), outcomes.ReasonUnknownAction, `"plan-empty"`},
		{"unknown action", with(func(o *outcome.Outcome) { o.ActionID = "plan-check-a9999" }), outcomes.ReasonUnknownAction, `"plan-check-a9999"`},
		{"other host", with(func(o *outcome.Outcome) { o.HostID = "host-evil" }), outcomes.ReasonActionMismatch, `"host-evil"`},
		{"other package", with(func(o *outcome.Outcome) { o.Package = "bash" }), outcomes.ReasonActionMismatch, `"bash"`},
	}
	outs := make([]outcome.Outcome, len(cases))
	for i, c := range cases {
		outs[i] = c.o
	}
	ctx := context.Background()
	for _, backend := range []string{"raw", "rows"} {
		t.Run(backend, func(t *testing.T) {
			cs, checked := counted(st, backend)
			c := outcomes.NewChecker(checked)
			for round := range 2 {
				verdicts, err := c.Check(ctx, outs)
				if err != nil {
					t.Fatal(err)
				}
				for i, cse := range cases {
					v := verdicts[i]
					var rej *consumer.Rejection
					switch {
					case cse.reason == "" && v != nil:
						t.Errorf("round %d, %s: refused: %v", round, cse.name, v)
					case cse.reason == "":
					case !errors.As(v, &rej) || rej.Reason != cse.reason:
						t.Errorf("round %d, %s: verdict %v, want reason %s", round, cse.name, v, cse.reason)
					case !strings.Contains(v.Error(), cse.mention):
						t.Errorf("round %d, %s: %q does not name %s", round, cse.name, v, cse.mention)
					}
				}
			}
			// plan-check is read whole once; plan-nope and plan-empty,
			// not plans with actions, are read whole every time; the
			// unknown action of plan-check alone in the second round.
			if w, s := cs.wholePlans.Load(), cs.someActions.Load(); w != 2 || s != 1 {
				t.Errorf("plan_actions read %d times whole and %d times for single actions, want 2 and 1", w, s)
			}
		})
	}

	// An action planned after its plan was read is found alone.
	c := outcomes.NewChecker(st)
	if _, err := c.Check(ctx, outs[:1]); err != nil {
		t.Fatal(err)
	}
	late := with(func(o *outcome.Outcome) { o.ActionID, o.HostID = "plan-check-late", "host-late" })
	verdicts, err := c.Check(ctx, []outcome.Outcome{late})
	if err != nil || verdicts[0] == nil {
		t.Fatalf("unplanned action: verdict %v, err %v; want a refusal", verdicts, err)
	}
	if err := st.Insert(ctx, "plan_actions", []string{"plan_id", "action_id", "rank", "host_id", "package"},
		[][]any{{late.PlanID, late.ActionID, uint32(99), late.HostID, late.Package}}); err != nil {
		t.Fatal(err)
	}
	if verdicts, err := c.Check(ctx, []outcome.Outcome{late}); err != nil || verdicts[0] != nil {
		t.Errorf("action planned late: verdict %v, err %v; want it accepted", verdicts, err)
	}
}

// TestCheckerReadsPlanOnce: chunks of one plan checked at once (the
// consumer's decoders) read the plan whole once; the others wait for it.
func TestCheckerReadsPlanOnce(t *testing.T) {
	st := testenv.CHDBStore(t)
	migrate(t, st)
	f := newFixture("plan-once", 4000)
	f.seed(t, st)
	cs := &countingStore{Store: st}
	c := outcomes.NewChecker(cs)
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	chunk := (len(f.outcomes) + workers - 1) / workers
	for w := range workers {
		part := f.outcomes[w*chunk : min((w+1)*chunk, len(f.outcomes))]
		wg.Go(func() {
			verdicts, err := c.Check(context.Background(), part)
			if err != nil {
				errs <- err
				return
			}
			for _, v := range verdicts {
				if v != nil {
					errs <- v
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if w, s := cs.wholePlans.Load(), cs.someActions.Load(); w != 1 || s != 0 {
		t.Errorf("plan_actions read %d times whole and %d times for single actions, want once whole", w, s)
	}
}

// failingReads fails the first n reads of plan_actions, as a store being
// restarted would (it hides the RawQuerier: rows are read one by one).
type failingReads struct {
	store.Store
	n, failed atomic.Int64
}

func (s *failingReads) Query(ctx context.Context, q string, args ...any) (store.Rows, error) {
	if strings.Contains(q, "FROM plan_actions") && s.failed.Load() < s.n.Load() {
		s.failed.Add(1)
		return nil, errors.New("connection refused (test)")
	}
	return s.Store.Query(ctx, q, args...)
}

// TestCheckFailureRetried: when the plan check cannot ask the store, the
// decoders leave their chunks unchecked and the inserter checks them,
// retrying until the store answers: every outcome loads once, none is
// dead-lettered, no row loads unchecked.
func TestCheckFailureRetried(t *testing.T) {
	broker := testenv.Kafka(t)
	st := testenv.CHDBStore(t)
	migrate(t, st)
	f := newFixture("plan-flaky", 40)
	f.seed(t, st)
	topic := newTopic(t, broker, 2)
	produce(t, broker, topic, encode(t, f.outcomes))
	fs := &failingReads{Store: st}
	fs.n.Store(4)
	stats := drain(t, broker, topic, fs, metrics.NewSet())
	if got, want := readLoaded(t, st), f.expectLoaded(); got != want {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	if stats.DeadLettered != 0 || stats.Rows != int64(len(f.outcomes)) {
		t.Errorf("stats %+v: want %d rows, none dead-lettered", stats, len(f.outcomes))
	}
	if fs.failed.Load() != 4 {
		t.Errorf("%d reads of plan_actions failed, want 4", fs.failed.Load())
	}
}

// TestCheckerWarm: Warm reads whole the newest plans that fit in half the
// Checker's memory, newest first, and stops at the first that does not
// fit; their outcomes are then checked without a read, through both ways
// of reading plan_actions. A Check racing Warm for a plan reads it once
// between them; a Warm that fails leaves the Check to read the plan.
func TestCheckerWarm(t *testing.T) {
	st := testenv.CHDBStore(t)
	migrate(t, st)
	ctx := context.Background()
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	oldest, newest := newFixture("warm-old", 5), newFixture("warm-new", 7)
	oldest.seed(t, st)
	newest.seed(t, st)
	// Between them in time, a plan too big to keep in memory (its actions
	// are not stored: only its size in plans matters here).
	if err := st.Insert(ctx, "plans", []string{"plan_id", "created_at", "actions"}, [][]any{
		{"warm-old", day(20), uint64(5)}, {"warm-huge", day(21), uint64(600000)}, {"warm-new", day(22), uint64(7)},
	}); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, c *outcomes.Checker, outs []outcome.Outcome) {
		t.Helper()
		verdicts, err := c.Check(ctx, outs)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range verdicts {
			if v != nil {
				t.Errorf("outcome %d of %s refused: %v", i, outs[i].PlanID, v)
			}
		}
	}
	for _, backend := range []string{"raw", "rows"} {
		t.Run(backend, func(t *testing.T) {
			cs, checked := counted(st, backend)
			c := outcomes.NewChecker(checked)
			if err := c.Warm(ctx); err != nil {
				t.Fatal(err)
			}
			if w := cs.wholePlans.Load(); w != 1 {
				t.Fatalf("Warm read plan_actions %d times whole, want once", w)
			}
			check(t, c, newest.outcomes)
			if w, s := cs.wholePlans.Load(), cs.someActions.Load(); w != 1 || s != 0 {
				t.Errorf("after checking the newest plan's outcomes: plan_actions read %d times whole and %d times for single actions, want 1 and 0", w, s)
			}
			// The oldest plan was not warmed: the huge one stopped Warm.
			check(t, c, oldest.outcomes)
			if w := cs.wholePlans.Load(); w != 2 {
				t.Errorf("after checking the oldest plan's outcomes: plan_actions read %d times whole, want 2", w)
			}
		})
	}

	t.Run("racing a Check", func(t *testing.T) {
		for range 20 {
			cs := &countingStore{Store: st}
			c := outcomes.NewChecker(cs)
			var wg sync.WaitGroup
			wg.Go(func() {
				if err := c.Warm(ctx); err != nil {
					t.Error(err)
				}
			})
			check(t, c, newest.outcomes)
			wg.Wait()
			if w := cs.wholePlans.Load(); w != 1 {
				t.Fatalf("Warm and a Check of the same plan read it %d times whole, want once", w)
			}
		}
	})

	t.Run("failed", func(t *testing.T) {
		fs := &failingReads{Store: st}
		fs.n.Store(1)
		c := outcomes.NewChecker(fs)
		if err := c.Warm(ctx); err == nil || !strings.Contains(err.Error(), "warm the plan check") {
			t.Fatalf("Warm with plan_actions unreadable: err %v, want it named", err)
		}
		check(t, c, newest.outcomes)
	})
}
