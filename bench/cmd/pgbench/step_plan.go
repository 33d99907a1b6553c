package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/analytics/risk"
)

// Remediation planner (issue 12): `plan create` under the sample policy
// (groups, windows, a freeze, three rings, blast radius, emergency path)
// on the export fleet, beside the ceiling of reading the open exposures
// once (the planner's own read, every row decoded, nothing built). Goals:
// at most 10 s and 2 GB peak RSS (the step's rusage) on 100,000 endpoints.
const planGoalSeconds = 10

func stepPlan(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	if err := ensureFixture(ctx, cfg, log, out); err != nil {
		return err
	}
	st, err := openCHDB(ctx, cfg, fixtureDir(cfg), log)
	if err != nil {
		return err
	}
	defer st.Close()
	pol, err := policy.Parse("sample.yaml", policy.SampleYAML)
	if err != nil {
		return err
	}
	t0 := time.Now()
	var n int64
	if err := plan.ReadFindings(ctx, st, risk.Filter{}, func(*plan.Finding) { n++ }); err != nil {
		return err
	}
	read := time.Since(t0)
	t0 = time.Now()
	p, err := plan.Create(ctx, st, plan.CreateOptions{Actor: "pgbench", Policy: pol})
	if err != nil {
		return err
	}
	took := time.Since(t0)
	sched, late, unsched, emerg, _ := p.Counts()
	log.Info("plan create", "findings", n, "actions", len(p.Actions), "took", took.Round(time.Millisecond))
	out.Info["open_findings"] = n
	out.Info["plan_actions"] = len(p.Actions)
	out.Info["plan_waves"] = p.Waves
	out.Metrics = append(out.Metrics,
		ratio(Metric{Name: "plan create", Value: took.Seconds(), Unit: "s", Better: "lower",
			Note: fmt.Sprintf("goal <= %d s; %d findings -> %d actions (%d scheduled, %d late, %d unscheduled, %d emergency), %d waves",
				planGoalSeconds, n, len(p.Actions), sched, late, unsched, emerg, p.Waves)},
			"ceiling: reading the open exposures once", read.Seconds()),
	)
	return nil
}
