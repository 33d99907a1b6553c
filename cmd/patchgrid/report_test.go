package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestReportCLI(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	env := chdbCLIEnv(t, st)
	out := filepath.Join(t.TempDir(), "report.html")

	// An empty store is an error, not a report of a clean fleet.
	code, _, errOut := runCLI(t, "", env, "report", "--out", out)
	if code != exitFailure || !strings.Contains(errOut, "no hosts") {
		t.Fatalf("empty store: %d %s", code, errOut)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a failed report left %s behind", out)
	}

	kpitest.Seed(t, st)
	kpitest.Refresh(t, st)
	code, _, errOut = runCLI(t, "", env, "report", "--period", "60d", "--out", out, "--title", "ACME")
	if code != exitOK || !strings.Contains(errOut, "4 hosts, 3 open exposures") {
		t.Fatalf("report: %d %s", code, errOut)
	}
	b, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(b), "<h1>Patch compliance report</h1>") || !strings.Contains(string(b), "ACME") {
		t.Fatalf("report file: %v\n%.300s", err, b)
	}
	for _, bad := range [][]string{{"report", "--format", "pdf"}, {"report", "--period", "soon"}} {
		if code, _, _ := runCLI(t, "", env, bad...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, exitUsage)
		}
	}
}
