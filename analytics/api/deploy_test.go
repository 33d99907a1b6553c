package api

import (
	"context"
	"testing"

	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/analytics/plan"
)

// GET /api/v1/plans/{id}/status: each ring's gate with the numbers, the
// holds, ?due=true what may run now; the first evaluation is recorded in
// the caller's name.
func TestPlanStatusRoute(t *testing.T) {
	fx := newFixture(t)
	srv := fx.server(t, Config{})
	c := client{srv, fx.secret[auth.Viewer]}
	c.getJSON(t, "/api/v1/plans/current/status", 404)
	p, err := plan.Create(context.Background(), fx.st, plan.CreateOptions{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	st := c.getJSON(t, "/api/v1/plans/current/status?due=true", 200)
	if st["plan"].(map[string]any)["plan_id"] != p.ID {
		t.Errorf("status of %v, want %s", st["plan"], p.ID)
	}
	rings := st["rings"].([]any)
	if len(rings) != 1 || rings[0].(map[string]any)["open"] != true {
		t.Errorf("rings under the built-in policy (one ring, open): %v", rings)
	}
	due := st["due"].(map[string]any)["actions"].([]any)
	if uint64(len(due)) != p.Actions {
		t.Errorf("%d actions due, want all %d (one ring, any time)", len(due), p.Actions)
	}
	if _, ok := c.getJSON(t, "/api/v1/plans/"+p.ID+"/status", 200)["due"]; ok {
		t.Error("due listed without ?due=true")
	}
	c.getJSON(t, "/api/v1/plans/"+p.ID+"/status?due=maybe", 400)
	c.getJSON(t, "/api/v1/plans/PL-nope/status", 404)
	rows, err := fx.st.Query(context.Background(), "SELECT decided_by FROM gate_decisions WHERE plan_id = ?", p.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var by string
		if err := rows.Scan(&by); err != nil {
			t.Fatal(err)
		}
		if by[:4] != "api:" {
			t.Errorf("gate decision by %q, want the caller's token", by)
		}
		n++
	}
	if n != 1 {
		t.Errorf("%d gate decisions recorded, want 1 (evaluated three times, unchanged)", n)
	}
	if resp, _ := (client{srv, ""}).get(t, "/api/v1/plans/"+p.ID+"/status"); resp.StatusCode != 401 {
		t.Errorf("unauthenticated status: %d", resp.StatusCode)
	}
}
