package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
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
// the ceiling: the same rows inserted directly into the same store in the
// consumer's batch size, in the same run. Goal: ratio >= 0.5.
const (
	outcomeIngestGoal    = 0.5
	outcomeDefaultN      = 200000
	outcomeQuickN        = 2000
	outcomeCeilingBatch  = 100000 // the consumer's default BatchRows
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

	outs := benchOutcomes(n)
	if err := seedBenchPlan(ctx, st, outs); err != nil {
		return err
	}
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
	msgs := make([]publish.Message, n)
	var msgBytes int
	for i, o := range outs {
		b, err := outcome.Encode(o)
		if err != nil {
			return err
		}
		msgs[i] = publish.Message{Key: []byte(o.HostID), Value: b}
		msgBytes += len(b)
	}
	prod, err := publish.New(producerConfig(brokers, topic))
	if err != nil {
		return err
	}
	t0 := time.Now()
	for lo := 0; lo < n; lo += 10000 {
		if err := prod.PublishBatch(ctx, msgs[lo:min(lo+10000, n)]); err != nil {
			prod.Close()
			return fmt.Errorf("publish: %w", err)
		}
	}
	if err := prod.Close(); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	pubD := time.Since(t0)
	log.Info("published", "outcomes", n, "bytes", msgBytes, "took", pubD.Round(time.Millisecond))

	stopProf, err := startCPUProfile(log, "outcome-consume")
	if err != nil {
		return err
	}
	// CPU seconds per phase (this process holds chDB too): on shared cores
	// they tell a slow phase from a starved one.
	cpu := newCPUMeter(map[string]int{"kafka": servicePID(cfg.RunDir, "kafka")})
	t0 = time.Now()
	stats, err := outcomes.Run(ctx, consumer.Config{Brokers: brokers, Topic: topic, GroupID: outcomeBenchGroup, Drain: true,
		Logger: quiet(log), ProgressInterval: -1}, st)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	ingD := time.Since(t0)
	stopProf()
	cpu.phase(out.Info, "consume")
	log.Info("consumed", "messages", stats.Consumed, "rows", stats.Rows, "dead_lettered", stats.DeadLettered, "took", ingD.Round(time.Millisecond))
	if stats.Rows != int64(n) || stats.DeadLettered != 0 {
		return fmt.Errorf("consumer loaded %d rows and dead-lettered %d of %d outcomes", stats.Rows, stats.DeadLettered, n)
	}

	// The ceiling: the same rows, built from the decoded outcomes, into
	// the same store in the consumer's batch size; no Kafka, no decoding,
	// no plan check.
	rows := make([][]any, n)
	now := time.Now()
	for i, o := range outs {
		rows[i] = outcomes.Row(o, now)
	}
	t0 = time.Now()
	for lo := 0; lo < n; lo += outcomeCeilingBatch {
		if err := ceil.Insert(ctx, outcomes.Table, outcomes.Columns, rows[lo:min(lo+outcomeCeilingBatch, n)]); err != nil {
			return fmt.Errorf("ceiling insert: %w", err)
		}
	}
	insD := time.Since(t0)
	cpu.phase(out.Info, "ceiling")
	log.Info("ceiling inserted", "rows", n, "took", insD.Round(time.Millisecond))

	out.Info["outcomes"], out.Info["message_bytes"], out.Info["batches"] = n, msgBytes, stats.Batches
	out.Info["publish_s"], out.Info["consume_s"], out.Info["ceiling_s"] = pubD.Seconds(), ingD.Seconds(), insD.Seconds()
	rate, ceilRate := float64(n)/ingD.Seconds(), float64(n)/insD.Seconds()
	m := ratio(Metric{Name: "outcome ingest (consumer, Kafka → chDB)", Value: rate, Unit: "rows/s", Better: "higher",
		Note: fmt.Sprintf("goal ratio >= %.1f; %d outcomes, %d batches, publish %.1fs (not counted)", outcomeIngestGoal, n, stats.Batches, pubD.Seconds())},
		"ceiling: store.Insert of the same rows into the same store", ceilRate)
	out.Metrics = append(out.Metrics, m)
	return nil
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
