package plugin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// TestDeployments reads the deployment KPIs of a plan whose outcomes span
// two weeks and two rings: as a table, and as weekly series per ring.
func TestDeployments(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	kpitest.Seed(t, st)
	ctx := context.Background()
	// Mondays three and two weeks ago.
	d := time.Now().UTC().AddDate(0, 0, -21).Truncate(24 * time.Hour)
	w1 := d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
	w2 := w1.AddDate(0, 0, 7)
	ins := func(table string, cols []string, rows ...[]any) {
		t.Helper()
		if err := st.Insert(ctx, table, cols, rows); err != nil {
			t.Fatal(err)
		}
	}
	ins("plans", []string{"plan_id", "created_at"}, []any{"P1", w1})
	cols := []string{"plan_id", "action_id", "host_id", "package", "ring", "window_start", "status"}
	ins("plan_actions", cols, []any{"P1", "a1", "h1", "pkga", "test", w1, "scheduled"}, []any{"P1", "a2", "h2", "pkga", "test", w1, "scheduled"},
		[]any{"P1", "a3", "h3", "pkga", "prod", w1, "scheduled"})
	out := func(action, host, status string, at time.Time, msg string) []any {
		return []any{"P1", action, uint32(1), host, "pkga", "2.0", status, at, at.Add(time.Minute), msg, at}
	}
	ins("outcomes", []string{"plan_id", "action_id", "attempt", "host_id", "package", "to_version", "status", "started_at", "finished_at", "error", "received_at"},
		out("a1", "h1", "succeeded", w1.Add(time.Hour), ""), out("a2", "h2", "rolled_back", w1.Add(2*time.Hour), "health check"),
		out("a3", "h3", "succeeded", w2.Add(time.Hour), ""))
	kpitest.Refresh(t, st)
	ds := NewWithStore(st, quiet)
	defer ds.Dispose()
	tr := backend.TimeRange{From: w1.AddDate(0, 0, -30), To: time.Now()}

	f := frameOf(t, queryOne(t, ds, `{"queryType":"deployments","deployKpi":"failures","dimension":"ring"}`, tr))
	if f.Meta.Type != data.FrameTypeTable || !strings.Contains(f.Meta.ExecutedQueryString, "kpi_deploy_failures") || f.Rows() != 2 {
		t.Fatalf("failures by ring: %d rows, meta %+v", f.Rows(), f.Meta)
	}
	if got := number(t, cell(t, f, map[string]string{"dim_value": "test"}, "rollback_rate_pct")); got != 50 {
		t.Errorf("test ring rollback rate %v, want 50", got)
	}

	// Weekly series: test has a point in week 1 only, prod in week 2 only.
	f = frameOf(t, queryOne(t, ds, `{"queryType":"deployments","deployKpi":"failures","dimension":"ring","metric":"failure_rate_pct"}`, tr))
	if f.Meta.Type != data.FrameTypeTimeSeriesWide || f.Rows() != 2 || len(f.Fields) != 3 {
		t.Fatalf("weekly series: %d rows × %d fields, meta %+v", f.Rows(), len(f.Fields), f.Meta)
	}
	if !f.Fields[0].At(0).(time.Time).Equal(w1) || !f.Fields[0].At(1).(time.Time).Equal(w2) {
		t.Errorf("weeks %v, %v; want %v, %v", f.Fields[0].At(0), f.Fields[0].At(1), w1, w2)
	}
	for _, fl := range f.Fields[1:] {
		want := map[string][2]*float64{"test": {ptr(50), nil}, "prod": {nil, ptr(0)}}[fl.Labels["dim_value"]]
		for i := range 2 {
			got, _ := fl.NullableFloatAt(i)
			if (got == nil) != (want[i] == nil) || got != nil && *got != *want[i] {
				t.Errorf("%s week %d: %v, want %v", fl.Labels["dim_value"], i+1, deref(got), deref(want[i]))
			}
		}
	}
	// A range that ends before week 2 leaves week 1 only.
	f = frameOf(t, queryOne(t, ds, `{"queryType":"deployments","deployKpi":"failures","dimension":"all","metric":"deployments"}`,
		backend.TimeRange{From: w1, To: w2.Add(-time.Hour)}))
	if f.Rows() != 1 {
		t.Errorf("week 1 only: %d rows", f.Rows())
	}

	f = frameOf(t, queryOne(t, ds, `{"queryType":"deployments","deployKpi":"plans","value":"P1"}`, tr))
	if got := number(t, cell(t, f, map[string]string{"plan_id": "P1"}, "rolled_back")); got != 1 {
		t.Errorf("plan P1 rolled back %v, want 1", got)
	}

	for _, bad := range []string{
		`{"queryType":"deployments","deployKpi":"nope"}`,
		`{"queryType":"deployments","deployKpi":"plans","dimension":"all"}`,
		`{"queryType":"deployments","deployKpi":"failures","dimension":"owner"}`,
		`{"queryType":"deployments","deployKpi":"test_pass","metric":"pass_rate_pct"}`,
		`{"queryType":"deployments","deployKpi":"failures","metric":"dim_value"}`,
	} {
		if _, err := ParseQuery("", []byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func ptr(v float64) *float64 { return &v }
