package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// plan status shows each ring's gate with the numbers and why; a rollback
// holds its fix until plan approve names an approver.
func TestPlanStatusAndApproveCLI(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	kpitest.Seed(t, st)
	env := chdbCLIEnv(t, st)
	env["USER"] = "tester"
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, policy.SampleYAML, 0o600)
	if code, out, errOut := runCLI(t, "", env, "policy", "apply", pol); code != exitOK {
		t.Fatalf("apply: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "", env, "plan", "create"); code != exitOK {
		t.Fatalf("plan create: %d %s %s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "", env, "plan", "status", "--due")
	if code != exitOK || !strings.Contains(out, "first ring: always open") || !strings.Contains(out, "RING") ||
		!strings.Contains(out, "may run now") {
		t.Fatalf("plan status: %d %s %s", code, out, errOut)
	}
	// Roll back one action: its fix is held.
	ctx := context.Background()
	rows, err := st.Query(ctx, "SELECT plan_id, action_id, host_id, package, target_version FROM plan_actions ORDER BY rank LIMIT 1")
	if err != nil {
		t.Fatal(err)
	}
	var planID, actionID, host, pkg, target string
	if !rows.Next() {
		t.Fatal("no action planned")
	}
	if err := rows.Scan(&planID, &actionID, &host, &pkg, &target); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	now := time.Now().UTC().Truncate(time.Second)
	if err := st.Insert(ctx, "outcomes", []string{"plan_id", "action_id", "attempt", "host_id", "package", "from_version", "to_version",
		"status", "started_at", "finished_at", "error", "reboot_required", "received_at"},
		[][]any{{planID, actionID, uint32(1), host, pkg, "1.0", target, "rolled_back", now.Add(-time.Hour), now.Add(-time.Minute), "service failed", uint8(0), now}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "", env, "plan", "status", planID, "--format", "json")
	if code != exitOK {
		t.Fatalf("plan status json: %d %s", code, errOut)
	}
	var rep struct {
		Plan struct {
			PlanID string `json:"plan_id"`
		} `json:"plan"`
		States map[string]uint64 `json:"states"`
		Rings  []struct {
			Ring, Reason string
			Open         bool
		} `json:"rings"`
		Holds []struct {
			Package       string `json:"package"`
			TargetVersion string `json:"target_version"`
		} `json:"holds"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if rep.Plan.PlanID != planID || rep.States["rolled_back"] != 1 || len(rep.Rings) == 0 || len(rep.Holds) != 1 ||
		rep.Holds[0].Package != pkg || rep.Holds[0].TargetVersion != target {
		t.Errorf("status json: %+v", rep)
	}
	if code, _, errOut = runCLI(t, "", env, "plan", "approve", "--package", pkg, "--version", target); code != exitUsage || !strings.Contains(errOut, "--approver") {
		t.Errorf("approve without an approver: %d %s", code, errOut)
	}
	if code, _, errOut = runCLI(t, "", env, "plan", "approve", "--package", pkg, "--version", "0.0.0", "--approver", "carol"); code != exitUsage ||
		!strings.Contains(errOut, "no hold in force") {
		t.Errorf("approve a fix not held: %d %s", code, errOut)
	}
	code, out, errOut = runCLI(t, "", env, "plan", "approve", "--package", pkg, "--version", target, "--approver", "carol", "--reason", "fixed the unit")
	if code != exitOK || !strings.Contains(out, "approved "+pkg+" "+target) || !strings.Contains(out, "by carol") {
		t.Errorf("approve: %d %s %s", code, out, errOut)
	}
	if code, out, _ = runCLI(t, "", env, "plan", "status"); code != exitOK || strings.Contains(out, "held after a rollback") {
		t.Errorf("status after approval: %d %s", code, out)
	}
	if code, _, _ = runCLI(t, "", env, "plan", "status", "PL-nope"); code != exitUsage {
		t.Errorf("unknown plan: exit %d", code)
	}
}
