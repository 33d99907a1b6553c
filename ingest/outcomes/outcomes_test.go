package outcomes_test

// Integration tests of the outcome consumer against the real Kafka broker
// and chDB (outcomes need ClickHouse 23.8: migration 0013 does not run on
// the 2018 server). Counts are read with FINAL, as analytics reads them.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/VictoriaMetrics/metrics"
	"github.com/segmentio/kafka-go"

	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/ingest/outcomes"
	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/outcome"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// childEnv, when set, makes the test binary a helper process (see
// TestMain): the SIGKILL test runs the consumer, and everything touching
// its chDB directory, in processes of their own (one process holds one
// chDB directory).
const childEnv = "PATCHGRID_TEST_OUTCOME_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

// fixture is one plan with n actions, one host each, and the outcomes of a
// deployment: every action tried once, every fourth failed and tried again.
type fixture struct {
	plan     string
	actions  int
	outcomes []outcome.Outcome
}

func newFixture(plan string, actions int) fixture {
	f := fixture{plan: plan, actions: actions}
	start := time.Date(2026, 11, 2, 22, 0, 0, 0, time.UTC)
	for i := range actions {
		o := outcome.Outcome{
			PlanID: plan, ActionID: fmt.Sprintf("%s-a%04d", plan, i), HostID: fmt.Sprintf("host-%04d", i),
			Package: "openssl", FromVersion: "3.0.2-0ubuntu1.10", ToVersion: "3.0.2-0ubuntu1.12",
			Status: outcome.Succeeded, Attempt: 1, StartedAt: start.Add(time.Duration(i) * time.Second),
			FinishedAt: start.Add(time.Duration(i)*time.Second + 40*time.Second),
		}
		if i%4 == 0 {
			o.Status, o.Error = outcome.Failed, "dpkg: error processing package openssl"
			f.outcomes = append(f.outcomes, o)
			o.Attempt, o.Status, o.Error = 2, outcome.Succeeded, ""
			o.StartedAt, o.FinishedAt = o.StartedAt.Add(24*time.Hour), o.FinishedAt.Add(24*time.Hour)
			o.RebootRequired = true
		}
		f.outcomes = append(f.outcomes, o)
	}
	return f
}

// seed stores the fixture's plan and actions.
func (f fixture) seed(t testing.TB, st store.Store) {
	t.Helper()
	ctx := context.Background()
	if err := st.Insert(ctx, "plans", []string{"plan_id", "created_at", "actions"},
		[][]any{{f.plan, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), uint64(f.actions)}}); err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for i := range f.actions {
		rows = append(rows, []any{f.plan, fmt.Sprintf("%s-a%04d", f.plan, i), uint32(i + 1), fmt.Sprintf("host-%04d", i),
			"openssl", "3.0.2-0ubuntu1.10", "3.0.2-0ubuntu1.12"})
	}
	if err := st.Insert(ctx, "plan_actions", []string{"plan_id", "action_id", "rank", "host_id", "package",
		"installed_version", "target_version"}, rows); err != nil {
		t.Fatal(err)
	}
}

func encode(t testing.TB, outs []outcome.Outcome) []publish.Message {
	t.Helper()
	msgs := make([]publish.Message, len(outs))
	for i, o := range outs {
		b, err := outcome.Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = publish.Message{Key: []byte(o.HostID), Value: b}
	}
	return msgs
}

func newTopic(t testing.TB, broker string, partitions int) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	topic := fmt.Sprintf("pgtest-%s-%d", name, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, tp := range []string{topic, topic + ".dlq"} {
		if err := publish.EnsureTopic(ctx, []string{broker}, tp, partitions); err != nil {
			t.Fatalf("create topic %s: %v", tp, err)
		}
	}
	return topic
}

