package match

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// testStore opens a fresh, migrated database: on the ClickHouse server of
// PATCHGRID_TEST_CLICKHOUSE when set (the 2018 server in `make test`), else
// on chDB. testenv skips the test when neither is there (fails when CI=true).
func testStore(t testing.TB) store.Store {
	t.Helper()
	var st store.Store
	if os.Getenv("PATCHGRID_TEST_CLICKHOUSE") != "" {
		st = testenv.ServerStore(t)
	} else {
		st = testenv.CHDBStore(t)
	}
	return migrated(t, st)
}

func migrated(t testing.TB, st store.Store) store.Store {
	t.Helper()
	if _, err := schemas.Migrate(context.Background(), st, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}
