package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/ingest/outcomes"
	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/schemas/outcome"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// TestOutcomesSurviveBrokerRestart is TestSurvivesBrokerRestart for the
// generic core (RunSink), through its outcome sink: the broker crashes
// (SIGKILL) while outcomes load into chDB and restarts on the same data;
// the consumer carries on by itself and every outcome is stored once.
// It lives here for the private broker of broker_test.go.
func TestOutcomesSurviveBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker of its own")
	}
	b := startPrivateBroker(t)
	st := testenv.CHDBStore(t)
	migrate(t, st)
	const n = 2000
	ctx := context.Background()
	if err := st.Insert(ctx, "plans", []string{"plan_id", "created_at", "actions"}, [][]any{{"plan-restart", time.Now().UTC(), uint64(n)}}); err != nil {
		t.Fatal(err)
	}
	var actions [][]any
	var msgs []publish.Message
	start := time.Date(2026, 11, 2, 22, 0, 0, 0, time.UTC)
	for i := range n {
		o := outcome.Outcome{PlanID: "plan-restart", ActionID: fmt.Sprintf("a%05d", i), HostID: fmt.Sprintf("h%05d", i),
			Package: "bash", ToVersion: "5.2-1", Status: outcome.Succeeded, Attempt: 1, StartedAt: start, FinishedAt: start.Add(time.Minute)}
		actions = append(actions, []any{o.PlanID, o.ActionID, uint32(i + 1), o.HostID, o.Package})
		v, err := outcome.Encode(o)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, publish.Message{Key: []byte(o.HostID), Value: v})
	}
	if err := st.Insert(ctx, "plan_actions", []string{"plan_id", "action_id", "rank", "host_id", "package"}, actions); err != nil {
		t.Fatal(err)
	}
	topic := newTopic(t, b.addr, 2)
	p, err := publish.New(publish.Config{Brokers: []string{b.addr}, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PublishBatch(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	p.Close()

	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var (
		wg     sync.WaitGroup
		stats  consumer.SinkStats
		runErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		stats, runErr = outcomes.Run(rctx, consumer.Config{
			Brokers: []string{b.addr}, Topic: topic, GroupID: topic + "-group", Drain: true,
			BatchRows: 50, EagerRows: 50, FlushInterval: 20 * time.Millisecond, RetryBackoffMax: time.Second,
			SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second,
			Logger: quietLogger(t),
		}, slowStore{st})
	}()
	for count(t, st, "SELECT count() FROM outcomes") < n/4 {
		if rctx.Err() != nil {
			t.Fatal("consumer loaded nothing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := count(t, st, "SELECT count() FROM outcomes")
	b.kill()
	time.Sleep(2 * time.Second)
	b.start()
	t.Logf("broker killed after %d of %d outcome rows and restarted", before, n)
	wg.Wait()
	if runErr != nil {
		t.Fatalf("consumer: %v", runErr)
	}
	t.Logf("consumer: %+v", stats)
	if got := count(t, st, "SELECT count() FROM outcomes FINAL"); got != n {
		t.Errorf("%d outcomes stored, want %d", got, n)
	}
	if got := count(t, st, "SELECT uniqExact(plan_id, action_id, attempt) FROM outcomes"); got != n {
		t.Errorf("%d distinct outcome keys, want %d", got, n)
	}
}
