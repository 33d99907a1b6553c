package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestPolicyAndPlanCLI(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	kpitest.Seed(t, st)
	env := chdbCLIEnv(t, st)
	env["USER"] = "tester"

	dir := t.TempDir()
	good := filepath.Join(dir, "policy.yaml")
	v2 := filepath.Join(dir, "v2.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, policy.SampleYAML, 0o600)
	os.WriteFile(v2, []byte(strings.Replace(string(policy.SampleYAML), "high: 30", "high: 20", 1)), 0o600)
	os.WriteFile(bad, []byte("sla:\n  days: {critical: 15, high: 30, medium: 90, low: 180}\nrings:\n  - name: test\n    gate: {min_soak: soon}\n"), 0o600)

	code, _, errOut := runCLI(t, "", env, "policy", "apply", bad)
	if code != exitUsage || !strings.Contains(errOut, "bad.yaml:5: rings[0].gate.min_soak: want a duration") {
		t.Fatalf("bad policy: exit %d: %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "", env, "policy", "apply", good)
	if code != exitOK || !strings.Contains(out, "policy version 1 applied by tester") {
		t.Fatalf("apply: exit %d: %s%s", code, out, errOut)
	}
	if code, out, _ = runCLI(t, "", env, "policy", "apply", good, "--actor", "bob"); code != exitOK || !strings.Contains(out, "already active") {
		t.Errorf("re-apply: %d %s", code, out)
	}
	if code, out, _ = runCLI(t, "", env, "policy", "apply", v2, "--actor", "bob"); code != exitOK || !strings.Contains(out, "version 2 applied by bob") {
		t.Errorf("apply v2: %d %s", code, out)
	}
	code, out, _ = runCLI(t, "", env, "policy", "show")
	if code != exitOK || !strings.Contains(out, "# policy version 2") || !strings.Contains(out, "applied by bob") || !strings.Contains(out, "high: 20") {
		t.Errorf("show: %d %s", code, out)
	}
	code, out, _ = runCLI(t, "", env, "policy", "diff", "1", "2")
	if code != exitOK || !strings.Contains(out, "- sla.days.high = 30\n+ sla.days.high = 20") {
		t.Errorf("diff: %d %s", code, out)
	}
	code, out, errOut = runCLI(t, "", env, "plan", "create", "--horizon", "14d")
	if code != exitOK || !strings.Contains(out, "3 actions on 2 hosts from 3 open findings") {
		t.Fatalf("plan create: %d %s %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "", env, "plan", "show", "--by", "fix")
	if code != exitOK || !strings.Contains(out, "upgrade pkga to 2.0 on 1 host: closes 1 advisory (1 KEV)") || !strings.Contains(out, "EMERGENCY") {
		t.Errorf("show by fix: %d %s", code, out)
	}
	if code, out, _ = runCLI(t, "", env, "plan", "show", "--by", "action"); code != exitOK || !strings.Contains(out, "emergency: KEV") {
		t.Errorf("show by action: %d %s", code, out)
	}
	code, out, _ = runCLI(t, "", env, "plan", "export", "--format", "ansible")
	if code != exitOK || !strings.Contains(out, "wave_1:") || !strings.Contains(out, `"pkga=2.0"`) {
		t.Errorf("ansible: %d %s", code, out)
	}
	if code, _, errOut = runCLI(t, "", env, "plan", "export", "--format", "xml"); code != exitUsage {
		t.Errorf("bad format: %d %s", code, errOut)
	}
}
