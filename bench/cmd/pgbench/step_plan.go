package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/analytics/risk"
)

// Remediation planner (issue 12): `plan create` under the sample policy
// (groups, windows, a freeze, three rings, blast radius, emergency path)
// on the bench fleet of cfg.KPIHosts endpoints (100,000 × 90 days, built
// as the kpi step builds it), beside the ceiling of reading the open
// exposures once (the planner's former read: every row decoded into Go,
// nothing built). Goals: at most 10 s and 2 GB peak RSS for plan create.
//
// The peak is the process's VmHWM over plan create alone: building the
// fleet (the pipeline, a full match and refresh) peaks far higher, so the
// high-water mark is reset (/proc/self/clear_refs) once the fleet is
// built and the store reopened. chDB runs in this process, so the
// engine's memory is in the figure.
const (
	planGoalSeconds = 10
	planGoalMB      = 2048
)

func stepPlan(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	dir := cfg.Work + "/plan-fleet"
	defer os.RemoveAll(dir)
	st, err := openCHDB(ctx, cfg, dir, log)
	if err != nil {
		return err
	}
	scratch := StepOutput{Info: map[string]any{}}
	err = buildKPIFleet(ctx, cfg, st, log, &scratch)
	st.Close()
	if err != nil {
		return fmt.Errorf("build the plan fleet: %w", err)
	}
	out.Info["fleet_endpoints"], out.Info["fleet_days"] = cfg.KPIHosts, cfg.KPIDays
	debug.FreeOSMemory()
	if st, err = openCHDB(ctx, cfg, dir, log); err != nil {
		return err
	}
	defer st.Close()
	pol, err := policy.Parse("sample.yaml", policy.SampleYAML)
	if err != nil {
		return err
	}

	resetPeakRSS(log)
	t0 := time.Now()
	var n int64
	if err := plan.ReadFindings(ctx, st, risk.Filter{}, func(*plan.Finding) { n++ }); err != nil {
		return err
	}
	read := time.Since(t0)
	readPeak := peakRSSMB(os.Getpid())
	log.Info("open exposures read", "findings", n, "took", read.Round(time.Millisecond), "peak_rss_mb", int(readPeak))

	debug.FreeOSMemory()
	resetPeakRSS(log)
	t0 = time.Now()
	s, err := plan.Create(ctx, st, plan.CreateOptions{Actor: "pgbench", Policy: pol, Log: log})
	if err != nil {
		return err
	}
	took := time.Since(t0)
	peak := peakRSSMB(os.Getpid())
	log.Info("plan create", "findings", s.Findings, "actions", s.Actions, "took", took.Round(time.Millisecond), "peak_rss_mb", int(peak))
	out.Info["open_findings"] = n
	out.Info["plan_actions"] = s.Actions
	out.Info["plan_hosts"] = s.Hosts
	out.Info["plan_no_fix"] = s.NoFix
	out.Info["plan_end_of_life"] = s.EndOfLife
	out.Info["plan_waves"] = s.Waves
	out.Metrics = append(out.Metrics,
		ratio(Metric{Name: "plan create", Value: took.Seconds(), Unit: "s", Better: "lower",
			Note: fmt.Sprintf("goal <= %d s; %d findings -> %d actions on %d hosts (%d scheduled, %d late, %d unscheduled, %d emergency), %d waves, %d no fix",
				planGoalSeconds, s.Findings, s.Actions, s.Hosts, s.Scheduled, s.Late, s.Unscheduled, s.Emergency, s.Waves, s.NoFix)},
			"ceiling: reading the open exposures once", read.Seconds()),
		ratio(Metric{Name: "plan create peak RSS", Value: peak, Unit: "MB", Better: "lower",
			Note: fmt.Sprintf("VmHWM over plan create alone (chDB in process); reading the exposures once peaked at %.0f MB", readPeak)},
			"ceiling: the goal, 2 GB", planGoalMB),
	)
	return nil
}

// resetPeakRSS restarts the process's VmHWM at its current RSS (Linux
// clear_refs 5), so the next peakRSSMB covers what follows only.
func resetPeakRSS(log *slog.Logger) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		log.Warn("cannot reset the peak RSS: the figure covers the whole step", "err", err)
	}
}
