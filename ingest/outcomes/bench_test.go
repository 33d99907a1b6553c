package outcomes_test

import (
	"context"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/ingest/outcomes"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// BenchmarkCheck: checking a 100,000-outcome batch (the consumer's batch
// size) against chDB's plan_actions, with the plan not yet in memory
// (cold: the first batch of a plan, which reads the whole plan) and in
// memory (warm: every later batch).
func BenchmarkCheck(b *testing.B) {
	st := testenv.CHDBStore(b)
	migrate(b, st)
	f := newFixture("benchcheck", 80000) // 100,000 outcomes
	f.seed(b, st)
	ctx := context.Background()
	check := func(c *outcomes.Checker) {
		verdicts, err := c.Check(ctx, f.outcomes)
		if err != nil {
			b.Fatal(err)
		}
		for i, v := range verdicts {
			if v != nil {
				b.Fatalf("outcome %d refused: %v", i, v)
			}
		}
	}
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			check(outcomes.NewChecker(st))
		}
		b.ReportMetric(float64(b.N*len(f.outcomes))/b.Elapsed().Seconds(), "outcomes/s")
	})
	b.Run("warm", func(b *testing.B) {
		c := outcomes.NewChecker(st)
		check(c)
		b.ReportAllocs()
		for b.Loop() {
			check(c)
		}
		b.ReportMetric(float64(b.N*len(f.outcomes))/b.Elapsed().Seconds(), "outcomes/s")
	})
}

// BenchmarkConsume: the whole consumer, from the real broker into chDB, of
// a plan's 50,000 outcomes (62,500 messages) per iteration, each iteration
// with a topic and a group of its own. bench/cmd/pgbench's outcome_ingest
// measures it at full size beside the direct-insert ceiling.
func BenchmarkConsume(b *testing.B) {
	broker := testenv.Kafka(b)
	st := testenv.CHDBStore(b)
	migrate(b, st)
	f := newFixture("benchconsume", 50000)
	f.seed(b, st)
	msgs := encode(b, f.outcomes)
	var consumed time.Duration
	for b.Loop() {
		b.StopTimer()
		topic := newTopic(b, broker, 4)
		produce(b, broker, topic, msgs)
		b.StartTimer()
		t0 := time.Now()
		stats, err := outcomes.Run(context.Background(), consumer.Config{
			Brokers: []string{broker}, Topic: topic, GroupID: topic + "-group", Drain: true,
			Logger: quietLogger(b), ProgressInterval: -1,
		}, st)
		consumed += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if stats.Rows != int64(len(msgs)) || stats.DeadLettered != 0 {
			b.Fatalf("loaded %d rows and dead-lettered %d of %d outcomes", stats.Rows, stats.DeadLettered, len(msgs))
		}
	}
	b.ReportMetric(float64(b.N*len(msgs))/consumed.Seconds(), "outcomes/s")
}
