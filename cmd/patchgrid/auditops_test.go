package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// auditActions reads the audit trail through `audit export` and checks
// that `audit verify` passes over it.
func auditActions(t *testing.T, env map[string]string) []map[string]any {
	t.Helper()
	code, out, errOut := runCLI(t, "", env, "audit", "verify")
	if code != exitOK {
		t.Fatalf("audit verify: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", env, "audit", "export")
	if code != exitOK {
		t.Fatalf("audit export: exit %d\n%s", code, errOut)
	}
	var entries []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit export line %q: %v", line, err)
		}
		entries = append(entries, e)
	}
	return entries
}

func countAction(entries []map[string]any, action, objectPrefix string) int {
	n := 0
	for _, e := range entries {
		if e["action"] == action && strings.HasPrefix(fmt.Sprint(e["object"]), objectPrefix) {
			n++
		}
	}
	return n
}

const auditTestAdvisory = `{"id":"DEBIAN-CVE-2024-0001","modified":"2024-05-01T00:00:00Z","upstream":["CVE-2024-0001"],"affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.13-1~deb12u1"}]}]}]}`

// TestRunAndFeedsLoadAreAudited: `feeds load`, `run` (its feed loads and
// its refresh) and `match --fleet` (its refresh) append entries to the
// audit trail, and the chain still verifies.
func TestRunAndFeedsLoadAreAudited(t *testing.T) {
	st := testenv.CHDBStore(t)
	brokers := testenv.Kafka(t)
	env := chdbCLIEnv(t, st)
	env["PATCHGRID_ACTOR"] = "audit-test"
	dir := t.TempDir()
	adv := filepath.Join(dir, "DEBIAN-CVE-2024-0001.json")
	if err := os.WriteFile(adv, []byte(auditTestAdvisory), 0o644); err != nil {
		t.Fatal(err)
	}

	if code, out, errOut := runCLI(t, "", env, "feeds", "load", "--quiet", "--from", adv); code != exitOK {
		t.Fatalf("feeds load: exit %d\n%s\n%s", code, out, errOut)
	}
	entries := auditActions(t, env)
	if n := countAction(entries, "feed.load", "feed:osv"); n != 1 || len(entries) != 1 {
		t.Fatalf("after feeds load: %d feed.load entries of %d, want 1 of 1: %v", n, len(entries), entries)
	}
	if e := entries[0]; e["actor"] != "audit-test" || !strings.Contains(fmt.Sprint(e["detail"]), "1 records: 1 new") || e["after_digest"] == "" {
		t.Errorf("feed.load entry: %v", e)
	}

	topic := fmt.Sprintf("patchgrid.audit-test.%d", time.Now().UnixNano())
	code, out, errOut := runCLI(t, "", env, "run", "--skip-local", "--endpoints", "0", "--kafka-brokers", brokers,
		"--topic", topic, "--partitions", "1", "--feeds", adv, "--cache-dir", t.TempDir())
	if code != exitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	entries = auditActions(t, env)
	if n := countAction(entries, "feed.load", "feed:osv"); n != 2 {
		t.Errorf("after run: %d feed.load entries, want 2", n)
	}
	if n := countAction(entries, "refresh", "refresh:"); n != 1 {
		t.Errorf("after run: %d refresh entries, want 1", n)
	}

	if code, out, errOut := runCLI(t, "", env, "match", "--fleet"); code != exitOK {
		t.Fatalf("match --fleet: exit %d\n%s\n%s", code, out, errOut)
	}
	entries = auditActions(t, env)
	if n := countAction(entries, "refresh", "refresh:"); n != 2 {
		t.Errorf("after match --fleet: %d refresh entries, want 2", n)
	}
}
