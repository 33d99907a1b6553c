package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/ingest/outcomes"
	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/schemas/outcome"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Deployment outcome ingest (issue 13): N outcomes of one plan published to
// the real Kafka broker and loaded by the outcome consumer (decode, check
// against plan_actions per batch, insert, commit) into chDB, the default
// store (outcomes need ClickHouse 23.8, so not the 2018 server), beside
// the ceiling: the same rows inserted directly into the same store, in the
// same run. Goal: ratio >= 0.5.
//
// The ceiling is the best direct insert measured, so that the ratio is not
// flattered by a slow one: the rows are built before the clock starts, and
// inserted into an empty copy of the table in batches of
// outcomeCeilingBatch rows before each consume (nothing else in the store
// is busy then), and all in one insert after it (the largest insert the
// store takes). The consumer is measured as the ceiling is, best of
// outcomeRounds: each round a new consumer (new group, cold plan check)
// loads the topic from its start into an emptied table. Against one
// consume, a best-of ceiling tilted the ratio by the run-to-run spread of
// this machine (0.34-0.55 over six runs of one build). Every copy is
// checked to hold every row; every sample is kept in the results.
const (
	outcomeIngestGoal = 0.5
	outcomeRounds     = 3
	outcomeDefaultN   = 200000
	outcomeQuickN     = 2000
	// The consumer's default eager insert (BatchRows/4), and the fastest
	// batch size measured on chDB: 200,000 rows took 210-226 ms in
	// batches of 25,000-50,000 rows, 261-270 ms in one or two inserts,
	// and 522 ms in batches of 5,000 (about 10 ms per insert).
	outcomeCeilingBatch  = 25000
	outcomeBenchPlanID   = "pgbench-plan"
	outcomeBenchGroup    = "pgbench-outcomes"
	outcomeBenchDatabase = "patchgrid"
)

func outcomeStep(quick bool) stepSpec {
	n := outcomeDefaultN
	if quick {
		n = outcomeQuickN
	}
	return stepSpec{name: "outcome_ingest", arg: strconv.Itoa(n), needs: []string{"kafka"}}
}

