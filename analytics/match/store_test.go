package match

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// chdbDir is the one embedded data directory of this test process: chDB
// runs one engine per process, so tests share it and differ by database.
var chdbDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if chdbDir != "" {
		os.RemoveAll(chdbDir)
	}
	os.Exit(code)
}

var dbSeq atomic.Int64

// testStore opens a fresh database with migrations 0001..0003 applied, on
// the ClickHouse server of PATCHGRID_TEST_CLICKHOUSE when set, else on chDB
// (PATCHGRID_CHDB_LIB). Without either the test is skipped, unless CI=true.
func testStore(t testing.TB) store.Store {
	t.Helper()
	return openTestStore(t, os.Getenv("PATCHGRID_TEST_CLICKHOUSE") != "")
}

func openTestStore(t testing.TB, server bool) store.Store {
	t.Helper()
	ctx := context.Background()
	db := fmt.Sprintf("match_test_%d_%d", os.Getpid(), dbSeq.Add(1))
	cfg := store.Config{Database: db}
	if server {
		cfg.Backend, cfg.Addr = "clickhouse", os.Getenv("PATCHGRID_TEST_CLICKHOUSE")
	} else {
		lib := os.Getenv("PATCHGRID_CHDB_LIB")
		if lib == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("neither PATCHGRID_TEST_CLICKHOUSE nor PATCHGRID_CHDB_LIB is set")
			}
			t.Skip("no store: set PATCHGRID_TEST_CLICKHOUSE or PATCHGRID_CHDB_LIB")
		}
		if chdbDir == "" {
			d, err := os.MkdirTemp("", "match-chdb-")
			if err != nil {
				t.Fatal(err)
			}
			chdbDir = d
		}
		cfg.Backend, cfg.CHDBLib, cfg.DataDir = "chdb", lib, chdbDir
	}
	s, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open %s store: %v", cfg.Backend, err)
	}
	t.Cleanup(func() {
		_ = s.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		s.Close()
	})
	applyMigrations(t, s)
	return s
}

// applyMigrations runs the statements of the migrations matching builds on
// (0001 inventory, 0002 feeds, 0003 matching), in order.
func applyMigrations(t testing.TB, s store.Store) {
	t.Helper()
	files, err := filepath.Glob("../../schemas/migrations/000[123]_*.sql")
	if err != nil || len(files) != 3 {
		t.Fatalf("migrations 0001..0003 not found: %v %v", files, err)
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, stmt := range splitStatements(string(b)) {
			if err := s.Exec(context.Background(), stmt); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
	}
}

// splitStatements splits a migration file at semicolons that end a line,
// dropping comment-only chunks.
func splitStatements(sql string) []string {
	var out []string
	for _, chunk := range strings.Split(sql, ";\n") {
		body := false
		for _, line := range strings.Split(chunk, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "--") {
				body = true
				break
			}
		}
		if body {
			out = append(out, strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(chunk), ";")))
		}
	}
	return out
}
