package store_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// A second process opening a data dir in use gets a clear error naming the
// holder.
func TestCHDBDataDirLocked(t *testing.T) {
	if dir := os.Getenv("PATCHGRID_TEST_LOCK_CHILD"); dir != "" {
		_, err := store.Open(context.Background(), store.Config{Backend: "chdb", DataDir: dir, CHDBLib: testenv.CHDBLib(t)})
		if err == nil {
			t.Fatal("opened a data dir another process holds")
		}
		t.Log(err)
		if !strings.Contains(err.Error(), "in use by process "+os.Getenv("PATCHGRID_TEST_LOCK_PARENT")) {
			t.Fatalf("error does not name the holder: %v", err)
		}
		return
	}
	cfg := testenv.CHDBConfig(t)
	st := testenv.CHDBStore(t) // holds cfg.DataDir for the test
	_ = st
	cmd := exec.Command(os.Args[0], "-test.run=^TestCHDBDataDirLocked$", "-test.v")
	cmd.Env = append(os.Environ(), "PATCHGRID_TEST_LOCK_CHILD="+cfg.DataDir, "PATCHGRID_TEST_LOCK_PARENT="+strconv.Itoa(os.Getpid()))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "in use by process") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// One process holds one data dir: a second directory is refused while the
// first is open, instead of rebooting the engine under it.
func TestCHDBSecondDirRefused(t *testing.T) {
	testenv.CHDBStore(t)
	_, err := store.Open(context.Background(), store.Config{Backend: "chdb", DataDir: t.TempDir(), CHDBLib: testenv.CHDBLib(t)})
	if err == nil || !strings.Contains(err.Error(), "one process holds one data dir") {
		t.Fatalf("second dir: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		cfg  store.Config
		want string
	}{
		{store.Config{Backend: "chdb", DataDir: t.TempDir(), CHDBLib: "/nonexistent/libchdb.so"}, "library /nonexistent/libchdb.so not found"},
		{store.Config{Backend: "chdb", CHDBLib: "/x"}, "no data dir"},
		{store.Config{Backend: "clickhouse"}, "no server address"},
		{store.Config{Backend: "clickhouse", Addr: "127.0.0.1:1"}, "127.0.0.1:1"},
		{store.Config{Backend: "mysql"}, "unknown store backend"},
		{store.Config{Backend: "clickhouse", Addr: "x:1", Database: "a-b; DROP"}, "invalid database name"},
	} {
		st, err := store.Open(ctx, tc.cfg)
		if err == nil {
			st.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestCHDBFailedStreamNotReused: a SELECT that fails while streaming leaves
// the rest of its result on its connection; the next statement must not read
// it as its own (it did: "decode column count(): truncated row-binary data").
func TestCHDBFailedStreamNotReused(t *testing.T) {
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	for _, q := range []string{
		"SELECT count() FROM system.numbers SETTINGS max_execution_time = 1",
		"SELECT length(groupArray(number)) FROM numbers(50000000) SETTINGS max_memory_usage = 50000000",
	} {
		if rows, err := st.Query(ctx, q); err == nil {
			for rows.Next() {
			}
			if rows.Err() == nil {
				t.Fatalf("%s: did not fail", q)
			}
			rows.Close()
		}
		for i := 0; i < 3; i++ {
			rows, err := st.Query(ctx, "SELECT 42 AS answer")
			if err != nil {
				t.Fatalf("after %q: %v", q, err)
			}
			var n uint8
			if !rows.Next() || rows.Scan(&n) != nil || n != 42 {
				t.Fatalf("after %q: got %d, %v", q, n, rows.Err())
			}
			rows.Close()
		}
	}
}
