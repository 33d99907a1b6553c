package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// cliStoreEnv points the CLI at the test's chDB engine and database.
func cliStoreEnv(t *testing.T) (map[string]string, string) {
	t.Helper()
	st := testenv.CHDBStore(t)
	seedMatchStore(t, st)
	env := chdbCLIEnv(t, st)
	return env, env["PATCHGRID_CLICKHOUSE_DB"]
}

func TestSQLCLI(t *testing.T) {
	env, _ := cliStoreEnv(t)
	code, out, errOut := runCLI(t, "", env, "sql", "--format", "csv", "SELECT advisory_id, severity FROM advisories ORDER BY advisory_id")
	if code != exitOK || out != "advisory_id,severity\nCVE-2022-28391,high\nCVE-2023-42366,medium\n" {
		t.Fatalf("exit %d, out %q, err %s", code, out, errOut)
	}
	// Statements from stdin, each ending with ';' at the end of a line.
	code, out, errOut = runCLI(t, "SELECT count() AS n\nFROM scans;\nSELECT 'a;b' AS s;\n", env, "sql", "--format", "json")
	if code != exitFailure || !strings.Contains(errOut, "statement 2") {
		// 'a;b' holds a ';': refused whole rather than guessed at.
		t.Fatalf("exit %d, out %q, err %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "SELECT count() AS n\nFROM scans;\nSELECT 2 AS two;\n", env, "sql", "--format", "json")
	if code != exitOK || out != "{\"n\":1}\n{\"two\":2}\n" {
		t.Fatalf("exit %d, out %q, err %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "", env, "sql", "--max-rows", "2", "SELECT number FROM numbers(10)")
	if code != exitOK || !strings.Contains(out, "(2 rows, truncated") {
		t.Fatalf("table with limit: %d %q", code, out)
	}
	for _, q := range []string{"DROP TABLE scans", "INSERT INTO scans (host_id) VALUES ('x')", "SELECT 1 SETTINGS readonly=0"} {
		code, _, errOut = runCLI(t, "", env, "sql", q)
		if code != exitFailure || !strings.Contains(errOut, "refused") {
			t.Errorf("%s: exit %d, %s", q, code, errOut)
		}
	}
	code, _, errOut = runCLI(t, "", env, "sql", "SELECT * FROM no_such_view")
	if code != exitFailure || strings.Contains(errOut, "statement: SELECT") {
		t.Errorf("unknown view: exit %d, %s", code, errOut)
	}
	code, out, _ = runCLI(t, "", env, "sql", "--views")
	if code != exitOK || !strings.Contains(out, "kpi_mttr ") || !strings.Contains(out, "finding_risk ") {
		t.Errorf("--views: %d\n%s", code, out)
	}
}

func TestAuditCLI(t *testing.T) {
	env, db := cliStoreEnv(t)
	code, out, errOut := runCLI(t, "", env, "audit", "verify")
	if code != exitOK || !strings.Contains(out, "empty") {
		t.Fatalf("empty log: %d %q %s", code, out, errOut)
	}
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	if err := st.Exec(ctx, "INSERT INTO "+db+".audit_log (seq, actor, action, object, prev_hash, hash) VALUES (1, 'x', 'y', 'z', '', 'bogus')"); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "", env, "audit", "verify")
	if code != exitAuditBroken || !strings.Contains(out, "BROKEN at entry 1") {
		t.Fatalf("tampered log: %d %q", code, out)
	}
	code, out, _ = runCLI(t, "", env, "audit", "export")
	if code != exitOK || !strings.Contains(out, `"hash":"bogus"`) {
		t.Fatalf("export: %d %q", code, out)
	}
	if code, _, _ = runCLI(t, "", env, "audit", "verify", "--expect-head", "nope"); code != exitUsage {
		t.Fatalf("bad --expect-head: %d", code)
	}
}

func TestExceptionCLI(t *testing.T) {
	env, _ := cliStoreEnv(t)
	code, out, errOut := runCLI(t, "", env, "exception", "request", "--advisory", "CVE-2023-42366", "--host", "host-1",
		"--owner", "platform", "--reason", "vendor image", "--control", "no shell access", "--expires", "30d", "--requester", "alice")
	id := strings.TrimSpace(out)
	if code != exitOK || !strings.HasPrefix(id, "EX-") {
		t.Fatalf("request: %d %q %s", code, out, errOut)
	}
	if code, _, errOut = runCLI(t, "", env, "exception", "approve", id, "--approver", "alice"); code != exitUsage || !strings.Contains(errOut, "four eyes") {
		t.Fatalf("self-approval: %d %s", code, errOut)
	}
	if code, out, errOut = runCLI(t, "", env, "exception", "approve", id, "--approver", "bob"); code != exitOK || out != id+" approved\n" {
		t.Fatalf("approve: %d %q %s", code, out, errOut)
	}
	if code, _, errOut = runCLI(t, "", env, "exception", "request", "--advisory", "X", "--host", "h", "--owner", "o", "--reason", "r",
		"--expires", "120d", "--requester", "a"); code != exitUsage || !strings.Contains(errOut, "cap") {
		t.Fatalf("over the cap: %d %s", code, errOut)
	}
	code, out, _ = runCLI(t, "", env, "exception", "list", "--status", "approved")
	if code != exitOK || !strings.Contains(out, id) || !strings.Contains(out, "host host-1") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "", env, "audit", "verify")
	if code != exitOK || !strings.Contains(out, "ok: 2 entries") {
		t.Fatalf("audit after request and approve: %d %q", code, out)
	}
	for _, bad := range []string{"", "0d", "-3d", "soon"} {
		if _, err := parseSpan(bad); err == nil {
			t.Errorf("parseSpan(%q) accepted", bad)
		}
	}
	if d, err := parseSpan("2w"); err != nil || d != 14*24*time.Hour {
		t.Errorf("2w = %v %v", d, err)
	}
}
