// Package testenv finds the real services tests run against: a ClickHouse
// server, a Kafka broker, the chDB library and the shared test data.
//
// Each finder skips the test with the reason when its service is absent, and
// fails it instead when CI=true: in CI a missing service is a broken setup,
// never a reason to pass.
//
// Stores: ServerStore gives a test its own freshly created database on the
// server (dropped afterwards), so parallel tests and packages never collide.
// CHDBStore gives a test its own database inside the embedded engine. chDB
// holds one data directory per process, so all CHDBStore calls in one test
// binary share one engine on one temporary directory (booted on first use,
// shut down and removed when the last store of the moment closes); tests
// isolate themselves by database, never by directory. Code under test
// should receive the store.Store (or its Config) rather than open the
// directory itself.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: a missing service fails the test)", what)
		return
	}
	t.Skip(what)
}

// ClickHouse is the native-protocol host:port of the test server, from
// PATCHGRID_TEST_CLICKHOUSE.
func ClickHouse(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("PATCHGRID_TEST_CLICKHOUSE")
	if addr == "" {
		missing(t, "no ClickHouse server: set PATCHGRID_TEST_CLICKHOUSE=host:port (make test starts one)")
	}
	return addr
}

// Kafka is the bootstrap host:port of the test broker, from
// PATCHGRID_TEST_KAFKA.
func Kafka(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("PATCHGRID_TEST_KAFKA")
	if addr == "" {
		missing(t, "no Kafka broker: set PATCHGRID_TEST_KAFKA=host:port (make test starts one)")
	}
	return addr
}

// CHDBLib is the path of libchdb.so: PATCHGRID_CHDB_LIB, else the default
// cache location when the file is there.
func CHDBLib(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PATCHGRID_CHDB_LIB"); p != "" {
		if _, err := os.Stat(p); err != nil {
			missing(t, fmt.Sprintf("PATCHGRID_CHDB_LIB=%s: %v", p, err))
		}
		return p
	}
	p := store.DefaultCHDBLib(os.Getenv)
	if _, err := os.Stat(p); err != nil {
		missing(t, "no chDB library: set PATCHGRID_CHDB_LIB or install it at "+p)
	}
	return p
}

// SharedData is the shared test corpus: PATCHGRID_SHARED_DATA, else
// ../shared/data found by walking up from the test's working directory.
func SharedData(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PATCHGRID_SHARED_DATA"); p != "" {
		if st, err := os.Stat(p); err != nil || !st.IsDir() {
			missing(t, "PATCHGRID_SHARED_DATA="+p+" is not a directory")
		}
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		missing(t, "shared data: "+err.Error())
	}
	for {
		cand := filepath.Join(dir, "..", "shared", "data")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return filepath.Clean(cand)
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	missing(t, "no shared test data: ../shared/data not found above the repo; set PATCHGRID_SHARED_DATA")
	return ""
}

var dbSeq atomic.Int64

// DatabaseName is a database name unique to this test, this process and
// this call.
func DatabaseName(t testing.TB) string {
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 32 {
			break
		}
	}
	return fmt.Sprintf("t_%s_%d_%d", b.String(), os.Getpid(), dbSeq.Add(1))
}

// ServerStore opens a store on the test ClickHouse server in a new database
// of its own, dropped when the test ends.
func ServerStore(t testing.TB) store.Store {
	t.Helper()
	addr := ClickHouse(t)
	db := DatabaseName(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Config{Backend: "clickhouse", Addr: addr, Database: db})
	if err != nil {
		t.Fatalf("open ClickHouse store at %s: %v", addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := st.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("drop test database: %v", err)
		}
		st.Close()
	})
	return st
}

// The shared chDB directory of this test process.
var shared struct {
	sync.Mutex
	dir  string
	refs int
}

// CHDBConfig is the store.Config CHDBStore uses: the process's shared
// chDB directory and a fresh database. It is for tests of code that opens
// the store itself; the directory stays valid while a CHDBStore of the same
// test is open.
func CHDBConfig(t testing.TB) store.Config {
	t.Helper()
	return chdbConfig(t, false)
}

func chdbConfig(t testing.TB, ref bool) store.Config {
	t.Helper()
	lib := CHDBLib(t)
	shared.Lock()
	defer shared.Unlock()
	if ref {
		shared.refs++
	}
	if shared.dir == "" {
		dir, err := os.MkdirTemp("", "patchgrid-chdb-test-")
		if err != nil {
			t.Fatal(err)
		}
		shared.dir = dir
	}
	return store.Config{Backend: "chdb", CHDBLib: lib, DataDir: shared.dir, Database: DatabaseName(t)}
}

// CHDBStore opens a store on the embedded engine in a database of its own.
func CHDBStore(t testing.TB) store.Store {
	t.Helper()
	cfg := chdbConfig(t, true)
	release := func() {
		shared.Lock()
		defer shared.Unlock()
		shared.refs--
		if shared.refs == 0 {
			os.RemoveAll(shared.dir)
			shared.dir = ""
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := store.Open(ctx, cfg)
	if err != nil {
		release()
		t.Fatalf("open chDB store: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := st.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
			t.Errorf("drop test database: %v", err)
		}
		st.Close()
		release()
	})
	return st
}

// DropDatabase drops db on the server at addr, for tests whose code under
// test created it through its own store.
func DropDatabase(t testing.TB, addr, db string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Config{Backend: "clickhouse", Addr: addr, Database: "default"})
	if err != nil {
		t.Errorf("drop test database %s: %v", db, err)
		return
	}
	defer st.Close()
	if err := st.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		t.Errorf("drop test database %s: %v", db, err)
	}
}