func produce(t testing.TB, broker, topic string, msgs []publish.Message) {
	t.Helper()
	p, err := publish.New(publish.Config{Brokers: []string{broker}, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.PublishBatch(ctx, msgs); err != nil {
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

// loaded is what the tables hold, as analytics reads them.
type loaded struct {
	Rows, Current, Retried, Failed uint64
}

// expectLoaded is what a fixture's outcomes must load.
func (f fixture) expectLoaded() loaded {
	retried := uint64((f.actions + 3) / 4)
	return loaded{Rows: uint64(f.actions) + retried, Current: uint64(f.actions), Retried: retried}
}

func readLoaded(t testing.TB, st store.Store) loaded {
	t.Helper()
	return loaded{
		Rows:    count(t, st, "SELECT count() FROM outcomes FINAL"),
		Current: count(t, st, "SELECT count() FROM outcomes_current"),
		Retried: count(t, st, "SELECT count() FROM outcomes_current WHERE attempts = 2 AND attempt = 2 AND status = 'succeeded' AND reboot_required = 1"),
		// The latest attempt of every action succeeded.
		Failed: count(t, st, "SELECT count() FROM outcomes_current WHERE status != 'succeeded'"),
	}
}

// quietLogger sends warnings to the test log while the test runs.
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

func drain(t testing.TB, broker, topic string, st store.Store, set *metrics.Set) consumer.SinkStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stats, err := outcomes.Run(ctx, consumer.Config{
		Brokers: []string{broker}, Topic: topic, GroupID: topic + "-group", Drain: true,
		BatchRows: 50, FlushInterval: 50 * time.Millisecond,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second,
		Logger: quietLogger(t), Metrics: set,
	}, st)
	if err != nil {
		t.Fatalf("outcome consumer: %v", err)
	}
	return stats
}

// dlqRecord is one dead-letter record: its reason, error and value.
type dlqRecord struct{ reason, err, value string }

// readDLQ reads n records of topic's DLQ.
func readDLQ(t testing.TB, broker, topic string, n int) []dlqRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic + ".dlq", GroupID: topic + "-dlq-check",
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	var out []dlqRecord
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read DLQ after %d records: %v", len(out), err)
		}
		h := map[string]string{}
		for _, kv := range m.Headers {
			h[kv.Key] = string(kv.Value)
		}
		out = append(out, dlqRecord{reason: h[consumer.HeaderReason], err: h[consumer.HeaderError], value: string(m.Value)})
	}
	return out
}

