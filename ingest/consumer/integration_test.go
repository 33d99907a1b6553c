package consumer_test

// Integration tests against the real broker and the real ClickHouse server
// (and chDB). Exact counts are read the way analytics reads: with FINAL,
// since redelivery may leave not-yet-merged duplicate rows behind.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/segmentio/kafka-go"

	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// childEnv, when set, makes the test binary a consumer process (see
// TestMain): the SIGKILL test re-executes itself with it.
const childEnv = "PATCHGRID_TEST_INGEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild runs the real consumer until it is killed, with small batches so
// it commits often and a kill lands mid-stream.
func runChild() int {
	get := func(k string) string { return os.Getenv(childEnv + "_" + k) }
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Backend: "clickhouse", Addr: get("CH"), Database: get("DB")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open store:", err)
		return 1
	}
	_, err = consumer.Run(ctx, consumer.Config{
		Brokers: []string{get("BROKER")}, Topic: get("TOPIC"), GroupID: get("GROUP"),
		BatchRows: 300, FlushInterval: 20 * time.Millisecond,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, slowStore{st})
	fmt.Fprintln(os.Stderr, "child: consumer returned:", err)
	return 1
}

// slowStore pauses after each insert, widening the window between an
// insert and its commit so that the kill likely lands inside it and the
// restart has to redeliver rows that are already stored.
type slowStore struct{ store.Store }

func (s slowStore) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	err := s.Store.Insert(ctx, table, columns, rows)
	time.Sleep(40 * time.Millisecond)
	return err
}

// expected is what a stream must load, computed from the messages.
type expected struct {
	scans       int
	hashes      int
	packageRows int // distinct sorting keys per distinct hash
}

func expect(t testing.TB, msgs []simulate.Message) expected {
	t.Helper()
	var e expected
	seen := map[string]bool{}
	for _, m := range msgs {
		s, err := inventory.Decode(m.Value)
		if err != nil {
			continue // poison: dead-lettered, not loaded
		}
		e.scans++
		if s.Heartbeat || seen[s.InventoryHash] {
			continue
		}
		seen[s.InventoryHash] = true
		e.hashes++
		keys := map[[5]string]bool{}
		for _, p := range s.Packages {
			keys[[5]string{p.Ecosystem, p.Name, p.Arch, p.Version, p.Location}] = true
		}
		e.packageRows += len(keys)
	}
	return e
}

type sink struct{ msgs []simulate.Message }

func (s *sink) Send(_ context.Context, b []simulate.Message) error {
	for _, m := range b {
		s.msgs = append(s.msgs, simulate.Message{Key: bytes.Clone(m.Key), Value: bytes.Clone(m.Value)})
	}
	return nil
}

// fleetMessages simulates a fleet with more failures and drift than the
// defaults, so that tests see many distinct package sets.
func fleetMessages(t testing.TB, endpoints, days int) []simulate.Message {
	t.Helper()
	return simulateMessages(t, simulate.Config{Endpoints: endpoints, Days: days, Seed: 3, DriftRate: 0.02, FailureRate: 0.2})
}

