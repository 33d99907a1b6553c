package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

type poolStats interface{ PoolStats() (open, busy, max int) }

// openBounded opens a chDB store on the test process's engine with a pool
// of max connections and the given memory budget.
func openBounded(t *testing.T, conns int, wait time.Duration, budget int64) store.Store {
	t.Helper()
	testenv.CHDBStore(t) // keeps the shared directory for the test
	cfg := testenv.CHDBConfig(t)
	cfg.MaxConns, cfg.AcquireTimeout, cfg.MemoryBudget = conns, wait, budget
	st, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		st.Close()
	})
	return st
}

// The pool never opens more connections than its bound: 12 goroutines
// holding open cursors on a pool of 3 get 3 at a time, the others wait,
// and a waiter past the acquire timeout gets a retryable error.
func TestCHDBPoolBound(t *testing.T) {
	st := openBounded(t, 3, 300*time.Millisecond, 0)
	ctx := context.Background()
	var held []store.Rows
	for range 3 {
		r, err := st.Query(ctx, "SELECT number FROM numbers(10)")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, r)
	}
	open, busy, bound := st.(poolStats).PoolStats()
	if open != 3 || busy != 3 || bound != 3 {
		t.Fatalf("pool: open %d busy %d max %d, want 3 3 3", open, busy, bound)
	}
	_, err := st.Query(ctx, "SELECT 1")
	var pe *store.PoolExhaustedError
	if !errors.As(err, &pe) || !pe.Temporary() || !strings.Contains(err.Error(), "all 3 connections") {
		t.Fatalf("fourth query on a full pool: %v", err)
	}
	// A context that ends first wins over the timeout.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = st.Query(cctx, "SELECT 1")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("query with an expired context on a full pool: %v", err)
	}
	for _, r := range held {
		r.Close()
	}

	st2 := openBounded(t, 3, 10*time.Second, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := 0
	errs := make(chan error, 12)
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := st2.Query(ctx, "SELECT number FROM numbers(1000)")
			if err != nil {
				errs <- err
				return
			}
			open, _, _ := st2.(poolStats).PoolStats()
			mu.Lock()
			peak = max(peak, open)
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			for r.Next() {
			}
			if err := r.Err(); err != nil {
				errs <- err
			}
			r.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if peak > 3 {
		t.Errorf("pool of 3 opened %d connections", peak)
	}
}

// The memory budget is enforced by the engine: a statement needing more
// than half the budget fails with the engine's memory-limit error, a
// small one runs.
func TestCHDBMemoryBudget(t *testing.T) {
	st := openBounded(t, 2, time.Second, 64<<20)
	ctx := context.Background()
	r, err := st.Query(ctx, "SELECT getSetting('max_memory_usage'), getSetting('max_memory_usage_for_user')")
	if err != nil {
		t.Fatal(err)
	}
	var per, total uint64
	for r.Next() {
		if err := r.Scan(&per, &total); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	if per != 32<<20 || total != 64<<20 {
		t.Fatalf("settings: max_memory_usage %d, max_memory_usage_for_user %d", per, total)
	}
	// groupArray keeps every value in memory: 100M UInt64 is 800 MB.
	r, err = st.Query(ctx, "SELECT length(groupArray(number)) FROM numbers(100000000)")
	if err == nil {
		for r.Next() {
		}
		err = r.Err()
		r.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "MEMORY_LIMIT_EXCEEDED") && !strings.Contains(err.Error(), "Memory limit") {
		t.Fatalf("a statement over the budget: %v", err)
	}
	r, err = st.Query(ctx, "SELECT count() FROM numbers(1000)")
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}
