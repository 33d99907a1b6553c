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

func TestRefreshCLI(t *testing.T) {
	testenv.CHDBStore(t)
	cfg := testenv.CHDBConfig(t)
	env := map[string]string{"PATCHGRID_DATA_DIR": cfg.DataDir, "PATCHGRID_CHDB_LIB": cfg.CHDBLib}
	if code, out, errOut := runCLI(t, "", env, "migrate", "--clickhouse-db", cfg.Database); code != exitOK {
		t.Fatalf("migrate: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, args := range [][]string{{"--full"}, {}} {
		code, out, errOut := runCLI(t, "", env, append([]string{"refresh", "--clickhouse-db", cfg.Database}, args...)...)
		mode := "(incremental)"
		if len(args) > 0 {
			mode = "(full)"
		}
		if code != exitOK || !strings.Contains(out, mode+": 0 hosts") {
			t.Fatalf("refresh %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
		}
	}
	if code, _, _ := runCLI(t, "", env, "refresh", "--fast"); code != exitUsage {
		t.Errorf("unknown flag: exit %d", code)
	}
}

func TestRefreshCLIOldServer(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.DatabaseName(t)
	t.Cleanup(func() { testenv.DropDatabase(t, addr, db) })
	flags := []string{"--store", "clickhouse", "--clickhouse-addr", addr, "--clickhouse-db", db}
	if code, _, errOut := runCLI(t, "", nil, append([]string{"migrate"}, flags...)...); code != exitOK {
		t.Fatalf("migrate: exit %d: %s", code, errOut)
	}
	code, _, errOut := runCLI(t, "", nil, append([]string{"refresh"}, flags...)...)
	if code != exitFailure || !strings.Contains(errOut, "older than 23.8") {
		t.Errorf("refresh on the 2018 server: exit %d, stderr %s", code, errOut)
	}
}