func stepOutcomeIngest(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	n, err := strconv.Atoi(cfg.Arg)
	if err != nil || n < 1 {
		return fmt.Errorf("outcome_ingest: outcome count %q: want a positive integer", cfg.Arg)
	}
	dir := filepath.Join(cfg.Work, "outcome-chdb")
	st, err := openCHDB(ctx, cfg, dir, log)
	if err != nil {
		return err
	}
	defer st.Close()
	ceil, err := store.Open(ctx, store.Config{Backend: "chdb", DataDir: dir, CHDBLib: cfg.CHDBLib, Database: outcomeBenchDatabase + "_ceiling"})
	if err != nil {
		return err
	}
	defer ceil.Close()
	if err := ceil.Exec(ctx, "CREATE TABLE IF NOT EXISTS outcomes AS "+outcomeBenchDatabase+".outcomes"); err != nil {
		return fmt.Errorf("ceiling table: %w", err)
	}

	if err := seedBenchPlan(ctx, st, benchOutcomes(n)); err != nil {
		return err
	}
	// The ceiling inserts rows built from the outcomes before the clock
	// starts: no Kafka, no decoding, no plan check, no row building. They
	// are built for each run and dropped after it, as are the outcomes and
	// messages once published, so that the consumer's garbage collection
	// does not scan the bench's data.
	insertCeiling := func(batch int) (time.Duration, error) {
		if err := ceil.Exec(ctx, "TRUNCATE TABLE outcomes"); err != nil {
			return 0, fmt.Errorf("ceiling: empty the table: %w", err)
		}
		rows := outcomes.Rows(benchOutcomes(n), time.Now())
		runtime.GC()
		t0 := time.Now()
		for lo := 0; lo < n; lo += batch {
			if err := ceil.Insert(ctx, outcomes.Table, outcomes.Columns, rows[lo:min(lo+batch, n)]); err != nil {
				return 0, fmt.Errorf("ceiling insert: %w", err)
			}
		}
		d := time.Since(t0)
		var got uint64
		if err := queryCount(ctx, ceil, "SELECT count() FROM outcomes", &got); err != nil || got != uint64(n) {
			return 0, fmt.Errorf("ceiling table holds %d rows of %d (%v)", got, n, err)
		}
		log.Info("ceiling inserted", "rows", n, "batch", batch, "took", d.Round(time.Millisecond), "rows_per_s", int(float64(n)/d.Seconds()))
		return d, nil
	}
	// CPU seconds per phase (this process holds chDB too): on shared cores
	// they tell a slow phase from a starved one.
	cpu := newCPUMeter(map[string]int{"kafka": servicePID(cfg.RunDir, "kafka")})
	topic := "pgbench." + cfg.RunID + ".outcomes"
	brokers := []string{cfg.Kafka}
	defer func() {
		if err := deleteTopics(cfg.Kafka, topic, topic+".dlq"); err != nil {
			log.Warn("delete topics", "err", err)
		}
	}()
	for _, t := range []struct {
		name string
		n    int
	}{{topic, 4}, {topic + ".dlq", 1}} {
		if err := publish.EnsureTopic(ctx, brokers, t.name, t.n); err != nil {
			return err
		}
	}
	msgBytes, pubD, err := publishOutcomes(ctx, brokers, topic, n)
	if err != nil {
		return err
	}
	log.Info("published", "outcomes", n, "bytes", msgBytes, "took", pubD.Round(time.Millisecond))
	cpu.phase(out.Info, "publish")

	// consume loads the topic from its start with a new consumer.
	consume := func(round int) (time.Duration, consumer.SinkStats, error) {
		if err := st.Exec(ctx, "TRUNCATE TABLE outcomes"); err != nil {
			return 0, consumer.SinkStats{}, fmt.Errorf("consume: empty the table: %w", err)
		}
		runtime.GC()
		stopProf := func() {}
		if round == 0 {
			if stopProf, err = startCPUProfile(log, "outcome-consume"); err != nil {
				return 0, consumer.SinkStats{}, err
			}
		}
		t0 := time.Now()
		stats, err := outcomes.Run(ctx, consumer.Config{Brokers: brokers, Topic: topic, GroupID: fmt.Sprintf("%s-%d", outcomeBenchGroup, round),
			Drain: true, Logger: quiet(log), ProgressInterval: -1}, st)
		d := time.Since(t0)
		stopProf()
		if err != nil {
			return 0, consumer.SinkStats{}, fmt.Errorf("consume: %w", err)
		}
		log.Info("consumed", "round", round+1, "messages", stats.Consumed, "rows", stats.Rows, "dead_lettered", stats.DeadLettered, "took", d.Round(time.Millisecond))
		if stats.Rows != int64(n) || stats.DeadLettered != 0 {
			return 0, consumer.SinkStats{}, fmt.Errorf("consumer loaded %d rows and dead-lettered %d of %d outcomes", stats.Rows, stats.DeadLettered, n)
		}
		var stored uint64
		if err := queryCount(ctx, st, "SELECT count() FROM outcomes FINAL", &stored); err != nil || stored != uint64(n) {
			return 0, consumer.SinkStats{}, fmt.Errorf("outcomes table holds %d rows of %d (%v)", stored, n, err)
		}
		return d, stats, nil
	}

	var ceilBatchD, ceilWholeD, ingD time.Duration
	var batches int64
	best := func(best *time.Duration, d time.Duration) {
		if *best == 0 || d < *best {
			*best = d
		}
	}
	for round := range outcomeRounds {
		suffix := fmt.Sprintf("_%d", round+1)
		d, err := insertCeiling(outcomeCeilingBatch)
		if err != nil {
			return err
		}
		best(&ceilBatchD, d)
		out.Info["ceiling_batches_s"+suffix] = d.Seconds()
		cpu.phase(out.Info, "ceiling_batches"+suffix)
		d, stats, err := consume(round)
		if err != nil {
			return err
		}
		best(&ingD, d)
		batches = stats.Batches
		out.Info["consume_s"+suffix], out.Info["batches"+suffix] = d.Seconds(), stats.Batches
		cpu.phase(out.Info, "consume"+suffix)
		if d, err = insertCeiling(n); err != nil {
			return err
		}
		best(&ceilWholeD, d)
		out.Info["ceiling_whole_s"+suffix] = d.Seconds()
		cpu.phase(out.Info, "ceiling_whole"+suffix)
	}
	insD := min(ceilBatchD, ceilWholeD)

	rate, ceilRate := float64(n)/ingD.Seconds(), float64(n)/insD.Seconds()
	out.Info["outcomes"], out.Info["message_bytes"], out.Info["rounds"] = n, msgBytes, outcomeRounds
	out.Info["publish_s"], out.Info["consume_s"] = pubD.Seconds(), ingD.Seconds()
	out.Info["ceiling_batches_s"], out.Info["ceiling_whole_s"], out.Info["ceiling_s"] = ceilBatchD.Seconds(), ceilWholeD.Seconds(), insD.Seconds()
	out.Info["consume_rows_per_s"], out.Info["ceiling_rows_per_s"], out.Info["ratio"] = round(rate, 0), round(ceilRate, 0), round(rate/ceilRate, 3)
	log.Info("outcome ingest", "consumer_rows_per_s", int(rate), "ceiling_rows_per_s", int(ceilRate), "ratio", round(rate/ceilRate, 3), "goal", outcomeIngestGoal)
	m := ratio(Metric{Name: "outcome ingest (consumer, Kafka → chDB)", Value: rate, Unit: "rows/s", Better: "higher",
		Note: fmt.Sprintf("goal ratio >= %.1f; %d outcomes, %d batches, best of %d consumes, publish %.1fs (not counted)", outcomeIngestGoal, n, batches, outcomeRounds, pubD.Seconds())},
		fmt.Sprintf("ceiling: store.Insert of the same prebuilt rows into the same store, best of %d rounds of %d-row batches (%.0f rows/s) and one insert (%.0f rows/s)",
			outcomeRounds, outcomeCeilingBatch, float64(n)/ceilBatchD.Seconds(), float64(n)/ceilWholeD.Seconds()), ceilRate)
	out.Metrics = append(out.Metrics, m)
	return nil
}

