package api

import (
	"context"
	"testing"

	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/analytics/plan"
)

func TestPlanRoutes(t *testing.T) {
	fx := newFixture(t)
	srv := fx.server(t, Config{})
	c := client{srv, fx.secret[auth.Viewer]}
	c.getJSON(t, "/api/v1/plans/current", 404)
	p, err := plan.Create(context.Background(), fx.st, plan.CreateOptions{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	list := c.getJSON(t, "/api/v1/plans", 200)["plans"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["plan_id"] != p.ID {
		t.Fatalf("plans %v", list)
	}
	one := c.getJSON(t, "/api/v1/plans/current", 200)
	if one["plan"].(map[string]any)["plan_id"] != p.ID || len(one["fixes"].([]any)) != 3 {
		t.Errorf("plan %v", one)
	}
	acts := c.getJSON(t, "/api/v1/plans/"+p.ID+"/actions?kev=true", 200)["actions"].([]any)
	// The KEV action is the plan's first (emergency first).
	if len(acts) != 1 || acts[0].(map[string]any)["rank"] != 1.0 {
		t.Errorf("KEV actions %v", acts)
	}
	if acts := c.getJSON(t, "/api/v1/plans/"+p.ID+"/actions?ring=prod&limit=1", 200)["actions"].([]any); len(acts) != 1 {
		t.Errorf("paged actions %v", acts)
	}
	c.getJSON(t, "/api/v1/plans/"+p.ID+"/actions?severity=bogus", 400)
	c.getJSON(t, "/api/v1/plans/PL-nope", 404)
	anon := client{srv, ""}
	if resp, _ := anon.get(t, "/api/v1/plans"); resp.StatusCode != 401 {
		t.Errorf("unauthenticated plans: %d", resp.StatusCode)
	}
}
