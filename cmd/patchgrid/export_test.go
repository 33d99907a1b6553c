package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// seededCLIEnv seeds the kpitest fleet into a database of the shared chDB
// directory and returns the environment that points the CLI at it.
func seededCLIEnv(t *testing.T) map[string]string {
	t.Helper()
	testenv.CHDBStore(t) // keeps the shared chDB directory alive
	cfg := testenv.CHDBConfig(t)
	st, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kpitest.Migrate(t, st)
	kpitest.Seed(t, st)
	return map[string]string{
		"PATCHGRID_STORE": "chdb", "PATCHGRID_DATA_DIR": cfg.DataDir, "PATCHGRID_CHDB_LIB": cfg.CHDBLib,
		"PATCHGRID_CLICKHOUSE_DB": cfg.Database,
	}
}

func TestExportCLI(t *testing.T) {
	env := seededCLIEnv(t)

	code, out, errOut := runCLI(t, "", env, "export", "--format", "csv", "--severity", "critical,high", "--owner", "bob")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "host_id,") || !strings.Contains(errOut, "exported 2 findings as csv") {
		t.Errorf("csv:\n%s\n%s", out, errOut)
	}

	// Filters also come from the environment.
	env["PATCHGRID_KEV"] = "true"
	path := filepath.Join(t.TempDir(), "f.parquet")
	if code, _, errOut := runCLI(t, "", env, "export", "--format", "parquet", "--out", path); code != exitOK || !strings.Contains(errOut, "exported 1 findings") {
		t.Fatalf("parquet: exit %d: %s", code, errOut)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.HasPrefix(string(b), "PAR1") {
		t.Errorf("parquet file: %v", err)
	}
	delete(env, "PATCHGRID_KEV")

	for _, bad := range [][]string{{"--format", "xml"}, {"--severity", "urgent"}, {"--kev", "maybe"}, {"--min-risk", "200"}, {"extra"}} {
		if code, _, errOut := runCLI(t, "", env, append([]string{"export"}, bad...)...); code != exitUsage {
			t.Errorf("export %v: exit %d, want %d (%s)", bad, code, exitUsage, errOut)
		}
	}
}