func simulateMessages(t testing.TB, cfg simulate.Config) []simulate.Message {
	t.Helper()
	dir := filepath.Join(testenv.SharedData(t), "inventories")
	bases, err := simulate.LoadBases(context.Background(), dir, simulate.ReadInventory, nil)
	if err != nil {
		t.Fatal(err)
	}
	ups, err := simulate.LoadUpgrades(filepath.Join(dir, simulate.UpgradesFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	f, err := simulate.NewFleet(cfg, bases, ups)
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	if _, err := f.Run(context.Background(), s, simulate.RunOptions{ProgressInterval: -1}); err != nil {
		t.Fatal(err)
	}
	return s.msgs
}

// newTopic creates a topic and its DLQ, named after the test.
func newTopic(t testing.TB, broker string, partitions int) string {
	t.Helper()
	name := strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
	topic := fmt.Sprintf("pgtest-%s-%d", strings.ToLower(name), time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, tp := range []string{topic, topic + ".dlq"} {
		if err := publish.EnsureTopic(ctx, []string{broker}, tp, partitions); err != nil {
			t.Fatalf("create topic %s: %v", tp, err)
		}
	}
	return topic
}

func produce(t testing.TB, broker, topic string, msgs []simulate.Message) {
	t.Helper()
	p, err := publish.New(publish.Config{Brokers: []string{broker}, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := (simulate.PublishSink{P: p}).Send(ctx, msgs); err != nil {
		t.Fatalf("produce %d messages: %v", len(msgs), err)
	}
}

func migrate(t testing.TB, st store.Store) {
	t.Helper()
	if _, err := schemas.Migrate(context.Background(), st, nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
}

func count(t testing.TB, st store.Store, q string) uint64 {
	t.Helper()
	rows, err := st.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var n uint64
	if !rows.Next() {
		t.Fatalf("%s: no row (%v)", q, rows.Err())
	}
	if err := rows.Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// checkLoaded compares the tables, read with FINAL, with want.
func checkLoaded(t testing.TB, st store.Store, want expected) {
	t.Helper()
	got := expected{
		scans:       int(count(t, st, "SELECT count() FROM scans FINAL")),
		hashes:      int(count(t, st, "SELECT uniqExact(inventory_hash) FROM inventory_packages FINAL")),
		packageRows: int(count(t, st, "SELECT count() FROM inventory_packages FINAL")),
	}
	if got != want {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	if d := count(t, st, "SELECT uniqExact(scan_id) FROM scans"); int(d) != want.scans {
		t.Errorf("%d distinct scan ids, want %d", d, want.scans)
	}
	// Every scan's hash resolves to a stored package set.
	if n := count(t, st, `SELECT count() FROM (SELECT DISTINCT inventory_hash FROM scans FINAL)
		WHERE inventory_hash NOT IN (SELECT inventory_hash FROM inventory_packages)`); n != 0 {
		t.Errorf("%d scanned hashes have no stored packages", n)
	}
}

// quietLogger sends warnings to the test log while the test runs; client
// goroutines that log after it ends write nowhere (t.Log would panic).
func quietLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func drain(t testing.TB, broker, topic, group string, st store.Store) consumer.Stats {
	t.Helper()
	return drainWith(t, broker, topic, group, st, nil)
}

func drainWith(t testing.TB, broker, topic, group string, st store.Store, set *metrics.Set) consumer.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	stats, err := consumer.Run(ctx, consumer.Config{
		Brokers: []string{broker}, Topic: topic, GroupID: group, Drain: true,
		BatchRows: 5000, FlushInterval: 100 * time.Millisecond,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second,
		Logger: quietLogger(t), Metrics: set,
	}, st)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	return stats
}

// TestExactCounts: two instances of one group share four partitions; N
// endpoints x M days load exactly once per scan and once per package set.
func TestExactCounts(t *testing.T) {
	broker := testenv.Kafka(t)
	st := testenv.ServerStore(t)
	migrate(t, st)
	msgs := fleetMessages(t, 40, 6)
	want := expect(t, msgs)
	topic := newTopic(t, broker, 4)
	produce(t, broker, topic, msgs)

	var wg sync.WaitGroup
	stats := make([]consumer.Stats, 2)
	for i := range stats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats[i] = drain(t, broker, topic, topic+"-group", st)
		}()
	}
	wg.Wait()
	if total := stats[0].Consumed + stats[1].Consumed; total < int64(len(msgs)) {
		t.Errorf("consumed %d of %d messages", total, len(msgs))
	}
	t.Logf("instances consumed %d and %d; want %+v", stats[0].Consumed, stats[1].Consumed, want)
	checkLoaded(t, st, want)
}

// TestExactCountsCHDB runs the same load into the embedded engine.
func TestExactCountsCHDB(t *testing.T) {
	broker := testenv.Kafka(t)
	st := testenv.CHDBStore(t)
	migrate(t, st)
	msgs := fleetMessages(t, 30, 5)
	want := expect(t, msgs)
	topic := newTopic(t, broker, 2)
	produce(t, broker, topic, msgs)
	drain(t, broker, topic, topic+"-group", st)
	checkLoaded(t, st, want)
	// A second group re-reading everything (a full redelivery) changes
	// nothing that FINAL reads.
	drain(t, broker, topic, topic+"-again", st)
	checkLoaded(t, st, want)
}

// TestSurvivesSIGKILL kills a consumer process mid-stream with SIGKILL,
// then lets a new instance of the group finish: every scan loads once.
func TestSurvivesSIGKILL(t *testing.T) {
	broker := testenv.Kafka(t)
	chAddr := testenv.ClickHouse(t)
	st := testenv.ServerStore(t)
	migrate(t, st)
	db := currentDatabase(t, st)
	msgs := fleetMessages(t, 60, 10)
	want := expect(t, msgs)
	topic := newTopic(t, broker, 3)
	produce(t, broker, topic, msgs)
	group := topic + "-group"

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childEnv+"_BROKER="+broker, childEnv+"_TOPIC="+topic,
		childEnv+"_GROUP="+group, childEnv+"_CH="+chAddr, childEnv+"_DB="+db)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	var loaded uint64
	for time.Now().Before(deadline) {
		if loaded = count(t, st, "SELECT count() FROM scans"); loaded >= uint64(want.scans/3) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if loaded == 0 {
		t.Fatalf("child loaded nothing in 90s; its stderr:\n%s", stderr.String())
	}
	before := count(t, st, "SELECT count() FROM scans")
	t.Logf("killed the consumer after %d of %d scan rows", before, want.scans)
	if before >= uint64(want.scans) {
		t.Logf("the child finished before the kill; the restart still has to be a no-op")
	}

	stats := drain(t, broker, topic, group, st)
	raw := count(t, st, "SELECT count() FROM scans")
	t.Logf("restart consumed %d messages; raw scan rows %d (FINAL collapses redelivered ones)", stats.Consumed, raw)
	checkLoaded(t, st, want)
}

func currentDatabase(t testing.TB, st store.Store) string {
	rows, err := st.Query(context.Background(), "SELECT currentDatabase()")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var db string
	if !rows.Next() {
		t.Fatal("no current database")
	}
	if err := rows.Scan(&db); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestPoisonToDLQ: undecodable and invalid messages go to the DLQ with
// their reason and original key and value; the messages around them load.
func TestPoisonToDLQ(t *testing.T) {
	broker := testenv.Kafka(t)
	st := testenv.ServerStore(t)
	migrate(t, st)
	good := fleetMessages(t, 5, 2)
	truncated := bytes.Clone(good[0].Value[:len(good[0].Value)/2])
	poison := []struct {
		value  []byte
		reason inventory.Reason
	}{
		{[]byte("definitely not a scan"), inventory.ReasonBadMagic},
		{truncated, inventory.ReasonBadCompression},
		{append([]byte("PGSC\x09\x00"), 0), inventory.ReasonUnknownVersion},
	}
	var msgs []simulate.Message
	for i, m := range good {
		msgs = append(msgs, m)
		if i < len(poison) {
			msgs = append(msgs, simulate.Message{Key: []byte(fmt.Sprintf("poison-%d", i)), Value: poison[i].value})
		}
	}
	want := expect(t, msgs)
	topic := newTopic(t, broker, 1)
	produce(t, broker, topic, msgs)
	set := metrics.NewSet()
	stats := drainWith(t, broker, topic, topic+"-group", st, set)
	if stats.DeadLettered != int64(len(poison)) {
		t.Errorf("dead-lettered %d, want %d", stats.DeadLettered, len(poison))
	}
	var prom bytes.Buffer
	set.WritePrometheus(&prom)
	for _, line := range []string{
		`patchgrid_ingest_dead_lettered_total{reason="bad_magic"} 1`,
		`patchgrid_ingest_dead_lettered_total{reason="unknown_version"} 1`,
		fmt.Sprintf("patchgrid_ingest_messages_consumed_total %d", len(msgs)),
		fmt.Sprintf(`patchgrid_ingest_rows_inserted_total{table="scans"} %d`, want.scans),
		"patchgrid_ingest_lag_messages 0",
	} {
		if !strings.Contains(prom.String(), line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, prom.String())
		}
	}
	if !strings.Contains(prom.String(), "patchgrid_ingest_batch_duration_seconds_bucket") {
		t.Error("no batch latency histogram")
	}
	checkLoaded(t, st, want)

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic + ".dlq", Partition: 0, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string]kafka.Message{}
	for len(got) < len(poison) {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read DLQ after %d records: %v", len(got), err)
		}
		got[string(m.Key)] = m
	}
	for i, p := range poison {
		m, ok := got[fmt.Sprintf("poison-%d", i)]
		if !ok {
			t.Errorf("poison %d not in the DLQ", i)
			continue
		}
		h := map[string]string{}
		for _, kv := range m.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h[consumer.HeaderReason] != string(p.reason) || h[consumer.HeaderTopic] != topic || h[consumer.HeaderError] == "" {
			t.Errorf("poison %d headers %v, want reason %s", i, h, p.reason)
		}
		if !bytes.Equal(m.Value, p.value) {
			t.Errorf("poison %d value changed in the DLQ", i)
		}
	}
}
