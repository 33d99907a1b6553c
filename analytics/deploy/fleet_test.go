package deploy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/deploy"
	"github.com/patchgrid/patchgrid/analytics/deploy/deploytest"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// The generated fleet (the benchmark's) shows exactly the states its mix
// says, and the gates and holds that follow from them.
func TestSeededFleetOnCHDB(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	const n = 2000
	if err := deploytest.Seed(ctx, st, n, now); err != nil {
		t.Fatal(err)
	}
	r, err := deploy.Status(ctx, deploy.Config{Store: st, Audit: audit.New(st), Actor: "test", Now: now}, deploytest.PlanID, true)
	if err != nil {
		t.Fatal(err)
	}
	want := deploytest.Expected(n)
	for _, s := range deploy.States {
		if r.States[s] != want[string(s)] {
			t.Errorf("%s: %d actions, want %d", s, r.States[s], want[string(s)])
		}
	}
	// test ring (i % 10 = 0): 200 actions; successes: verified + unverified.
	g := r.Rings[1]
	if g.Ring != "pilot" || !g.Open || g.Prev.Successes == 0 {
		t.Errorf("pilot gate: %+v", g.Gate)
	}
	if len(r.Holds) != deploytest.HeldFixes(n) {
		t.Errorf("%d holds, want %d", len(r.Holds), deploytest.HeldFixes(n))
	}
	if len(r.Due.Actions) == 0 || r.Due.NotDue[deploy.NotDueHeld] == 0 {
		t.Errorf("due %d, not due %v", len(r.Due.Actions), r.Due.NotDue)
	}
}

// BenchmarkStatus: evaluating verification and gates of a 20,000-action
// plan (pgbench step verify runs 100,000).
func BenchmarkStatus(b *testing.B) {
	st := testenv.CHDBStore(b)
	kpitest.Migrate(b, st)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	if err := deploytest.Seed(ctx, st, 20000, now); err != nil {
		b.Fatal(err)
	}
	cfg := deploy.Config{Store: st, Audit: audit.New(st), Actor: "bench", Now: now}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := deploy.Status(ctx, cfg, deploytest.PlanID, false); err != nil {
			b.Fatal(err)
		}
	}
}

// On the 2018 server the migration is skipped (outcomes and plans need a
// current ClickHouse): plan status refuses, naming the server, instead
// of reporting gates over tables that do not exist.
func TestStatusRefusedOnOldServer(t *testing.T) {
	st := testenv.ServerStore(t)
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	_, err := deploy.Status(ctx, deploy.Config{Store: st, Audit: audit.New(st), Actor: "test"}, "", false)
	if err == nil || !strings.Contains(err.Error(), "older than 23.8") {
		t.Errorf("plan status on the 2018 server: %v", err)
	}
}
