package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// seedMatchStore writes two busybox advisories for Alpine 3.16 and one host
// running busybox 1.35.0-r17.
func seedMatchStore(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	key := func(v string) string {
		k, err := version.Key("Alpine:v3.16", v)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	epoch := time.Unix(0, 0).UTC()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.Insert(ctx, "advisories", []string{"source", "advisory_id", "record_hash", "aliases", "severity", "file", "loaded_at"}, [][]any{
		{"alpine-secdb", "CVE-2023-42366", "h1", []string{}, "medium", "3.16/main/busybox.json", epoch},
		{"alpine-secdb", "CVE-2022-28391", "h2", []string{}, "high", "3.16/main/busybox.json", epoch},
	}))
	must(st.Insert(ctx, "affected_ranges", []string{"source", "advisory_id", "record_hash", "ecosystem", "package", "range_idx", "range_type",
		"status", "comparator", "fixed", "fixed_key", "fix_published"}, [][]any{
		{"alpine-secdb", "CVE-2023-42366", "h1", "Alpine:v3.16", "busybox", uint16(0), "SECDB", "affected", "apk", "1.35.0-r18", key("1.35.0-r18"), epoch},
		{"alpine-secdb", "CVE-2022-28391", "h2", "Alpine:v3.16", "busybox", uint16(0), "SECDB", "affected", "apk", "1.35.0-r7", key("1.35.0-r7"), epoch},
	}))
	must(st.Insert(ctx, "inventory_packages", []string{"inventory_hash", "ecosystem", "name", "version", "match_name", "match_version", "v_key"}, [][]any{
		{"inv1", "Alpine:v3.16", "busybox", "1.35.0-r17", "busybox", "1.35.0-r17", key("1.35.0-r17")},
	}))
	must(st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "os_ecosystem", "inventory_hash"}, [][]any{
		{"host-1", "s1", epoch.Add(time.Hour), epoch.Add(time.Hour), "Alpine:v3.16", "inv1"},
	}))
}

func TestMatchCLI(t *testing.T) {
	st := testenv.CHDBStore(t)
	seedMatchStore(t, st)
	cfg := testenv.CHDBConfig(t) // the CLI opens the same engine directory
	env := map[string]string{"PATCHGRID_DATA_DIR": cfg.DataDir, "PATCHGRID_CHDB_LIB": cfg.CHDBLib}
	db := currentDB(t, st)

	stdin := `{"ecosystem":"Alpine:v3.16","name":"busybox","version":"1.35.0-r17"}
not json
{"ecosystem":"Alpine:v3.16","name":"busybox-extras","version":"1.35.0-r5","source_name":"busybox"}
{"ecosystem":"Alpine:v3.18","name":"busybox","version":"1.35.0-r17"}
`
	code, out, errOut := runCLI(t, stdin, env, "match", "--clickhouse-db", db, "--fail-on", "high")
	if code != exitFindings {
		t.Errorf("exit %d, want %d (a high match); stderr %s", code, exitFindings, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 output lines, got:\n%s", out)
	}
	ids := func(l string) []string {
		var ml matchLine
		if err := json.Unmarshal([]byte(l), &ml); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		var out []string
		for _, m := range ml.Matches {
			out = append(out, m.AdvisoryID+"<"+m.Fixed)
			if m.File == "" || m.Comparator != "apk" || m.Installed == "" {
				t.Errorf("evidence incomplete: %+v", m)
			}
		}
		return out
	}
	if got := strings.Join(ids(lines[0]), ","); got != "CVE-2023-42366<1.35.0-r18" {
		t.Errorf("r17: %s", got)
	}
	if !strings.Contains(lines[1], `"error"`) {
		t.Errorf("bad line not reported: %s", lines[1])
	}
	if got := strings.Join(ids(lines[2]), ","); got != "CVE-2022-28391<1.35.0-r7,CVE-2023-42366<1.35.0-r18" {
		t.Errorf("source name r5: %s", got)
	}
	if got := ids(lines[3]); len(got) != 0 {
		t.Errorf("other release matched: %v", got)
	}

	code, out, errOut = runCLI(t, "", env, "match", "--clickhouse-db", db, "--fleet", "--mode", "full")
	if code != exitOK || !strings.Contains(out, "1 inventories") {
		t.Fatalf("fleet: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", env, "explain", "--clickhouse-db", db, "host-1", "CVE-2023-42366")
	if code != exitOK || !strings.Contains(out, "1.35.0-r17 < fixed 1.35.0-r18") || !strings.Contains(out, "is EXPOSED") || !strings.Contains(out, "agrees") {
		t.Errorf("explain: exit %d\n%s\n%s", code, out, errOut)
	}
	// Never "NOT EXPOSED" for something unknown: exit 1 saying what.
	for _, c := range [][2]string{{"nobody", "CVE-2023-42366"}, {"host-1", "CVE-2026-45447"}} {
		code, out, errOut := runCLI(t, "", env, "explain", "--clickhouse-db", db, c[0], c[1])
		if code != exitFailure || strings.Contains(out, "NOT EXPOSED") || !strings.Contains(errOut, "unknown") {
			t.Errorf("explain %s %s: exit %d\n%s\n%s", c[0], c[1], code, out, errOut)
		}
	}
	if code, _, _ := runCLI(t, "", env, "explain", "host-1"); code != exitUsage {
		t.Errorf("explain with one argument: exit %d", code)
	}
	if code, _, _ := runCLI(t, "", env, "match", "--fail-on", "extreme"); code != exitUsage {
		t.Errorf("bad --fail-on: exit %d", code)
	}
}

// On a store that was never migrated, the commands that do not migrate
// say what to run instead of the engine's "unknown table".
func TestReadOnlyCommandsOnUnmigratedStore(t *testing.T) {
	st := testenv.CHDBStore(t)
	cfg := testenv.CHDBConfig(t)
	env := map[string]string{"PATCHGRID_DATA_DIR": cfg.DataDir, "PATCHGRID_CHDB_LIB": cfg.CHDBLib}
	db := currentDB(t, st)
	for _, args := range [][]string{
		{"match", "--clickhouse-db", db},
		{"match", "--clickhouse-db", db, "--fleet"},
		{"explain", "--clickhouse-db", db, "host-1", "CVE-2023-42366"},
	} {
		code, _, errOut := runCLI(t, `{"ecosystem":"Alpine:v3.16","name":"busybox","version":"1.35.0-r17"}`+"\n", env, args...)
		if code != exitFailure || !strings.Contains(errOut, "run `patchgrid migrate`") {
			t.Errorf("%v: exit %d, stderr %q; want a failure saying to run patchgrid migrate", args, code, errOut)
		}
	}
}
