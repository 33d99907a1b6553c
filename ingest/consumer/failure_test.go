package consumer_test

// Failures of the store that must neither stall a partition nor lose data:
// rows the schema refuses (dead-lettered, the rest flows), a server restart
// in the middle of a load (waited out), and a consumer killed while it is
// dead-lettering a storm of refused messages (nothing lost).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/VictoriaMetrics/metrics"
	"github.com/segmentio/kafka-go"

	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// restrictRings narrows scans.ring to the simulator's rings: a scan from a
// ring the schema does not know ("canary") is refused by the store, as
// after a migration that tightened a column.
func restrictRings(t testing.TB, st store.Store) {
	t.Helper()
	if err := st.Exec(context.Background(),
		"ALTER TABLE scans MODIFY COLUMN ring Enum8('' = 0, 'test' = 1, 'pilot' = 2, 'prod' = 3)"); err != nil {
		t.Fatal(err)
	}
}

// spoil rewrites the messages whose index satisfies bad with edit, and
// returns their keys and indexes.
func spoil(t testing.TB, msgs []simulate.Message, bad func(i int) bool, edit func(s *inventory.Scan)) map[int]bool {
	t.Helper()
	spoiled := map[int]bool{}
	for i := range msgs {
		if !bad(i) {
			continue
		}
		s, err := inventory.Decode(msgs[i].Value)
		if err != nil {
			t.Fatal(err)
		}
		edit(s)
		if msgs[i].Value, err = inventory.Encode(s); err != nil {
			t.Fatal(err)
		}
		spoiled[i] = true
	}
	return spoiled
}

// rejectingStore refuses, as a server would with TYPE_MISMATCH, every scans
// insert holding a host whose name starts with "reject-": an error that
// names no row, so the consumer has to find the messages by bisection.
type rejectingStore struct{ store.Store }

func (s rejectingStore) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	if table == "scans" {
		for _, r := range rows {
			if strings.HasPrefix(r[4].(string), "reject-") {
				return &clickhouse.Exception{Code: 53, Name: "DB::Exception", Message: "Type mismatch for column hostname (test)"}
			}
		}
	}
	return s.Store.Insert(ctx, table, columns, rows)
}

// dlqOffsets reads the DLQ topic of topic until it holds want records with
// the given reason, and returns the source offsets ("partition/offset").
func dlqOffsets(t testing.TB, broker, topic, reason string, want int) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := map[string]int{}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic + ".dlq", GroupID: topic + "-dlq-check",
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	for n := 0; len(got) < want; n++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read DLQ after %d distinct records: %v", len(got), err)
		}
		h := map[string]string{}
		for _, kv := range m.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h[consumer.HeaderReason] != reason {
			continue
		}
		if h[consumer.HeaderError] == "" {
			t.Errorf("DLQ record without an error: %v", h)
		}
		got[h[consumer.HeaderPartition]+"/"+h[consumer.HeaderOffset]]++
	}
	return got
}

// sourceOffsets maps the messages at idx to "partition/offset" by reading
// the topic back: what the DLQ records must name.
func sourceOffsets(t testing.TB, broker, topic string, msgs []simulate.Message, idx map[int]bool) map[string]bool {
	t.Helper()
	byValue := map[string]bool{}
	for i := range idx {
		byValue[string(msgs[i].Value)] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, GroupID: topic + "-source-check",
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	out := map[string]bool{}
	for n := 0; n < len(msgs); n++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read back %s: %v", topic, err)
		}
		if byValue[string(m.Value)] {
			out[strconv.Itoa(m.Partition)+"/"+strconv.FormatInt(m.Offset, 10)] = true
		}
	}
	return out
}

// TestStoreRejectsToDLQ: messages whose rows the store refuses go to the
// DLQ with the store's reason, found by the row the store names (an enum
// value the schema lacks) or by bisection (an error naming no row), while
// every other message loads.
func TestStoreRejectsToDLQ(t *testing.T) {
	broker := testenv.Kafka(t)
	st := testenv.ServerStore(t)
	migrate(t, st)
	restrictRings(t, st)
	msgs := fleetMessages(t, 12, 4)
	canary := spoil(t, msgs, func(i int) bool { return i%17 == 3 }, func(s *inventory.Scan) { s.Meta.Ring = "canary" })
	renamed := spoil(t, msgs, func(i int) bool { return i%17 == 11 }, func(s *inventory.Scan) { s.Hostname = "reject-" + s.Hostname })
	want := expect(t, msgs) // every package set is stored: the refused rows are scan rows
	want.scans -= len(canary) + len(renamed)
	topic := newTopic(t, broker, 2)
	produce(t, broker, topic, msgs)

	set := metrics.NewSet()
	stats := drainWith(t, broker, topic, topic+"-group", rejectingStore{st}, set)
	if n := int64(len(canary) + len(renamed)); stats.DeadLettered != n {
		t.Errorf("dead-lettered %d, want %d", stats.DeadLettered, n)
	}
	checkLoaded(t, st, want)
	var prom bytes.Buffer
	set.WritePrometheus(&prom)
	for _, line := range []string{
		fmt.Sprintf(`patchgrid_ingest_dead_lettered_total{reason="store_rejected"} %d`, len(canary)+len(renamed)),
		fmt.Sprintf(`patchgrid_ingest_rows_inserted_total{table="scans"} %d`, want.scans),
		`patchgrid_ingest_insert_errors_total{class="permanent"}`,
	} {
		if !strings.Contains(prom.String(), line) {
			t.Errorf("metrics lack %q:\n%s", line, prom.String())
		}
	}
	wantDLQ := sourceOffsets(t, broker, topic, msgs, mergeSets(canary, renamed))
	got := dlqOffsets(t, broker, topic, consumer.ReasonStoreRejected, len(wantDLQ))
	for k := range wantDLQ {
		if got[k] == 0 {
			t.Errorf("refused message %s not in the DLQ", k)
		}
	}
}

