package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// feeds load against the real ClickHouse server: a good record beside a
// YAML "billion laughs" and a download over the size cap loads the good
// record, lists both rejected inputs under the summary and exits 1; a
// malformed single record alone is a warning and exits 0.
func TestFeedsLoadRejectsHostileInput(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.DatabaseName(t)
	t.Cleanup(func() { testenv.DropDatabase(t, addr, db) })
	dir := t.TempDir()
	good := `{"id":"TEST-GOOD","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"pkg"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0-1"}]}]}]}`
	os.WriteFile(filepath.Join(dir, "good.json"), []byte(good), 0o644)
	os.WriteFile(filepath.Join(dir, "malformed.json"), []byte(`{"id":"","modified":"x"}`), 0o644)
	var laughs strings.Builder
	laughs.WriteString("id: PYSEC-0000-1\nd0: &d0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 8; i++ {
		p := fmt.Sprintf("*d%d", i-1)
		fmt.Fprintf(&laughs, "d%d: &d%d [%s%s]\n", i, i, strings.Repeat(p+", ", 8), p)
	}
	bomb := filepath.Join(t.TempDir(), "laughs.yaml")
	os.WriteFile(bomb, []byte(laughs.String()), 0o644)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(5<<30)) // over the 4 GiB download cap
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	flags := []string{"feeds", "load", "--quiet", "--store", "clickhouse", "--clickhouse-addr", addr, "--clickhouse-db", db,
		"--cache-dir", t.TempDir()}

	code, out, errOut := runCLI(t, "", nil, append(flags, "--from", dir)...)
	if code != exitOK || !strings.Contains(errOut, "malformed.json") || strings.Contains(out, "REJECTED") {
		t.Fatalf("a malformed record: exit %d, want 0 with a warning\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", nil, append(flags, "--from", dir, "--from", bomb, "--from", srv.URL+"/all.zip")...)
	if code != exitFailure {
		t.Errorf("hostile inputs: exit %d, want %d", code, exitFailure)
	}
	_, rejected, _ := strings.Cut(out, "REJECTED INPUT")
	if !strings.Contains(rejected, bomb) || !strings.Contains(rejected, "nodes with aliases expanded") ||
		!strings.Contains(rejected, srv.URL+"/all.zip") || !strings.Contains(rejected, "bytes announced") {
		t.Errorf("the summary does not name both rejected inputs and why:\n%s", out)
	}
	if !strings.Contains(errOut, "2 input(s) rejected") {
		t.Errorf("stderr: %s", errOut)
	}
}