// TestConsumeOutcomes: a plan's outcomes load exactly once each (one of
// them published twice); malformed messages, outcomes of an unknown plan
// or action, and one naming another host go to the DLQ with their reason,
// while everything else flows.
func TestConsumeOutcomes(t *testing.T) {
	broker := testenv.Kafka(t)
	st := testenv.CHDBStore(t)
	migrate(t, st)
	f := newFixture("plan-happy", 40)
	f.seed(t, st)

	msgs := encode(t, f.outcomes)
	msgs = append(msgs, msgs[3]) // redelivered by automation: no second row
	unknownPlan, unknownAction, otherHost := f.outcomes[5], f.outcomes[6], f.outcomes[7]
	unknownPlan.PlanID = "plan-nope"
	unknownAction.ActionID = "plan-happy-a9999"
	otherHost.HostID = "host-evil"
	bad := encode(t, []outcome.Outcome{unknownPlan, unknownAction, otherHost})
	poison := []publish.Message{
		{Key: []byte("host-0001"), Value: []byte("\x00\x01 not json")},
		{Key: []byte("host-0002"), Value: []byte(`{"version":1,"plan_id":"plan-happy","reboot_requried":true}`)},
	}
	// Interleaved, so that bad messages share batches with good ones.
	var all []publish.Message
	for i, m := range msgs {
		all = append(all, m)
		if i == 10 {
			all = append(all, poison[0], bad[0])
		}
		if i == 30 {
			all = append(all, bad[1], poison[1], bad[2])
		}
	}
	topic := newTopic(t, broker, 3)
	produce(t, broker, topic, all)

	set := metrics.NewSet()
	stats := drain(t, broker, topic, st, set)
	if got, want := readLoaded(t, st), f.expectLoaded(); got != want {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	if stats.Consumed != int64(len(all)) || stats.DeadLettered != 5 {
		t.Errorf("stats %+v, want %d consumed, 5 dead-lettered", stats, len(all))
	}
	reasons := map[string][]dlqRecord{}
	for _, r := range readDLQ(t, broker, topic, 5) {
		reasons[r.reason] = append(reasons[r.reason], r)
	}
	for _, c := range []struct {
		reason, mention string
		n               int
	}{
		{consumer.ReasonInvalid, "", 2},
		{outcomes.ReasonUnknownPlan, `"plan-nope"`, 1},
		{outcomes.ReasonUnknownAction, `"plan-happy-a9999"`, 1},
		{outcomes.ReasonActionMismatch, `"host-evil"`, 1},
	} {
		if len(reasons[c.reason]) != c.n {
			t.Errorf("%d DLQ records with reason %s, want %d (all: %+v)", len(reasons[c.reason]), c.reason, c.n, reasons)
			continue
		}
		if !strings.Contains(reasons[c.reason][0].err, c.mention) {
			t.Errorf("DLQ %s error %q does not name %s", c.reason, reasons[c.reason][0].err, c.mention)
		}
	}
	for _, r := range reasons[consumer.ReasonInvalid] {
		if !strings.Contains(r.err, "malformed outcome") {
			t.Errorf("invalid message's DLQ error %q is not the decoder's", r.err)
		}
	}
	var prom bytes.Buffer
	set.WritePrometheus(&prom)
	for _, want := range []string{
		fmt.Sprintf("patchgrid_outcome_ingest_messages_consumed_total %d", len(all)),
		fmt.Sprintf(`patchgrid_outcome_ingest_rows_inserted_total{table="outcomes"} %d`, len(msgs)),
		`patchgrid_outcome_ingest_dead_lettered_total{reason="unknown_plan"} 1`,
		`patchgrid_outcome_ingest_dead_lettered_total{reason="invalid"} 2`,
	} {
		if !strings.Contains(prom.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, prom.String())
		}
	}
}

// TestDrainTwiceInOneGroup: automation drains the topic once per
// simulated day with the same consumer group. Each run must leave the
// group when it returns: a member left behind keeps its partitions, and
// the next run of the group waits for them forever.
func TestDrainTwiceInOneGroup(t *testing.T) {
	broker := testenv.Kafka(t)
	st := testenv.CHDBStore(t)
	migrate(t, st)
	f := newFixture("plan-twice", 20)
	f.seed(t, st)
	msgs := encode(t, f.outcomes)
	half := len(msgs) / 2
	topic := newTopic(t, broker, 3)
	produce(t, broker, topic, msgs[:half])
	if stats := drain(t, broker, topic, st, nil); stats.Consumed != int64(half) {
		t.Fatalf("first drain consumed %d, want %d", stats.Consumed, half)
	}
	produce(t, broker, topic, msgs[half:])
	if stats := drain(t, broker, topic, st, nil); stats.Consumed != int64(len(msgs)-half) {
		t.Fatalf("second drain consumed %d, want %d", stats.Consumed, len(msgs)-half)
	}
	if got, want := readLoaded(t, st), f.expectLoaded(); got != want {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
}

// rejectingStore refuses, as a server would with TYPE_MISMATCH, every
// outcomes insert holding a package named "reject-*": an error that names
// no row, so the consumer finds the messages by bisection.
type rejectingStore struct{ store.Store }

func (s rejectingStore) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	if table == outcomes.Table {
		for _, r := range rows {
			if strings.HasPrefix(r[4].(string), "reject-") {
				return &clickhouse.Exception{Code: 53, Name: "DB::Exception", Message: "Type mismatch for column package (test)"}
			}
		}
	}
	return s.Store.Insert(ctx, table, columns, rows)
}

