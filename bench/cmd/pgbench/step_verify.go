package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/deploy"
	"github.com/patchgrid/patchgrid/analytics/deploy/deploytest"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Deployment verification and ring gates (issue 13): a plan of N actions
// with outcomes and rescans generated in chDB (analytics/deploy/deploytest:
// 90 % succeeded, failures, rollbacks, skips, actions still in their
// window; rescans that verify, that still show the vulnerable version, and
// none), then `plan status --due` evaluated: every action's state from its
// outcome and the host's later scans (action_states), each ring's gate,
// the holds of the rollbacks, and what may run now. Beside the ceiling of
// one scan of the same rows (plan_actions, outcomes, scans and the
// inventory rows verification reads, each read once, nothing joined).
// Goal: at most 5 s for 100,000 actions.
const (
	verifyGoalSeconds = 5
	verifyDefaultN    = 100000
	verifyQuickN      = 5000
)

func verifyStep(quick bool) stepSpec {
	n := verifyDefaultN
	if quick {
		n = verifyQuickN
	}
	return stepSpec{name: "verify", arg: strconv.Itoa(n)}
}

func stepVerify(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	n, err := strconv.Atoi(cfg.Arg)
	if err != nil || n < 1 {
		return fmt.Errorf("verify: action count %q: want a positive integer", cfg.Arg)
	}
	st, err := openCHDB(ctx, cfg, filepath.Join(cfg.Work, "verify-chdb"), log)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now().UTC().Truncate(time.Second)
	t0 := time.Now()
	if err := deploytest.Seed(ctx, st, n, now); err != nil {
		return err
	}
	log.Info("fleet generated", "actions", n, "took", time.Since(t0).Round(time.Millisecond))

	// CPU seconds (this process, chDB's threads included) beside wall
	// time: on a shared machine the wall time says how busy the machine
	// was as much as what the work costs.
	t0, c0 := time.Now(), selfCPUSeconds()
	rows, err := verifyCeiling(ctx, st)
	if err != nil {
		return err
	}
	ceiling, ceilingCPU := time.Since(t0), selfCPUSeconds()-c0
	log.Info("ceiling: one scan of the rows", "rows", rows, "took", ceiling.Round(time.Millisecond))

	dcfg := deploy.Config{Store: st, Audit: audit.New(st), Actor: "pgbench", Now: now}
	t0, c0 = time.Now(), selfCPUSeconds()
	r, err := deploy.Status(ctx, dcfg, deploytest.PlanID, true)
	if err != nil {
		return err
	}
	first, firstCPU := time.Since(t0), selfCPUSeconds()-c0
	log.Info("plan status --due (first: records gates and holds)", "took", first.Round(time.Millisecond))
	t0, c0 = time.Now(), selfCPUSeconds()
	if _, err := deploy.Status(ctx, dcfg, deploytest.PlanID, true); err != nil {
		return err
	}
	again, againCPU := time.Since(t0), selfCPUSeconds()-c0
	log.Info("plan status --due (again: nothing changed)", "took", again.Round(time.Millisecond))

	want := deploytest.Expected(n)
	for _, s := range deploy.States {
		if r.States[s] != want[string(s)] {
			return fmt.Errorf("verify: %d actions %s, the generated fleet has %d", r.States[s], s, want[string(s)])
		}
	}
	states := ""
	for _, s := range deploy.States {
		if r.States[s] > 0 {
			states += fmt.Sprintf(" %s %d,", s, r.States[s])
		}
	}
	out.Info["actions"] = n
	out.Info["states"] = r.States
	out.Info["holds"] = len(r.Holds)
	out.Info["due"] = len(r.Due.Actions)
	out.Info["ceiling_rows"] = rows
	out.Info["ceiling_cpu_s"] = ceilingCPU
	out.Info["status_cpu_s"] = firstCPU
	out.Info["status_again_cpu_s"] = againCPU
	note := fmt.Sprintf("goal <= %d s; %d actions:%s %d fixes held, %d due now", verifyGoalSeconds, n, states, len(r.Holds), len(r.Due.Actions))
	out.Metrics = append(out.Metrics,
		ratio(Metric{Name: fmt.Sprintf("verify+gates %d actions", n), Value: first.Seconds(), Unit: "s", Better: "lower", Note: note},
			"ceiling: one scan of the same rows", ceiling.Seconds()),
		ratio(Metric{Name: fmt.Sprintf("verify+gates %d actions, unchanged", n), Value: again.Seconds(), Unit: "s", Better: "lower",
			Note: "second evaluation: nothing new to record"},
			"ceiling: one scan of the same rows", ceiling.Seconds()),
		ratio(Metric{Name: fmt.Sprintf("verify+gates %d actions, CPU", n), Value: firstCPU, Unit: "CPU s", Better: "lower",
			Note: "CPU time of the first evaluation (this process and chDB's threads)"},
			"ceiling: one scan of the same rows, CPU", ceilingCPU),
	)
	return nil
}

// verifyCeiling reads once every row the evaluation reads, hashing the
// columns it uses (so each is decoded), and joins nothing: the plan's
// actions, the outcomes, every scan, inventory row and finding, and the
// advisory records and fixed versions it checks against. The evaluation
// may skip some scans and inventories (those before the earliest
// success), which the ceiling still reads: where it does, the ratio
// flatters the evaluation by that much.
func verifyCeiling(ctx context.Context, st store.Store) (uint64, error) {
	var total uint64
	for _, q := range []string{
		"SELECT count(), sum(cityHash64(plan_id, action_id, ring, group_name, ecosystem, package, target_version, advisories, window_start, window_end)) FROM plan_actions",
		"SELECT count(), sum(cityHash64(plan_id, action_id, attempt, host_id, status, finished_at, error, reboot_required)) FROM outcomes FINAL",
		"SELECT count(), sum(cityHash64(host_id, scanned_at, scan_id, inventory_hash, kernel_running)) FROM scans",
		"SELECT count(), sum(cityHash64(inventory_hash, ecosystem, name, version, arch, v_key)) FROM inventory_packages",
		"SELECT count(), sum(cityHash64(inventory_hash, ecosystem, name, version, arch, source, advisory_id, record_hash)) FROM match_inventory_findings FINAL",
		"SELECT count(), sum(cityHash64(source, advisory_id, record_hash, withdrawn)) FROM advisories FINAL",
		"SELECT count(), sum(cityHash64(ecosystem, fixed, fixed_key)) FROM affected_ranges",
	} {
		rows, err := st.Query(ctx, q)
		if err != nil {
			return 0, fmt.Errorf("verify ceiling: %w", err)
		}
		var n, sum uint64
		if rows.Next() {
			err = rows.Scan(&n, &sum)
		}
		if err == nil {
			err = rows.Err()
		}
		rows.Close()
		if err != nil {
			return 0, fmt.Errorf("verify ceiling: %w", err)
		}
		total += n
	}
	return total, nil
}
