package api

import (
	"testing"

	"github.com/patchgrid/patchgrid/analytics/auth"
)

// TestPostureAPI reads /api/v1/posture on kpitest's fleet (the numbers are
// worked by hand in analytics/compliance/frameworks' TestPostureHandWorked).
func TestPostureAPI(t *testing.T) {
	fx := newFixture(t)
	srv := fx.server(t, Config{})
	c := client{srv, fx.secret[auth.Viewer]}

	m := c.getJSON(t, "/api/v1/posture", 200)
	if fws, _ := m["frameworks"].([]any); len(fws) != 3 {
		t.Fatalf("frameworks: %v", m["frameworks"])
	}
	compliant := map[string]float64{}
	for _, r := range m["posture"].([]any) {
		row := r.(map[string]any)
		compliant[row["framework"].(string)] = row["compliant_hosts"].(float64)
	}
	if compliant["internal-sla"] != 3 || compliant["cisa-bod-22-01"] != 3 || compliant["pci-dss-6.3.3"] != 2 {
		t.Errorf("compliant hosts: %v", compliant)
	}
	if tr, _ := m["trend"].([]any); len(tr) != 6 {
		t.Errorf("trend: %d rows, want 6: %v", len(tr), tr)
	}

	m = c.getJSON(t, "/api/v1/posture?framework=pci-dss-6.3.3&dimension=ring&value=test", 200)
	rows := m["posture"].([]any)
	if len(rows) != 1 || rows[0].(map[string]any)["overdue"] != 1.0 || len(m["frameworks"].([]any)) != 1 {
		t.Errorf("PCI posture of ring test: %v", m)
	}
	// A mistyped framework is not "nothing overdue".
	c.getJSON(t, "/api/v1/posture?framework=pci", 404)
	c.getJSON(t, "/api/v1/posture?dimension=team", 400)
	if resp, _ := (client{srv, ""}).get(t, "/api/v1/posture"); resp.StatusCode != 401 {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
}
