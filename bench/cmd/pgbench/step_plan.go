package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"time"

	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas/store"
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
// engine's memory is in the figure. $PGBENCH_PLAN_FLEET keeps the built
// fleet for the next run (planFleetEnv).
const (
	planGoalSeconds = 10
	planGoalMB      = 2048
)

func stepPlan(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	dir, reused, err := planFleet(ctx, cfg, log, out)
	if os.Getenv(planFleetEnv) == "" {
		defer os.RemoveAll(dir)
	}
	if err != nil {
		return err
	}
	out.Info["fleet_endpoints"], out.Info["fleet_days"], out.Info["fleet_reused"] = cfg.KPIHosts, cfg.KPIDays, reused
	debug.FreeOSMemory()
	st, err := openCHDB(ctx, cfg, dir, log)
	if err != nil {
		return err
	}
	defer st.Close()
	pol, err := policy.Parse("sample.yaml", policy.SampleYAML)
	if err != nil {
		return err
	}

	// Both are timed planReps times, alternating, and the medians compared:
	// on two shared cores one run can take several times another.
	reps := min(max(cfg.Reps, 1), planReps)
	var reads, creates []time.Duration
	var readPeak, peak float64
	var n int64
	var s plan.Summary
	for range reps {
		releaseRetained(ctx, st, log)
		resetPeakRSS(log)
		t0 := time.Now()
		n = 0
		if err := plan.ReadFindings(ctx, st, risk.Filter{}, func(*plan.Finding) { n++ }); err != nil {
			return err
		}
		reads = append(reads, time.Since(t0))
		readPeak = max(readPeak, peakRSSMB(os.Getpid()))
		log.Info("open exposures read", "findings", n, "took", reads[len(reads)-1].Round(time.Millisecond), "peak_rss_mb", int(readPeak))

		releaseRetained(ctx, st, log)
		resetPeakRSS(log)
		t0 = time.Now()
		if s, err = plan.Create(ctx, st, plan.CreateOptions{Actor: "pgbench", Policy: pol, Log: log}); err != nil {
			return err
		}
		creates = append(creates, time.Since(t0))
		peak = max(peak, peakRSSMB(os.Getpid()))
		log.Info("plan create", "findings", s.Findings, "actions", s.Actions, "took", creates[len(creates)-1].Round(time.Millisecond), "peak_rss_mb", int(peak))
	}
	read, took := percentile(reads, 0.5), percentile(creates, 0.5)
	out.Info["open_findings"] = n
	out.Info["plan_actions"] = s.Actions
	out.Info["plan_hosts"] = s.Hosts
	out.Info["plan_no_fix"] = s.NoFix
	out.Info["plan_end_of_life"] = s.EndOfLife
	out.Info["plan_waves"] = s.Waves
	out.Info["plan_reps"] = reps
	out.Info["plan_create_s"], out.Info["open_exposures_read_s"] = seconds(creates), seconds(reads)
	out.Metrics = append(out.Metrics,
		ratio(Metric{Name: "plan create", Value: took.Seconds(), Unit: "s", Better: "lower",
			Note: fmt.Sprintf("goal <= %d s; median of %d runs (%.1f to %.1f s); %d findings -> %d actions on %d hosts (%d scheduled, %d late, %d unscheduled, %d emergency), %d waves, %d no fix",
				planGoalSeconds, reps, slices.Min(creates).Seconds(), slices.Max(creates).Seconds(),
				s.Findings, s.Actions, s.Hosts, s.Scheduled, s.Late, s.Unscheduled, s.Emergency, s.Waves, s.NoFix)},
			"ceiling: reading the open exposures once (median)", read.Seconds()),
		ratio(Metric{Name: "plan create peak RSS", Value: peak, Unit: "MB", Better: "lower",
			Note: fmt.Sprintf("VmHWM over plan create alone, the highest of %d runs (chDB in process); reading the exposures once peaked at %.0f MB", reps, readPeak)},
			"ceiling: the goal, 2 GB", planGoalMB),
	)
	return nil
}

// planReps caps the plan step's repetitions (cfg.Reps, 20 by default, is
// for sub-second latencies).
const planReps = 5

func seconds(d []time.Duration) []float64 {
	out := make([]float64, len(d))
	for i, x := range d {
		out[i] = round(x.Seconds(), 3)
	}
	return out
}

// planFleetEnv names a directory where the plan step keeps its built fleet
// across runs (off by default: the fleet is built in the run's scratch
// directory and removed). Building the 100,000 × 90-day fleet takes a
// quarter of an hour; plan create alone takes seconds, so iterating on the
// planner reuses the fleet. The directory is reused only when its marker
// names the same fleet size (endpoints, base, days); else it is rebuilt.
const planFleetEnv = "PGBENCH_PLAN_FLEET"

