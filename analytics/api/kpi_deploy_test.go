package api

import (
	"context"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
)

// TestDeployKPIs serves the deployment KPIs of one plan with one failed
// action (the numbers are worked out in analytics/kpi's deploy tests).
func TestDeployKPIs(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	at := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
	ins := func(table string, cols []string, row ...any) {
		t.Helper()
		if err := fx.st.Insert(ctx, table, cols, [][]any{row}); err != nil {
			t.Fatal(err)
		}
	}
	ins("plans", []string{"plan_id", "created_at"}, "P1", at)
	ins("plan_actions", []string{"plan_id", "action_id", "host_id", "package", "ring", "window_start", "status"}, "P1", "a1", "h1", "pkga", "prod", at, "scheduled")
	ins("outcomes", []string{"plan_id", "action_id", "attempt", "host_id", "package", "to_version", "status", "started_at", "finished_at", "error", "received_at"},
		"P1", "a1", uint32(1), "h1", "pkga", "2.0", "failed", at, at.Add(time.Minute), "exit status 100", at)
	kpitest.Refresh(t, fx.st)
	c := client{fx.server(t, Config{}), fx.secret[auth.Viewer]}

	list := c.getJSON(t, "/api/v1/kpis/deployments", 200)
	if len(list["kpis"].([]any)) != len(kpi.DeployKPIs()) {
		t.Errorf("list: %v", list)
	}
	rows := c.getJSON(t, "/api/v1/kpis/deployments/failures?dimension=ring&value=prod", 200)["rows"].([]any)
	if len(rows) != 1 {
		t.Fatalf("failures: %v", rows)
	}
	if r := rows[0].(map[string]any); r["deployments"] != 1.0 || r["failed"] != 1.0 || r["failure_rate_pct"] != 100.0 {
		t.Errorf("failures: %v", r)
	}
	plan := c.getJSON(t, "/api/v1/kpis/deployments/plans?value=P1", 200)["rows"].([]any)
	if len(plan) != 1 || plan[0].(map[string]any)["failed"] != 1.0 {
		t.Errorf("plans: %v", plan)
	}
	if r := c.getJSON(t, "/api/v1/kpis/deployments/test_pass?value=prod", 200)["rows"].([]any); len(r) != 1 || r[0].(map[string]any)["pass_rate_pct"] != 0.0 {
		t.Errorf("test_pass: %v", r)
	}
	c.getJSON(t, "/api/v1/kpis/deployments/nope", 404)
	c.getJSON(t, "/api/v1/kpis/deployments/failures?dimension=owner", 400)
	c.getJSON(t, "/api/v1/kpis/deployments/plans?dimension=all", 400)
	// The compliance KPIs are still served beside them.
	c.getJSON(t, "/api/v1/kpis/mttr", 200)
}
