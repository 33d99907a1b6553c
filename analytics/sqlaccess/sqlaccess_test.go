package sqlaccess_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/sqlaccess"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		q  string
		ok bool
	}{
		{"SELECT 1", true},
		{"  select 1;  ", true},
		{"-- a comment\n/* another */ (SELECT 1)", true},
		{"WITH x AS (SELECT 1) SELECT * FROM x", true},
		{"SHOW TABLES", true},
		{"DESCRIBE TABLE kpi_mttr", true},
		{"EXPLAIN SELECT 1", true},
		{"", false},
		{";", false},
		{"INSERT INTO scans (host_id) VALUES ('x')", false},
		{"CREATE TABLE t (a UInt8) ENGINE = Memory", false},
		{"DROP TABLE scans", false},
		{"ALTER TABLE scans DELETE WHERE 1", false},
		{"SET readonly = 0", false},
		{"SYSTEM SHUTDOWN", false},
		{"TRUNCATE TABLE audit_log", false},
		{"SELECT 1; DROP TABLE scans", false},
		{"SELECT 1 SETTINGS readonly = 0", false},
		{"SELECT * FROM (SELECT * FROM file('/etc/passwd', 'LineAsString') settings readonly=0)", false},
		{"/* SELECT */ DELETE FROM scans WHERE 1", false},
		{"-- SELECT\nOPTIMIZE TABLE scans", false},
	} {
		_, err := sqlaccess.Check(c.q)
		if (err == nil) != c.ok {
			t.Errorf("Check(%q) = %v, want ok=%v", c.q, err, c.ok)
		}
		if err != nil && !errors.Is(err, sqlaccess.ErrRefused) {
			t.Errorf("Check(%q): error %v is not ErrRefused", c.q, err)
		}
	}
}

func TestRunCHDB(t *testing.T)       { testRun(t, testenv.CHDBStore(t)) }
func TestRunClickHouse(t *testing.T) { testRun(t, testenv.ServerStore(t)) }

// testRun holds the engine-side guarantees on a real store: table functions
// refused by readonly, rows cut at the limit, time and memory limits, and a
// store that still answers correctly after a statement failed.
func testRun(t *testing.T, st store.Store) {
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	res, err := sqlaccess.Run(ctx, st, "SELECT number AS n, toString(number) AS s FROM system.numbers LIMIT 25", sqlaccess.Options{MaxRows: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 10 || !res.Truncated || len(res.Columns) != 2 || res.Columns[0].Name != "n" {
		t.Fatalf("limited result: %d rows, truncated %v, columns %v", len(res.Rows), res.Truncated, res.Columns)
	}
	res, err = sqlaccess.Run(ctx, st, "SELECT count() AS c FROM audit_log", sqlaccess.Options{})
	if err != nil || len(res.Rows) != 1 || res.Truncated {
		t.Fatalf("count: %+v %v", res, err)
	}
	// Table functions read the server's files or reach the network:
	// readonly refuses them.
	if _, err := sqlaccess.Run(ctx, st, "SELECT * FROM file('patchgrid-probe.tsv', 'TSV', 'a String')", sqlaccess.Options{}); err == nil {
		t.Fatal("file() ran under readonly")
	}
	if _, err := sqlaccess.Run(ctx, st, "SELECT count() FROM system.numbers", sqlaccess.Options{Timeout: time.Second}); err == nil {
		t.Fatal("an endless query ran past the timeout")
	}
	if st.Backend() == "chdb" {
		// groupArray over 100M numbers needs ~1 GB; 100 MB is refused.
		if _, err := sqlaccess.Run(ctx, st, "SELECT length(groupArray(number)) FROM numbers(100000000)", sqlaccess.Options{MaxMemory: 100 << 20}); err == nil {
			t.Fatal("a query ran past the memory limit")
		}
	}
	// After failed statements the store answers the next one correctly.
	res, err = sqlaccess.Run(ctx, st, "SELECT 41 + 1 AS answer", sqlaccess.Options{})
	if err != nil || len(res.Rows) != 1 || res.Columns[0].Name != "answer" {
		t.Fatalf("after failures: %+v %v", res, err)
	}
	var buf bytes.Buffer
	if err := sqlaccess.Write(&buf, res, "json"); err != nil || strings.TrimSpace(buf.String()) != `{"answer":42}` {
		t.Fatalf("json output %q %v", buf.String(), err)
	}
}

func TestHandler(t *testing.T) {
	st := testenv.CHDBStore(t)
	srv := httptest.NewServer(sqlaccess.Handler(st, sqlaccess.Options{MaxRows: 5}, nil))
	defer srv.Close()
	ctx := context.Background()
	// A request may lower the server's limits, never raise them.
	res, err := sqlaccess.Remote(ctx, srv.Client(), srv.URL, "", sqlaccess.Request{Query: "SELECT number, now() AS t, nan AS x FROM numbers(100)", MaxRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 5 || !res.Truncated || res.Rows[0][2] != nil {
		t.Fatalf("remote result: %+v", res)
	}
	if _, err := sqlaccess.Remote(ctx, srv.Client(), srv.URL, "", sqlaccess.Request{Query: "DROP TABLE scans"}); err == nil || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("write through the handler: %v", err)
	}
	if _, err := sqlaccess.Remote(ctx, srv.Client(), srv.URL, "", sqlaccess.Request{Query: "SELECT no_such_column FROM numbers(1)"}); err == nil || !strings.Contains(err.Error(), "HTTP 422") || strings.Contains(err.Error(), "statement:") {
		t.Fatalf("engine error through the handler: %v", err)
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var body sqlaccess.Response
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || body.Error == "" {
		t.Fatalf("GET: %d %+v", resp.StatusCode, body)
	}
}

func TestWriteFormats(t *testing.T) {
	res := &sqlaccess.Result{
		Columns: []store.Column{{Name: "host", Type: "String"}, {Name: "n", Type: "Int64"}, {Name: "at", Type: "DateTime"}, {Name: "tags", Type: "Array(String)"}},
		Rows: [][]any{
			{"=cmd|' /C calc'!A0", int64(-3), time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC), []string{"a", "b"}},
			{"web-1", int64(7), time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC), []string{}},
		},
		Truncated: true,
	}
	want := map[string]string{
		"table": "host                n   at                   tags\n" +
			"------------------  --  -------------------  ---------\n" +
			"=cmd|' /C calc'!A0  -3  2026-12-03 08:00:00  [\"a\",\"b\"]\n" +
			"web-1               7   2026-12-03 09:30:00  []\n" +
			"(2 rows, truncated: raise --max-rows or narrow the query)\n",
		"csv": "host,n,at,tags\n" +
			"'=cmd|' /C calc'!A0,-3,2026-12-03 08:00:00,\"[\"\"a\"\",\"\"b\"\"]\"\n" +
			"web-1,7,2026-12-03 09:30:00,[]\n",
		"json": `{"at":"2026-12-03T08:00:00Z","host":"=cmd|' /C calc'!A0","n":-3,"tags":["a","b"]}` + "\n" +
			`{"at":"2026-12-03T09:30:00Z","host":"web-1","n":7,"tags":[]}` + "\n",
	}
	for _, f := range sqlaccess.Formats {
		var buf bytes.Buffer
		if err := sqlaccess.Write(&buf, res, f); err != nil {
			t.Fatal(err)
		}
		if buf.String() != want[f] {
			t.Errorf("%s:\n%s\nwant\n%s", f, buf.String(), want[f])
		}
	}
	if err := sqlaccess.Write(&bytes.Buffer{}, res, "xml"); err == nil {
		t.Fatal("unknown format accepted")
	}
}
