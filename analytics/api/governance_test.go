package api

import (
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/analytics/auth"
)

// TestGovernanceRoutes: exceptions through the API take the requester and
// approver from the caller's token (four eyes between tokens), roles gate
// each step, and SQL is read-only and needs an analyst.
func TestGovernanceRoutes(t *testing.T) {
	fx := newFixture(t)
	srv := fx.server(t, Config{})
	viewer, analyst, approver := client{srv, fx.secret[auth.Viewer]}, client{srv, fx.secret[auth.Analyst]}, client{srv, fx.secret[auth.Approver]}

	req := `{"advisory":"CVE-2024-0002","host":"h2","owner":"bob","reason":"appliance","expires_days":10}`
	viewer.json(t, "POST", "/api/v1/exceptions", strings.NewReader(req), 403)
	ex := analyst.json(t, "POST", "/api/v1/exceptions", strings.NewReader(req), 201)
	id, _ := ex["exception_id"].(string)
	if ex["requester"] != "analyst-test" || id == "" {
		t.Fatalf("created: %v", ex)
	}
	analyst.json(t, "POST", "/api/v1/exceptions", strings.NewReader(`{"advisory":"X","host":"h","owner":"o","reason":"r","expires_days":400}`), 422)
	analyst.json(t, "POST", "/api/v1/exceptions", strings.NewReader(`{"advisory":"X","requester":"mallory"}`), 400)
	analyst.json(t, "POST", "/api/v1/exceptions/"+id+"/approve", nil, 403) // an analyst cannot decide
	got := approver.json(t, "POST", "/api/v1/exceptions/"+id+"/approve", nil, 200)
	if got["status"] != "approved" || got["approver"] != "approver-test" {
		t.Fatalf("approved: %v", got)
	}
	approver.json(t, "GET", "/api/v1/exceptions/EX-000000000000", nil, 404)
	list := viewer.getJSON(t, "/api/v1/exceptions?status=approved", 200)
	if l, _ := list["exceptions"].([]any); len(l) != 1 {
		t.Fatalf("list: %v", list)
	}

	// The approver's own request cannot be approved by the same token.
	own := approver.json(t, "POST", "/api/v1/exceptions", strings.NewReader(req), 201)
	if r := approver.json(t, "POST", "/api/v1/exceptions/"+own["exception_id"].(string)+"/approve", nil, 422); !strings.Contains(r["error"].(string), "four eyes") {
		t.Fatalf("self-approval: %v", r)
	}

	viewer.json(t, "POST", "/api/v1/sql", strings.NewReader(`{"query":"SELECT 1"}`), 403)
	res := analyst.json(t, "POST", "/api/v1/sql", strings.NewReader(`{"query":"SELECT action FROM audit_log ORDER BY seq"}`), 200)
	rows, _ := res["rows"].([]any)
	if len(rows) < 3 {
		t.Fatalf("audit entries through sql: %v", res)
	}
	analyst.json(t, "POST", "/api/v1/sql", strings.NewReader(`{"query":"TRUNCATE TABLE audit_log"}`), 400)
}
