package deploy

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/deploy/deploytest"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// The due list from candidates the store classified by window (the ones
// outside it sent as counts) equals the due list from every candidate
// read whole, at evaluation times before, inside, at the edges of and
// after the windows, with unscheduled actions, closed gates, holds and
// failed retries in the mix (the seeded fleet), and so do the ring tallies.
func TestClassifiedCandidatesAgree(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	if err := deploytest.Seed(ctx, st, 2000, now); err != nil {
		t.Fatal(err)
	}
	// The fleet's windows all opened 48 h ago; add actions that are
	// unscheduled, and actions whose windows open a day from now and
	// last an hour, beside them, each set upgrading one package (neither
	// is held after the fleet's rollbacks), so that the store counts
	// many actions in a row.
	later := now.Add(24 * time.Hour)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO plan_actions SELECT * REPLACE (concat(action_id, '-u') AS action_id, rank + 100000 AS rank, ? AS status, 'pkg-4' AS package)
			FROM plan_actions WHERE plan_id = ? AND rank % 7 = 0`, []any{plan.Unscheduled, deploytest.PlanID}},
		{`INSERT INTO plan_actions SELECT * REPLACE (concat(action_id, '-l') AS action_id, rank + 200000 AS rank,
				? AS window_start, ? AS window_end, 'pkg-1' AS package)
			FROM plan_actions WHERE plan_id = ? AND rank % 5 = 0 AND status != ?`,
			[]any{later, later.Add(time.Hour), deploytest.PlanID, plan.Unscheduled}},
	} {
		if err := st.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := plan.Get(ctx, st, deploytest.PlanID)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := PolicyOf(ctx, st, sum.PolicyVersion)
	if err != nil {
		t.Fatal(err)
	}
	// The fleet's rollbacks hold their fixes once a status evaluation
	// records them.
	if _, err := SyncHolds(ctx, Config{Store: st, Audit: audit.New(st), Actor: "test", Now: now}); err != nil {
		t.Fatal(err)
	}
	holds, err := Holds(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(holds) == 0 {
		t.Fatal("the fleet holds no fix: the holds are not tested")
	}
	reasons := map[string]bool{}
	for _, at := range []time.Time{
		now.Add(-72 * time.Hour), now.Add(-48*time.Hour - time.Second), now.Add(-48 * time.Hour), now,
		now.Add(24*time.Hour - 500*time.Millisecond), now.Add(24*time.Hour + 30*time.Minute), now.Add(25 * time.Hour),
		now.Add(25*time.Hour + 700*time.Millisecond), now.Add(10 * 24 * time.Hour),
	} {
		due := func(classify bool) (*tally, *DueList, int) {
			t.Helper()
			tl, cands, err := readActions(ctx, st, deploytest.PlanID, at, classify)
			if err != nil {
				t.Fatal(err)
			}
			return tl, dueList(at, pol, Gates(pol, tl.stats, at), holds, cands, nil), len(cands)
		}
		tWhole, whole, nWhole := due(false)
		tClass, classified, nClass := due(true)
		if !reflect.DeepEqual(tWhole, tClass) {
			t.Errorf("at %s: tallies differ:\nwhole      %+v\nclassified %+v", at, tWhole, tClass)
		}
		if !reflect.DeepEqual(whole, classified) {
			t.Errorf("at %s: due lists differ: whole %d due, not due %v; classified %d due, not due %v",
				at, len(whole.Actions), whole.NotDue, len(classified.Actions), classified.NotDue)
		}
		if nClass >= nWhole {
			t.Errorf("at %s: %d candidate rows classified, %d whole: nothing was counted in the store", at, nClass, nWhole)
		}
		for r := range whole.NotDue {
			reasons[r] = true
		}
		if len(whole.Actions) > 0 {
			reasons["due"] = true
		}
	}
	for _, r := range []string{"due", NotDueGate, NotDueHeld, NotDueUnsched, NotDueWindow, NotDueEnded} {
		if !reasons[r] {
			t.Errorf("no evaluation time gave %q: that case is not compared (reasons seen: %v)", r, reasons)
		}
	}
}
