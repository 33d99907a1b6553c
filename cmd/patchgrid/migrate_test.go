package main

import (
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestMigrateCLICHDB(t *testing.T) {
	testenv.CHDBStore(t) // keeps the shared engine directory alive
	cfg := testenv.CHDBConfig(t)
	env := map[string]string{"PATCHGRID_DATA_DIR": cfg.DataDir, "PATCHGRID_CHDB_LIB": cfg.CHDBLib}
	code, out, errOut := runCLI(t, "", env, "migrate", "--clickhouse-db", cfg.Database)
	if code != exitOK || !strings.Contains(out, "applied 0001_inventory\n") {
		t.Fatalf("first migrate: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", env, "migrate", "--clickhouse-db", cfg.Database)
	if code != exitOK || strings.Contains(out, "applied") || !strings.Contains(out, "schema up to date (chdb") {
		t.Fatalf("second migrate: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestMigrateCLIClickHouse(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.DatabaseName(t)
	t.Cleanup(func() { testenv.DropDatabase(t, addr, db) })
	code, out, errOut := runCLI(t, "", nil, "migrate", "--store", "clickhouse", "--clickhouse-addr", addr, "--clickhouse-db", db)
	if code != exitOK || !strings.Contains(out, "applied 0001_inventory\n") {
		t.Fatalf("migrate: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestMigrateCLIErrors(t *testing.T) {
	code, _, errOut := runCLI(t, "", map[string]string{"PATCHGRID_CHDB_LIB": "/nonexistent/libchdb.so", "PATCHGRID_DATA_DIR": t.TempDir()}, "migrate")
	if code != exitFailure || !strings.Contains(errOut, "/nonexistent/libchdb.so not found") {
		t.Errorf("missing library: exit %d, stderr %s", code, errOut)
	}
	if code, _, _ := runCLI(t, "", nil, "migrate", "extra"); code != exitUsage {
		t.Errorf("extra argument: exit %d", code)
	}
}
