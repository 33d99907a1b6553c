package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func cli(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), &cliEnv{
		stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return env[k] },
	}, args)
	return code, out.String(), errOut.String()
}

func TestSimulateDryRunIsDeterministic(t *testing.T) {
	inv := filepath.Join(testenv.SharedData(t), "inventories")
	dir := t.TempDir()
	var streams [2][]byte
	for i := range streams {
		out := filepath.Join(dir, fmt.Sprintf("s%d.bin", i))
		code, stdout, stderr := cli(t, map[string]string{"PATCHGRID_SEED": "11"},
			"simulate", "--dry-run", "--out", out, "--endpoints", "20", "--days", "4", "--inventories", inv)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.HasPrefix(stdout, "80 messages") {
			t.Errorf("summary %q", stdout)
		}
		var err error
		if streams[i], err = os.ReadFile(out); err != nil {
			t.Fatal(err)
		}
	}
	if len(streams[0]) == 0 || !bytes.Equal(streams[0], streams[1]) {
		t.Fatalf("streams differ (%d and %d bytes)", len(streams[0]), len(streams[1]))
	}
	if code, _, _ := cli(t, nil, "simulate", "--start", "yesterday"); code != exitUsage {
		t.Errorf("bad --start: exit %d, want %d", code, exitUsage)
	}
}

// TestSimulateThenIngest runs the two commands against the real broker and
// ClickHouse server: every scan is loaded (counted with FINAL).
func TestSimulateThenIngest(t *testing.T) {
	broker := testenv.Kafka(t)
	addr := testenv.ClickHouse(t)
	st := testenv.ServerStore(t)
	db := currentDB(t, st)
	inv := filepath.Join(testenv.SharedData(t), "inventories")
	topic := fmt.Sprintf("pgtest-cli-%d", time.Now().UnixNano())
	code, _, stderr := cli(t, nil, "simulate", "--endpoints", "15", "--days", "3", "--inventories", inv,
		"--kafka-brokers", broker, "--topic", topic, "--create-topic-partitions", "2")
	if code != exitOK {
		t.Fatalf("simulate: exit %d: %s", code, stderr)
	}
	code, _, stderr = cli(t, nil, "ingest", "--drain", "--kafka-brokers", broker, "--topic", topic,
		"--create-topic-partitions", "2", "--group", topic+"-g", "--metrics-addr", "",
		"--store", "clickhouse", "--clickhouse-addr", addr, "--clickhouse-db", db)
	if code != exitOK {
		t.Fatalf("ingest: exit %d: %s", code, stderr)
	}
	rows, err := st.Query(context.Background(), "SELECT count() FROM scans FINAL")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n uint64
	for rows.Next() {
		rows.Scan(&n)
	}
	if n != 45 {
		t.Errorf("%d scans loaded, want 45", n)
	}
	if code, _, _ := cli(t, nil, "ingest", "--batch-rows", "-1", "--kafka-brokers", broker); code != exitUsage {
		t.Errorf("bad --batch-rows: exit %d, want %d", code, exitUsage)
	}
}
