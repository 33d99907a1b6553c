package plugin

import (
	"context"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestPlanQuery(t *testing.T) {
	if _, err := ParseQuery(TypePlan, []byte(`{"planView": "bogus"}`)); err == nil {
		t.Errorf("bogus plan view accepted")
	}
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	kpitest.Seed(t, st)
	ctx := context.Background()
	run := func(raw string) (int, int) {
		t.Helper()
		q, err := ParseQuery(TypePlan, []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		fr, err := runPlan(ctx, st, q, []byte(raw), backend.TimeRange{})
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		return len(fr.Fields), fr.Rows()
	}
	if _, rows := run(`{}`); rows != 0 {
		t.Errorf("no plan yet: %d rows", rows)
	}
	if _, err := plan.Create(ctx, st, plan.CreateOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if cols, rows := run(`{"planView": "waves"}`); cols != 8 || rows != 1 {
		t.Errorf("waves: %d columns, %d rows", cols, rows)
	}
	if _, rows := run(`{"planView": "fixes"}`); rows != 3 {
		t.Errorf("fixes: %d rows", rows)
	}
	if _, rows := run(`{"planView": "actions", "kev": "true"}`); rows != 1 {
		t.Errorf("KEV actions: %d rows", rows)
	}
}
