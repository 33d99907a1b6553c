package outcomes_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/ingest/outcomes"
	"github.com/patchgrid/patchgrid/schemas/outcome"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// TestRebalanceMidRun: a second member joins the group while the first is
// loading, and leaves again before the end. Each rebalance ends the first
// member's generation with batches fetched, some inserted and not yet
// committed. Watched all along: the group's committed offsets never cover
// an outcome that is not stored (a commit only after the insert, and none
// through a generation that no longer owns the partition). At the end
// every outcome is stored, once as read with FINAL.
func TestRebalanceMidRun(t *testing.T) {
	broker := testenv.Kafka(t)
	st := testenv.CHDBStore(t)
	migrate(t, st)
	f := newFixture("plan-rebalance", 400)
	f.seed(t, st)
	const partitions = 4
	topic := newTopic(t, broker, partitions)
	produce(t, broker, topic, encode(t, f.outcomes))
	group := topic + "-group"
	at := outcomeAtOffsets(t, broker, topic, partitions, len(f.outcomes))
	total := int64(len(f.outcomes))

	cfg := consumer.Config{
		Brokers: []string{broker}, Topic: topic, GroupID: group,
		BatchRows: 20, FlushInterval: 20 * time.Millisecond,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second, Logger: quietLogger(t),
	}
	slow := pausingStore{Store: st, pause: 60 * time.Millisecond}
	member := func(ctx context.Context) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := outcomes.Run(ctx, cfg, slow)
			done <- err
		}()
		return done
	}

	// The watcher checks the invariant until the test ends.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	var watch sync.WaitGroup
	var violations []string
	checks := 0
	watch.Go(func() {
		for watchCtx.Err() == nil {
			// Committed first: stored only grows, so a row stored after
			// this read cannot hide a violation.
			offs := committedOffsets(t, broker, topic, group, partitions)
			stored := storedKeys(t, st)
			checks++
			for p, off := range offs {
				for o := int64(0); o < off && o < int64(len(at[p])); o++ {
					if !stored[at[p][o]] {
						violations = append(violations, fmt.Sprintf("%d/%d (%s) committed, not stored", p, o, at[p][o]))
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	defer func() {
		stopWatch()
		watch.Wait()
	}()

	waitCommitted := func(min int64, what string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			if sumOffsets(committedOffsets(t, broker, topic, group, partitions)) >= min {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s: the group did not commit %d messages in 90s", what, min)
	}
	ctxA, stopA := context.WithCancel(context.Background())
	defer stopA()
	doneA := member(ctxA)
	waitCommitted(1, "first member alone")
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneB := member(ctxB)
	waitCommitted(total/2, "two members")
	// The second member leaves mid-run: its partitions go back to the
	// first, from the offsets it committed.
	stopB()
	if err := <-doneB; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("second member: %v", err)
	}
	waitCommitted(total, "first member again")
	stopA()
	if err := <-doneA; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("first member: %v", err)
	}
	stopWatch()
	watch.Wait()

	t.Logf("invariant checked %d times", checks)
	if len(violations) > 0 {
		t.Errorf("%d committed offsets ahead of the stored outcomes, first: %s", len(violations), violations[0])
	}
	if got, want := readLoaded(t, st), f.expectLoaded(); got != want {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
}

// pausingStore pauses after each insert of outcomes, so that rebalances
// find batches inserted and not yet committed.
type pausingStore struct {
	store.Store
	pause time.Duration
}

func (s pausingStore) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	err := s.Store.Insert(ctx, table, columns, rows)
	if table == outcomes.Table {
		time.Sleep(s.pause)
	}
	return err
}

// outcomeKey names an outcome as stored: action and attempt.
func outcomeKey(action string, attempt uint32) string { return fmt.Sprintf("%s/%d", action, attempt) }

// outcomeAtOffsets reads the whole topic, partition by partition: which
// outcome is at each offset.
func outcomeAtOffsets(t *testing.T, broker, topic string, partitions, n int) [][]string {
	t.Helper()
	at := make([][]string, partitions)
	read := 0
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for p := range partitions {
		conn, err := kafka.DialLeader(ctx, "tcp", broker, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: p, MaxWait: 200 * time.Millisecond})
		for int64(len(at[p])) < last {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			o, err := outcome.Decode(m.Value)
			if err != nil || m.Offset != int64(len(at[p])) {
				r.Close()
				t.Fatalf("%s/%d@%d: %v (offset expected %d)", topic, p, m.Offset, err, len(at[p]))
			}
			at[p] = append(at[p], outcomeKey(o.ActionID, o.Attempt))
		}
		r.Close()
		read += len(at[p])
	}
	if read != n {
		t.Fatalf("topic holds %d outcomes, want %d", read, n)
	}
	return at
}

// committedOffsets is the group's committed offset per partition (0 for
// none yet, or while the coordinator is not ready).
func committedOffsets(t testing.TB, broker, topic, group string, partitions int) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	offs := map[int]int64{}
	res, err := (&kafka.Client{Addr: kafka.TCP(broker)}).OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil || res.Error != nil {
		return offs
	}
	for _, p := range res.Topics[topic] {
		if p.CommittedOffset > 0 {
			offs[p.Partition] = p.CommittedOffset
		}
	}
	return offs
}

func sumOffsets(offs map[int]int64) int64 {
	var n int64
	for _, o := range offs {
		n += o
	}
	return n
}

// storedKeys is every outcome stored, duplicates not merged yet included.
func storedKeys(t testing.TB, st store.Store) map[string]bool {
	t.Helper()
	rows, err := st.Query(context.Background(), "SELECT action_id, attempt FROM outcomes")
	if err != nil {
		t.Errorf("read outcomes: %v", err)
		return nil
	}
	defer rows.Close()
	keys := map[string]bool{}
	for rows.Next() {
		var action string
		var attempt uint32
		if err := rows.Scan(&action, &attempt); err != nil {
			t.Errorf("read outcomes: %v", err)
			return nil
		}
		keys[outcomeKey(action, attempt)] = true
	}
	return keys
}