func mergeSets(a, b map[int]bool) map[int]bool {
	out := map[int]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// TestSurvivesClickHouseRestart kills a private ClickHouse server while a
// consumer is loading into it, starts it again on the same data, and
// expects the consumer to wait it out and load every scan exactly once.
func TestSurvivesClickHouseRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ClickHouse server of its own")
	}
	broker := testenv.Kafka(t)
	srv := testenv.StartClickHouse(t, testenv.ClickHouseOptions{TCPPort: 29003, HTTPPort: 29004})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, store.Config{Backend: "clickhouse", Addr: srv.Addr, Database: "restart_test", DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	migrate(t, st)
	msgs := fleetMessages(t, 40, 8)
	want := expect(t, msgs)
	topic := newTopic(t, broker, 2)
	produce(t, broker, topic, msgs)

	set := metrics.NewSet()
	var (
		wg     sync.WaitGroup
		stats  consumer.Stats
		runErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		stats, runErr = consumer.Run(ctx, consumer.Config{
			Brokers: []string{broker}, Topic: topic, GroupID: topic + "-group", Drain: true,
			BatchRows: 2000, FlushInterval: 20 * time.Millisecond, RetryBackoffMax: 500 * time.Millisecond,
			SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second,
			Logger: quietLogger(t), Metrics: set,
		}, slowStore{st})
	}()
	for count(t, st, "SELECT count() FROM scans") < uint64(want.scans/4) {
		if ctx.Err() != nil {
			t.Fatal("consumer loaded nothing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := count(t, st, "SELECT count() FROM scans")
	srv.Kill()
	time.Sleep(time.Second)
	srv.Start()
	t.Logf("ClickHouse killed after %d of %d scan rows, back in %v", before, want.scans, srv.StartupTime())
	wg.Wait()
	if runErr != nil {
		t.Fatalf("consumer: %v", runErr)
	}
	t.Logf("consumer: %+v", stats)
	checkLoaded(t, st, want)
	var prom bytes.Buffer
	set.WritePrometheus(&prom)
	if !strings.Contains(prom.String(), `patchgrid_ingest_insert_errors_total{class="temporary"}`) {
		t.Errorf("no temporary insert error counted across the restart:\n%s", prom.String())
	}
	if strings.Contains(prom.String(), "store_rejected") {
		t.Errorf("a restart dead-lettered messages:\n%s", prom.String())
	}
}

// TestSIGKILLDuringRejectStorm kills a consumer process with SIGKILL while
// a third of the stream is being refused by the store and dead-lettered;
// a new instance finishes: every good scan is loaded once and every
// refused message is in the DLQ (some twice: at-least-once).
func TestSIGKILLDuringRejectStorm(t *testing.T) {
	broker := testenv.Kafka(t)
	chAddr := testenv.ClickHouse(t)
	st := testenv.ServerStore(t)
	migrate(t, st)
	restrictRings(t, st)
	db := currentDatabase(t, st)
	msgs := fleetMessages(t, 30, 6)
	bad := spoil(t, msgs, func(i int) bool { return i%3 == 1 }, func(s *inventory.Scan) { s.Meta.Ring = "canary" })
	want := expect(t, msgs)
	want.scans -= len(bad)
	topic := newTopic(t, broker, 2)
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
	// A batch's good rows become visible only after its refused messages
	// are dead-lettered, so loaded rows mean the storm was under way.
	dlqBefore := strings.Count(stderr.String(), "dead-lettering message")
	if dlqBefore == 0 {
		t.Errorf("the child dead-lettered nothing before the kill; its stderr:\n%s", stderr.String())
	}
	t.Logf("killed the consumer after %d of %d scan rows and %d dead-letterings", loaded, want.scans, dlqBefore)

	stats := drain(t, broker, topic, group, st)
	t.Logf("restart: %+v", stats)
	checkLoaded(t, st, want)
	wantDLQ := sourceOffsets(t, broker, topic, msgs, bad)
	got := dlqOffsets(t, broker, topic, consumer.ReasonStoreRejected, len(wantDLQ))
	for k := range wantDLQ {
		if got[k] == 0 {
			t.Errorf("refused message %s not in the DLQ", k)
		}
	}
}

// TestRefusedPackageSet: the store refuses one package set (a row of it,
// with an error naming no row). Every full scan of that set, whether it
// carried the rows or relied on another message (in its batch or in the
// batch before) that did, goes to the DLQ; everything else loads, and no
// stored scan points at a missing package set.
func TestRefusedPackageSet(t *testing.T) {
	broker := testenv.Kafka(t)
	st := testenv.CHDBStore(t) // the embedded engine: the other failure tests use the server
	migrate(t, st)
	all := fleetMessages(t, 16, 6)
	// The most common package set among full scans is the one to spoil.
	counts := map[string]int{}
	scans := make([]*inventory.Scan, len(all))
	for i, m := range all {
		s, err := inventory.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		scans[i] = s
		if !s.Heartbeat {
			counts[s.InventoryHash]++
		}
	}
	var target string
	for h, n := range counts {
		if n > counts[target] {
			target = h
		}
	}
	var msgs []simulate.Message
	bad := map[int]bool{}
	for i, s := range scans {
		if s.InventoryHash != target {
			msgs = append(msgs, all[i])
			continue
		}
		if s.Heartbeat {
			continue // would point at the refused set: heartbeats are loaded as they are
		}
		s.Packages = append(s.Packages, inventory.Package{Ecosystem: s.Packages[0].Ecosystem, Name: "reject-me", Version: "1.0"})
		s.InventoryHash = inventory.HashPackages(s.Packages)
		v, err := inventory.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		bad[len(msgs)] = true
		msgs = append(msgs, simulate.Message{Key: all[i].Key, Value: v})
	}
	var good []simulate.Message
	for i, m := range msgs {
		if !bad[i] {
			good = append(good, m)
		}
	}
	want := expect(t, good)
	topic := newTopic(t, broker, 1)
	produce(t, broker, topic, msgs)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stats, err := consumer.Run(ctx, consumer.Config{
		Brokers: []string{broker}, Topic: topic, GroupID: topic + "-group", Drain: true,
		BatchRows: 400, FlushInterval: 10 * time.Millisecond,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second, Logger: quietLogger(t),
	}, packageRejectingStore{slowStore{st}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d messages carry the refused set; consumer: %+v", len(bad), len(msgs), stats)
	if stats.DeadLettered != int64(len(bad)) {
		t.Errorf("dead-lettered %d, want %d", stats.DeadLettered, len(bad))
	}
	checkLoaded(t, st, want)
	wantDLQ := sourceOffsets(t, broker, topic, msgs, bad)
	got := dlqOffsets(t, broker, topic, consumer.ReasonStoreRejected, len(wantDLQ))
	for k := range wantDLQ {
		if got[k] == 0 {
			t.Errorf("refused message %s not in the DLQ", k)
		}
	}
}

// packageRejectingStore refuses every inventory_packages insert holding a
// package named "reject-me", naming no row.
type packageRejectingStore struct{ store.Store }

func (s packageRejectingStore) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	if table == "inventory_packages" {
		for _, r := range rows {
			if r[2] == "reject-me" {
				return &clickhouse.Exception{Code: 117, Name: "DB::Exception", Message: "Incorrect data (test)"}
			}
		}
	}
	return s.Store.Insert(ctx, table, columns, rows)
}

// TestColumnDroppedByMigration: the stall. A migration drops a
// column the consumer writes; every scan row is refused for good. The
// consumer dead-letters each message once (a statement error condemns the
// whole statement at once: no bisection) and drains the topic instead of
// retrying forever.
func TestColumnDroppedByMigration(t *testing.T) {
	broker := testenv.Kafka(t)
	st := testenv.ServerStore(t)
	migrate(t, st)
	if err := st.Exec(context.Background(), "ALTER TABLE scans DROP COLUMN warnings"); err != nil {
		t.Fatal(err)
	}
	msgs := fleetMessages(t, 8, 3)
	topic := newTopic(t, broker, 2)
	produce(t, broker, topic, msgs)
	set := metrics.NewSet()
	start := time.Now()
	stats := drainWith(t, broker, topic, topic+"-group", st, set)
	t.Logf("drained %d messages in %v: %+v", len(msgs), time.Since(start).Round(time.Millisecond), stats)
	if stats.DeadLettered != int64(len(msgs)) || stats.ScanRows != 0 {
		t.Errorf("dead-lettered %d of %d, %d scan rows inserted", stats.DeadLettered, len(msgs), stats.ScanRows)
	}
	var prom bytes.Buffer
	set.WritePrometheus(&prom)
	if !strings.Contains(prom.String(), fmt.Sprintf(`patchgrid_ingest_dead_lettered_total{reason="store_rejected"} %d`, len(msgs))) {
		t.Errorf("metrics:\n%s", prom.String())
	}
	got := dlqOffsets(t, broker, topic, consumer.ReasonStoreRejected, len(msgs))
	for k, n := range got {
		if n != 1 {
			t.Errorf("message %s dead-lettered %d times", k, n)
		}
	}
}
