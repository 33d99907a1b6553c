package schemas

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestParseMigration(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		stmts     []string
		minServer string
		summary   string
		wantErr   string
	}{
		{
			name: "statements and comments",
			body: "-- Things. More words.\n-- second line\n\nCREATE TABLE a (x String) -- trailing; comment\n  ENGINE = Log;\n\n-- between\nCREATE VIEW v AS SELECT ';' AS s\n  FROM a;   \n",
			stmts: []string{
				"CREATE TABLE a (x String) -- trailing; comment\n  ENGINE = Log",
				"CREATE VIEW v AS SELECT ';' AS s\n  FROM a",
			},
			summary: "Things.",
		},
		{
			name:      "min server",
			body:      "-- patchgrid:min-server 23.8\n-- KPIs as views.\nCREATE VIEW k AS SELECT 1;\n",
			stmts:     []string{"CREATE VIEW k AS SELECT 1"},
			minServer: "23.8",
			summary:   "KPIs as views.",
		},
		{
			name:  "semicolon inside a line does not split",
			body:  "SELECT 'a;b', 1; -- x\n",
			stmts: []string{"SELECT 'a;b', 1; -- x"[:len("SELECT 'a;b', 1")]},
		},
		{name: "unterminated", body: "CREATE TABLE a (x String)\n", wantErr: "without a closing"},
		{name: "unknown directive", body: "-- patchgrid:max-server 1.0\nSELECT 1;\n", wantErr: "unknown directive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseMigration(tc.body)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Statements, tc.stmts) {
				t.Errorf("statements = %q, want %q", m.Statements, tc.stmts)
			}
			if m.MinServerText() != tc.minServer || m.Summary != tc.summary {
				t.Errorf("min server %q summary %q", m.MinServerText(), m.Summary)
			}
		})
	}
}

func TestEmbeddedMigrationsParse(t *testing.T) {
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) == 0 || migs[0].Name != "0001_inventory" || len(migs[0].Statements) < 2 || migs[0].MinServerText() != "" {
		t.Fatalf("0001 parsed as %+v", migs[0])
	}
	for i, m := range migs {
		if i > 0 && m.Version <= migs[i-1].Version {
			t.Errorf("%s out of order", m.Name)
		}
		if len(m.Statements) == 0 {
			t.Errorf("%s has no statements", m.Name)
		}
	}
}

func TestLoadMigrationsRejectsBadNames(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"bad name":  {"m/1_x.sql": {Data: []byte("SELECT 1;\n")}},
		"duplicate": {"m/0001_a.sql": {Data: []byte("SELECT 1;\n")}, "m/0001_b.sql": {Data: []byte("SELECT 1;\n")}},
	} {
		if _, err := loadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func testMigrate(t *testing.T, st store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	applied, err := Migrate(ctx, st, log)
	if err != nil {
		t.Fatalf("migrate: %v\nlog:\n%s", err, logBuf.String())
	}
	migs, _ := Migrations()
	ver, _ := st.ServerVersion(ctx)
	var want []string
	for _, m := range migs {
		if m.MinServer.Major == 0 || ver.AtLeast(m.MinServer.Major, m.MinServer.Minor) {
			want = append(want, m.Name)
		}
	}
	if !reflect.DeepEqual(applied, want) {
		t.Errorf("applied %v, want %v", applied, want)
	}
	again, err := Migrate(ctx, st, log)
	if err != nil || len(again) != 0 {
		t.Errorf("second migrate applied %v, err %v", again, err)
	}
	for _, table := range []string{"scans", "inventory_packages", "schema_migrations"} {
		rows, err := st.Query(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?", table)
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for rows.Next() {
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
		if n != 1 {
			t.Errorf("table %s missing after migrate", table)
		}
	}
	skipped, err := Skipped(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	err = RequireAnalytics(ctx, st)
	if len(skipped) > 0 {
		if err == nil || !strings.Contains(err.Error(), "is older than") || !strings.Contains(err.Error(), ver.Text) {
			t.Errorf("RequireAnalytics on %s: %v", ver.Text, err)
		}
		if !strings.Contains(logBuf.String(), "migration skipped") || !strings.Contains(logBuf.String(), skipped[0].Name) {
			t.Errorf("skipped migrations not logged:\n%s", logBuf.String())
		}
		t.Logf("on %s: %v", ver.Text, err)
	} else if err != nil {
		t.Errorf("RequireAnalytics on %s: %v", ver.Text, err)
	}
}

func TestMigrateCHDB(t *testing.T) { testMigrate(t, testenv.CHDBStore(t)) }

func TestMigrateClickHouse(t *testing.T) { testMigrate(t, testenv.ServerStore(t)) }

// A migration needing a newer server is skipped on the 2018 one, and
// RequireAnalytics names the server.
func TestMigrateSkipsForOldServer(t *testing.T) {
	st := testenv.ServerStore(t)
	ctx := context.Background()
	ver, err := st.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ver.AtLeast(23, 8) {
		t.Skipf("server %s is not old", ver.Text)
	}
	migs, err := loadMigrations(fstest.MapFS{
		"m/0001_a.sql": {Data: []byte("CREATE TABLE a (x String) ENGINE = Log;\n")},
		"m/0002_b.sql": {Data: []byte("-- patchgrid:min-server 23.8\n-- Fancy views.\nCREATE TABLE b (x LowCardinality(String)) ENGINE = Log;\n")},
	}, "m")
	if err != nil {
		t.Fatal(err)
	}
	applied, err := migrate(ctx, st, slog.New(slog.DiscardHandler), migs)
	if err != nil || !reflect.DeepEqual(applied, []string{"0001_a"}) {
		t.Fatalf("applied %v, err %v", applied, err)
	}
}

// Commands that do not migrate say what to run on a store that was never
// migrated or lacks this patchgrid's latest migration, and pass on a
// migrated one; on the 2018 server the migrations it cannot run are not
// asked for.
func TestRequireMigrated(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"chdb", testenv.CHDBStore}, {"server", testenv.ServerStore}} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.open(t)
			ctx := context.Background()
			if err := RequireMigrated(ctx, st); err == nil || !strings.Contains(err.Error(), "no patchgrid schema: run `patchgrid migrate`") {
				t.Fatalf("never migrated: %v", err)
			}
			migs, err := Migrations()
			if err != nil {
				t.Fatal(err)
			}
			last := migs[len(migs)-1]
			if _, err := migrate(ctx, st, slog.New(slog.DiscardHandler), migs[:len(migs)-1]); err != nil {
				t.Fatal(err)
			}
			ver, err := st.ServerVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			err = RequireMigrated(ctx, st)
			if last.MinServer.Major > 0 && !ver.AtLeast(last.MinServer.Major, last.MinServer.Minor) {
				if err != nil {
					t.Fatalf("server %s cannot run %s, yet: %v", ver.Text, last.Name, err)
				}
			} else if err == nil || !strings.Contains(err.Error(), "lacks 1 migration(s) of this patchgrid ("+last.Name+"): run `patchgrid migrate`") {
				t.Fatalf("one migration behind: %v", err)
			}
			if _, err := Migrate(ctx, st, nil); err != nil {
				t.Fatal(err)
			}
			if err := RequireMigrated(ctx, st); err != nil {
				t.Fatalf("migrated: %v", err)
			}
		})
	}
}