// publishOutcomes publishes benchOutcomes(n) to topic and returns their
// encoded size and how long publishing took.
func publishOutcomes(ctx context.Context, brokers []string, topic string, n int) (int, time.Duration, error) {
	msgs := make([]publish.Message, n)
	var msgBytes int
	for i, o := range benchOutcomes(n) {
		b, err := outcome.Encode(o)
		if err != nil {
			return 0, 0, err
		}
		msgs[i] = publish.Message{Key: []byte(o.HostID), Value: b}
		msgBytes += len(b)
	}
	prod, err := publish.New(producerConfig(brokers, topic))
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	for lo := 0; lo < n; lo += 10000 {
		if err := prod.PublishBatch(ctx, msgs[lo:min(lo+10000, n)]); err != nil {
			prod.Close()
			return 0, 0, fmt.Errorf("publish: %w", err)
		}
	}
	if err := prod.Close(); err != nil {
		return 0, 0, fmt.Errorf("publish: %w", err)
	}
	return msgBytes, time.Since(t0), nil
}

// benchOutcomes is one succeeded outcome for each of n actions of one plan.
func benchOutcomes(n int) []outcome.Outcome {
	start := time.Date(2026, 11, 2, 22, 0, 0, 0, time.UTC)
	outs := make([]outcome.Outcome, n)
	for i := range outs {
		outs[i] = outcome.Outcome{
			SchemaVersion: outcome.Version,
			PlanID:        outcomeBenchPlanID, ActionID: fmt.Sprintf("act-%07d", i), HostID: fmt.Sprintf("host-%07d", i),
			Package: "openssl", FromVersion: "3.0.2-0ubuntu1.10", ToVersion: "3.0.2-0ubuntu1.12",
			Status: outcome.Succeeded, Attempt: 1,
			StartedAt: start.Add(time.Duration(i) * time.Millisecond), FinishedAt: start.Add(time.Duration(i)*time.Millisecond + 30*time.Second),
		}
	}
	return outs
}

// seedBenchPlan stores the plan and actions the outcomes refer to.
func seedBenchPlan(ctx context.Context, st store.Store, outs []outcome.Outcome) error {
	if err := st.Insert(ctx, "plans", []string{"plan_id", "created_at", "actions"},
		[][]any{{outcomeBenchPlanID, time.Now().UTC(), uint64(len(outs))}}); err != nil {
		return fmt.Errorf("seed plan: %w", err)
	}
	rows := make([][]any, len(outs))
	for i, o := range outs {
		rows[i] = []any{o.PlanID, o.ActionID, uint32(i + 1), o.HostID, o.Package, o.FromVersion, o.ToVersion}
	}
	if err := st.Insert(ctx, "plan_actions", []string{"plan_id", "action_id", "rank", "host_id", "package", "installed_version", "target_version"}, rows); err != nil {
		return fmt.Errorf("seed plan actions: %w", err)
	}
	return nil
}