// TestStoreRejectsOutcome: outcomes whose rows the store refuses for good
// go to the DLQ with reason store_rejected; the rest of their batches load.
func TestStoreRejectsOutcome(t *testing.T) {
	broker := testenv.Kafka(t)
	st := testenv.CHDBStore(t)
	migrate(t, st)
	f := newFixture("plan-reject", 30)
	f.seed(t, st)
	// Two actions whose package the store refuses.
	for _, i := range []int{7, 19} {
		if err := st.Exec(context.Background(), "ALTER TABLE plan_actions UPDATE package = 'reject-me' WHERE action_id = ? SETTINGS mutations_sync = 1",
			fmt.Sprintf("plan-reject-a%04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	outs := append([]outcome.Outcome(nil), f.outcomes...)
	rejected := 0
	for i := range outs {
		if outs[i].ActionID == "plan-reject-a0007" || outs[i].ActionID == "plan-reject-a0019" {
			outs[i].Package = "reject-me"
			rejected++
		}
	}
	topic := newTopic(t, broker, 2)
	produce(t, broker, topic, encode(t, outs))
	stats := drain(t, broker, topic, rejectingStore{st}, nil)
	if want := uint64(len(outs) - rejected); count(t, st, "SELECT count() FROM outcomes FINAL") != want {
		t.Errorf("%d rows, want %d", count(t, st, "SELECT count() FROM outcomes FINAL"), want)
	}
	if stats.DeadLettered != int64(rejected) {
		t.Errorf("dead-lettered %d, want %d", stats.DeadLettered, rejected)
	}
	for _, r := range readDLQ(t, broker, topic, rejected) {
		if r.reason != consumer.ReasonStoreRejected || !strings.Contains(r.err, "Type mismatch") {
			t.Errorf("DLQ record %s: %s, want store_rejected with the store's error", r.reason, r.err)
		}
	}
}

// runChild is a helper process of TestSurvivesSIGKILL. Modes: "seed"
// (migrate, store the plan), "consume" (run the consumer until killed,
// small batches and a slow store so the kill lands between an insert and
// its commit), "drain" (finish the topic, print what is loaded as JSON).
func runChild(mode string) int {
	get := func(k string) string { return os.Getenv(childEnv + "_" + k) }
	ctx := context.Background()
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", mode, err)
		return 1
	}
	st, err := store.Open(ctx, store.Config{Backend: "chdb", CHDBLib: get("LIB"), DataDir: get("DIR"), Database: "outcomes_kill"})
	if err != nil {
		return fail(err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := consumer.Config{
		Brokers: []string{get("BROKER")}, Topic: get("TOPIC"), GroupID: get("TOPIC") + "-group",
		BatchRows: 20, FlushInterval: 20 * time.Millisecond,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second, Logger: log,
	}
	switch mode {
	case "seed":
		tb := &childTB{}
		migrate(tb, st)
		newFixture("plan-kill", 300).seed(tb, st)
		if tb.err != nil {
			return fail(tb.err)
		}
		return 0
	case "consume":
		_, err := outcomes.Run(ctx, cfg, slowStore{st})
		return fail(fmt.Errorf("consumer returned: %v", err))
	case "drain":
		cfg.Drain = true
		tb := &childTB{}
		before := count(tb, st, "SELECT uniqExact(plan_id, action_id, attempt) FROM outcomes")
		dctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		stats, err := outcomes.Run(dctx, cfg, st)
		if err != nil {
			return fail(err)
		}
		got := readLoaded(tb, st)
		got2 := count(tb, st, "SELECT uniqExact(plan_id, action_id, attempt) FROM outcomes")
		if tb.err != nil {
			return fail(tb.err)
		}
		raw := count(tb, st, "SELECT count() FROM outcomes")
		json.NewEncoder(os.Stdout).Encode(map[string]any{"loaded": got, "distinct": got2, "raw": raw, "consumed": stats.Consumed, "stored_before": before})
		return 0
	}
	return fail(errors.New("unknown mode"))
}

// childTB lets the helpers above run outside a test: the first failure is
// kept.
type childTB struct {
	testing.TB
	err error
}

func (c *childTB) Helper() {}
func (c *childTB) Fatal(args ...any) {
	if c.err == nil {
		c.err = errors.New(fmt.Sprint(args...))
	}
}
func (c *childTB) Fatalf(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

// slowStore pauses after each insert, widening the window between an
// insert and its commit, so the kill likely lands inside it and the
// restart redelivers rows already stored.
type slowStore struct{ store.Store }

func (s slowStore) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	err := s.Store.Insert(ctx, table, columns, rows)
	if err == nil && table == outcomes.Table {
		fmt.Println("inserted")
	}
	time.Sleep(150 * time.Millisecond)
	return err
}

// committed is how many messages the group has committed on topic.
func committed(t testing.TB, broker, topic, group string, partitions int) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	res, err := (&kafka.Client{Addr: kafka.TCP(broker)}).OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil || res.Error != nil {
		return 0 // the group's coordinator is not ready yet
	}
	var n int64
	for _, p := range res.Topics[topic] {
		if p.CommittedOffset > 0 {
			n += p.CommittedOffset
		}
	}
	return n
}

// TestSurvivesSIGKILL kills a consumer process with SIGKILL mid-stream,
// then lets a new member of the group finish: every (plan, action,
// attempt) is stored once, none lost, none twice (read with FINAL; the
// raw count shows the redelivered rows FINAL collapses).
func TestSurvivesSIGKILL(t *testing.T) {
	broker := testenv.Kafka(t)
	lib := testenv.CHDBLib(t)
	dir := t.TempDir()
	f := newFixture("plan-kill", 300)
	topic := newTopic(t, broker, 3)
	produce(t, broker, topic, encode(t, f.outcomes))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := func(mode string) *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+mode, childEnv+"_BROKER="+broker, childEnv+"_TOPIC="+topic,
			childEnv+"_LIB="+lib, childEnv+"_DIR="+dir)
		return cmd
	}
	if out, err := child("seed").CombinedOutput(); err != nil {
		t.Fatalf("seed: %v\n%s", err, out)
	}
	cmd := child("consume")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The child says "inserted" after each insert, before the 150 ms its
	// slow store waits, and so before the commit.
	inserted := make(chan struct{}, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "inserted" {
				inserted <- struct{}{}
			}
		}
	}()
	total := int64(len(f.outcomes))
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && committed(t, broker, topic, topic+"-group", 3) < total/3 {
		time.Sleep(10 * time.Millisecond)
	}
	// Kill it between an insert and its commit: the restart must
	// redeliver rows that are stored already, and store them once.
	for len(inserted) > 0 {
		<-inserted
	}
	select {
	case <-inserted:
	case <-time.After(30 * time.Second):
		t.Logf("no insert after a third was committed; killing anyway")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	done := committed(t, broker, topic, topic+"-group", 3)
	if done == 0 {
		t.Fatalf("child committed nothing in 90s; its stderr:\n%s", stderr.String())
	}
	t.Logf("killed the consumer after %d of %d messages were committed", done, total)
	d := child("drain")
	var out, derr bytes.Buffer
	d.Stdout, d.Stderr = &out, &derr
	if err := d.Run(); err != nil {
		t.Fatalf("drain: %v\n%s", err, derr.String())
	}
	var res struct {
		Loaded       loaded
		Distinct     uint64
		Raw          uint64
		Consumed     int64  // by the restart
		StoredBefore uint64 `json:"stored_before"` // distinct rows stored when the restart began
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("drain output %q: %v", out.String(), err)
	}
	t.Logf("after the restart: %+v", res)
	// More rows stored than messages committed: the restart redelivered
	// stored rows.
	if done < total && res.StoredBefore <= uint64(done) {
		t.Errorf("%d rows stored and %d messages committed at the kill: it did not land between an insert and its commit", res.StoredBefore, done)
	}
	if want := f.expectLoaded(); res.Loaded != want || res.Distinct != want.Rows {
		t.Errorf("loaded %+v (%d distinct keys), want %+v", res.Loaded, res.Distinct, want)
	}
}
