package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// TestIngestOutcomes: `outcome report` publishes, `ingest --outcomes
// --drain` loads into the embedded store what matches the plan, and
// dead-letters the outcome of an action the plan does not have.
func TestIngestOutcomes(t *testing.T) {
	broker := testenv.Kafka(t)
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Insert(ctx, "plans", []string{"plan_id", "created_at"}, [][]any{{"p-cli", time.Now().UTC()}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Insert(ctx, "plan_actions", []string{"plan_id", "action_id", "host_id", "package"},
		[][]any{{"p-cli", "a1", "h1", "curl"}, {"p-cli", "a2", "h2", "curl"}}); err != nil {
		t.Fatal(err)
	}
	line := func(action, host string) string {
		return fmt.Sprintf(`{"version":1,"plan_id":"p-cli","action_id":%q,"host_id":%q,"package":"curl","from_version":"7.88.1-10","to_version":"7.88.1-10+deb12u5","status":"succeeded","attempt":1,"started_at":"2026-11-02T22:00:00Z","finished_at":"2026-11-02T22:00:30Z","reboot_required":false}`, action, host)
	}
	file := filepath.Join(t.TempDir(), "outcomes.jsonl")
	if err := os.WriteFile(file, []byte(strings.Join([]string{line("a1", "h1"), line("a2", "h2"), line("a3", "h1")}, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	topic := fmt.Sprintf("pgtest-cli-outcomes-%d", time.Now().UnixNano())
	env := chdbCLIEnv(t, st)
	// ingest creates the topics; with nothing in them yet it drains at once.
	if code, _, stderr := cli(t, env, "ingest", "--outcomes", "--drain", "--kafka-brokers", broker, "--topic", topic,
		"--create-topic-partitions", "2", "--group", topic+"-g", "--metrics-addr", ""); code != exitOK {
		t.Fatalf("ingest (empty topic): exit %d: %s", code, stderr)
	}
	if code, _, stderr := cli(t, nil, "outcome", "report", "--file", file, "--kafka-brokers", broker, "--topic", topic); code != exitOK {
		t.Fatalf("outcome report: exit %d: %s", code, stderr)
	}
	if code, _, stderr := cli(t, env, "ingest", "--outcomes", "--drain", "--kafka-brokers", broker, "--topic", topic,
		"--group", topic+"-g", "--metrics-addr", ""); code != exitOK {
		t.Fatalf("ingest --outcomes: exit %d: %s", code, stderr)
	}
	rows, err := st.Query(ctx, "SELECT count(), countIf(action_id = 'a3') FROM outcomes FINAL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n, unknown uint64
	if !rows.Next() || rows.Scan(&n, &unknown) != nil {
		t.Fatalf("count outcomes: %v", rows.Err())
	}
	if n != 2 || unknown != 0 {
		t.Errorf("%d outcomes stored (%d of the unknown action a3), want 2 (0)", n, unknown)
	}
}
