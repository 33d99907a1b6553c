package main

import (
	"context"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// currentDB is the database a test store works in (testenv gives each test
// its own), which the CLI under test must be pointed at.
func currentDB(t *testing.T, st store.Store) string {
	t.Helper()
	rows, err := st.Query(context.Background(), "SELECT currentDatabase()")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var db string
	for rows.Next() {
		if err := rows.Scan(&db); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil || db == "" {
		t.Fatalf("current database: %q %v", db, err)
	}
	return db
}

// chdbCLIEnv is the environment that points the CLI at st, a store of the
// test binary's shared chDB engine.
func chdbCLIEnv(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	cfg := testenv.CHDBConfig(t)
	return map[string]string{"PATCHGRID_DATA_DIR": cfg.DataDir, "PATCHGRID_CHDB_LIB": cfg.CHDBLib, "PATCHGRID_CLICKHOUSE_DB": currentDB(t, st)}
}