// planFleet returns the store directory of the plan fleet, building it
// unless $PGBENCH_PLAN_FLEET holds one of this size (reused = true).
func planFleet(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) (dir string, reused bool, err error) {
	dir = os.Getenv(planFleetEnv)
	keep := dir != ""
	if !keep {
		dir = cfg.Work + "/plan-fleet"
	}
	want := fmt.Sprintf("endpoints=%d base=%d days=%d quick=%t\n", cfg.KPIHosts, cfg.KPIBase, cfg.KPIDays, cfg.Quick)
	marker := dir + ".complete"
	if keep {
		if got, rerr := os.ReadFile(marker); rerr == nil && string(got) == want {
			log.Info("reusing the plan fleet", "dir", dir, "env", planFleetEnv)
			// Every run starts from the built fleet: earlier runs' plans go.
			st, err := openCHDB(ctx, cfg, dir, log)
			if err != nil {
				return "", false, err
			}
			defer st.Close()
			for _, t := range []string{"plans", "plan_actions", "plan_hosts", "plan_no_fix", "plan_excepted"} {
				if err := st.Exec(ctx, "TRUNCATE TABLE "+t); err != nil {
					return "", false, fmt.Errorf("clear earlier plans from the reused fleet %s: %s: %w", dir, t, err)
				}
			}
			return dir, true, nil
		}
		os.Remove(marker)
	}
	// A kept fleet is also copied once matched, before its full refresh
	// (dir.matched, marked dir.matched.complete): a run whose refresh
	// failed or is being worked on starts again from that copy, a full
	// refresh of a fresh store, without the quarter of an hour of building.
	matched, matchedMarker := dir+".matched", dir+".matched.complete"
	got, rerr := os.ReadFile(matchedMarker)
	restored := keep && rerr == nil && string(got) == want
	if restored {
		log.Info("restoring the matched plan fleet", "from", matched, "dir", dir)
		if err := copyDir(ctx, matched, dir); err != nil {
			return "", false, err
		}
	} else {
		// A partial or other-sized fleet is rebuilt from nothing.
		if keep {
			os.Remove(matchedMarker)
			if err := os.RemoveAll(matched); err != nil {
				return "", false, fmt.Errorf("clear the matched plan fleet %s: %w", matched, err)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			return "", false, fmt.Errorf("clear the plan fleet %s: %w", dir, err)
		}
	}
	// On failure dir is still returned: the caller removes a scratch fleet.
	st, err := openCHDB(ctx, cfg, dir, log)
	if err != nil {
		return dir, false, err
	}
	scratch := StepOutput{Info: map[string]any{}}
	if !restored {
		err = matchKPIFleet(ctx, cfg, st, log, &scratch)
		if err == nil && keep {
			// chDB writes its files while open: copied closed.
			st.Close()
			if err := copyDir(ctx, dir, matched); err != nil {
				return dir, false, err
			}
			if err := os.WriteFile(matchedMarker, []byte(want), 0o644); err != nil {
				return dir, false, fmt.Errorf("mark the matched plan fleet %s: %w", matched, err)
			}
			if st, err = openCHDB(ctx, cfg, dir, log); err != nil {
				return dir, false, err
			}
		}
	}
	if err == nil {
		err = refreshKPIFleet(ctx, cfg, st, log, &scratch)
	}
	st.Close()
	if err != nil {
		return dir, false, fmt.Errorf("build the plan fleet in %s: %w", dir, err)
	}
	// The fleet's full refresh is the step's figure too (issue 16).
	out.Metrics = append(out.Metrics, scratch.Metrics...)
	out.Info["full_refresh_steps"] = scratch.Info["full_refresh_steps"]
	if keep {
		if err := os.WriteFile(marker, []byte(want), 0o644); err != nil {
			return "", false, fmt.Errorf("mark the plan fleet %s built: %w", dir, err)
		}
	}
	return dir, false, nil
}

// copyDir replaces dst with a copy of the directory src (cp -a: the
// store's files as they are, hard links and modes included).
func copyDir(ctx context.Context, src, dst string) error {
	if err := os.RemoveAll(dst); err != nil {
		return fmt.Errorf("clear %s before copying %s into it: %w", dst, src, err)
	}
	if b, err := exec.CommandContext(ctx, "cp", "-a", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("copy the fleet %s to %s: %w: %s", src, dst, err, b)
	}
	return nil
}

// releaseRetained returns to the OS what the step's earlier phases freed
// but the Go runtime and chDB's allocator kept for reuse (jemalloc keeps
// freed pages), before resetPeakRSS starts the peak at the current RSS:
// otherwise the peak of what follows is at least what they kept. The KPI
// fleet's build and match left 2.4 GB resident at 100,000 hosts, which was
// the whole "full refresh peak RSS" of earlier runs; the refresh itself
// starts from about 1 GB.
func releaseRetained(ctx context.Context, st store.Store, log *slog.Logger) {
	before := currentRSSMB(os.Getpid())
	debug.FreeOSMemory()
	if err := st.Exec(ctx, "SYSTEM JEMALLOC PURGE"); err != nil {
		log.Warn("cannot release the engine's retained memory: the peak that follows includes it", "err", err)
	}
	log.Info("retained memory released", "rss_mb_before", int(before), "rss_mb_after", int(currentRSSMB(os.Getpid())))
}

// resetPeakRSS restarts the process's VmHWM at its current RSS (Linux
// clear_refs 5), so the next peakRSSMB covers what follows only.
func resetPeakRSS(log *slog.Logger) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		log.Warn("cannot reset the peak RSS: the figure covers the whole step", "err", err)
	}
}
