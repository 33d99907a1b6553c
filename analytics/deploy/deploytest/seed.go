// Package deploytest generates deployment fleets in a store, for the
// verification benchmark (pgbench step verify) and tests at scale: one
// plan of N actions with outcomes and rescans, written by INSERT … SELECT
// inside ClickHouse so that generating 100,000 actions takes seconds.
package deploytest

import (
	"context"
	"fmt"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// PlanID is the generated plan.
const PlanID = "PL-deploytest"

// Packages is how many distinct packages (and advisories) the fleet has;
// action i upgrades package i % ActionPackages on host i (a prime, so
// every package has actions of every outcome class: a rollback holds a
// fix other actions still wait for).
const (
	Packages       = 1000
	ActionPackages = 997
)

// Filler is how many unrelated packages each inventory also holds, so the
// verification reads inventories of a realistic width.
const Filler = 200

// Policy has three rings with gates and the default deployment settings.
const Policy = `name: deploytest
sla:
  days: {critical: 15, high: 30, medium: 90, low: 180}
rings:
  - name: test
    gate: {min_soak: 24h, max_failure_rate: 0.2, min_successes: 10}
  - name: pilot
    gate: {min_soak: 24h, max_failure_rate: 0.1, min_successes: 10}
  - name: prod
`

// The generated fleet's outcome mix, by i % 100 of action i:
//
//	0      no outcome (window open: in_progress)
//	1      skipped
//	2..3   rolled_back (their fixes are held: HeldFixes)
//	4..9   failed
//	10..99 succeeded; of those, by i % 20: 0 no rescan (finished 30 h ago:
//	       unverified), 1 rescan still vulnerable (still_exposed), else a
//	       rescan with the fix (verified)
//
// Every host also has a scan from before the plan.

// Expected is the state count Seed's fleet of n actions must show.
func Expected(n int) map[string]uint64 {
	out := map[string]uint64{}
	for i := 0; i < n; i++ {
		switch m := i % 100; {
		case m == 0:
			out["in_progress"]++
		case m == 1:
			out["skipped"]++
		case m <= 3:
			out["rolled_back"]++
		case m <= 9:
			out["failed"]++
		case i%20 == 0:
			out["unverified"]++
		case i%20 == 1:
			out["still_exposed"]++
		default:
			out["verified"]++
		}
	}
	return out
}

// HeldFixes is how many fixes Seed's fleet of n actions holds: the
// distinct packages of its rolled-back actions.
func HeldFixes(n int) int {
	held := map[int]bool{}
	for i := 0; i < n; i++ {
		if m := i % 100; m == 2 || m == 3 {
			held[i%ActionPackages] = true
		}
	}
	return len(held)
}

// Seed applies Policy (as a new version when it is not the active one) and
// writes plan PlanID with n actions, their outcomes and rescans, relative
// to now. The store must be migrated and hold no other deploytest fleet.
func Seed(ctx context.Context, st store.Store, n int, now time.Time) error {
	const eco = "Debian:12"
	res, err := policy.Apply(ctx, st, audit.New(st), "deploytest.yaml", []byte(Policy), "deploytest", now.Add(-72*time.Hour))
	if err != nil {
		return fmt.Errorf("deploytest: apply policy: %w", err)
	}
	oldKey, err := version.Key(eco, "1.0-1")
	if err != nil {
		return err
	}
	newKey, err := version.Key(eco, "2.0-1")
	if err != nil {
		return err
	}
	now = now.UTC().Truncate(time.Second)
	planned := now.Add(-72 * time.Hour)
	stmts := []struct {
		what string
		sql  string
		args []any
	}{
		{"advisories", `INSERT INTO advisories (source, advisory_id, record_hash, withdrawn, severity, loaded_at)
			SELECT 'osv', concat('ADV-', toString(number)), 'r', 0, 'high', ? FROM numbers(?)`, []any{now, Packages}},
		{"affected ranges", `INSERT INTO affected_ranges (source, advisory_id, record_hash, ecosystem, package, range_idx, status, comparator, introduced, introduced_key, fixed, fixed_key)
			SELECT 'osv', concat('ADV-', toString(number)), 'r', ?, concat('pkg-', toString(number)), 0, 'affected', 'dpkg', '0', '', '2.0-1', ? FROM numbers(?)`,
			[]any{eco, newKey, Packages}},
		// inv-old-k: pkg-k 1.0-1 (ADV-k open); inv-new-k: pkg-k 2.0-1; both with Filler other packages.
		{"inventories", `INSERT INTO inventory_packages (inventory_hash, ecosystem, name, version, arch, source_name, source_version, match_name, match_version, v_key, purl, location)
			SELECT concat(if(number % 2 = 0, 'inv-old-', 'inv-new-'), toString(intDiv(number, 2) % ?)) AS inv, ?,
				if(f = 0, concat('pkg-', toString(intDiv(number, 2) % ?)), concat('filler-', toString(f))) AS name,
				if(f = 0 AND number % 2 = 0, '1.0-1', '2.0-1') AS v, 'amd64', name, v, name, v, if(v = '1.0-1', ?, ?), '', ''
			FROM numbers(? * 2) ARRAY JOIN range(? + 1) AS f`, []any{Packages, eco, Packages, oldKey, newKey, Packages, Filler}},
		{"findings", `INSERT INTO match_inventory_findings (inventory_hash, ecosystem, name, version, arch, location, match_name, match_version, v_key,
				source, advisory_id, record_hash, range_idx, range_type, status, comparator, introduced, fixed, last_affected, fix_published, matched_at, run_id)
			SELECT concat('inv-old-', toString(number)), ?, concat('pkg-', toString(number)), '1.0-1', 'amd64', '', concat('pkg-', toString(number)), '1.0-1', ?,
				'osv', concat('ADV-', toString(number)), 'r', 0, 'ECOSYSTEM', 'affected', 'dpkg', '0', '2.0-1', '', ?, ?, 'deploytest'
			FROM numbers(?)`, []any{eco, oldKey, now, now, Packages}},
		{"plan", `INSERT INTO plans (plan_id, created_at, created_by, plan_at, horizon_end, policy_version, hosts, actions, scheduled, late, unscheduled, emergency, waves, findings, no_fix, risk_reduction)
			VALUES (?, ?, 'deploytest', ?, ?, ?, ?, ?, ?, 0, 0, 0, 3, ?, 0, 0)`,
			[]any{PlanID, planned, planned, now.Add(30 * 24 * time.Hour), res.Version, uint64(n), uint64(n), uint64(n), uint64(n)}},
		// Rings: i % 10 = 0 test, 1..2 pilot, else prod; windows opened 48 h ago
		// and are open for a week, so undone actions are due.
		{"plan actions", `INSERT INTO plan_actions (plan_id, action_id, rank, host_id, hostname, owner, os, group_name, ecosystem, package,
				installed_version, target_version, advisories, kev_advisories, kev_ids, risk_reduction, deadline, ring, wave,
				window_start, window_end, emergency, approval_required, status, reason, severity)
			SELECT ?, concat('AC-', toString(number)), number + 1, concat('h-', toString(number)), concat('h-', toString(number)), 'ops', 'debian', 'default',
				?, concat('pkg-', toString(number % ?)), '1.0-1', '2.0-1', [concat('osv/ADV-', toString(number % ?))], 0, [], 5.0, ?,
				multiIf(number % 10 = 0, 'test', number % 10 <= 2, 'pilot', 'prod') AS ring, multiIf(ring = 'test', 1, ring = 'pilot', 2, 3),
				?, ?, 0, 0, 'scheduled', 'deploytest', 'high'
			FROM numbers(?)`, []any{PlanID, eco, ActionPackages, ActionPackages, now.Add(10 * 24 * time.Hour), now.Add(-48 * time.Hour), now.Add(5 * 24 * time.Hour), n}},
		{"outcomes", `INSERT INTO outcomes (plan_id, action_id, attempt, host_id, package, from_version, to_version, status, started_at, finished_at, error, reboot_required, received_at)
			SELECT ?, concat('AC-', toString(number)), 1, concat('h-', toString(number)), concat('pkg-', toString(number % ?)), '1.0-1', '2.0-1',
				multiIf(number % 100 = 1, 'skipped', number % 100 <= 3, 'rolled_back', number % 100 <= 9, 'failed', 'succeeded') AS s,
				? - 600, ?, if(s IN ('failed', 'rolled_back'), 'deploytest failure', ''), 0, ?
			FROM numbers(?) WHERE number % 100 != 0`, []any{PlanID, ActionPackages, now.Add(-30 * time.Hour), now.Add(-30 * time.Hour), now, n}},
		{"scans before", `INSERT INTO scans (host_id, scan_id, scanned_at, received_at, hostname, os_ecosystem, kernel_running, inventory_hash, ring)
			SELECT concat('h-', toString(number)), concat('s0-', toString(number)), ?, ?, concat('h-', toString(number)), ?, '6.1.0-25-amd64',
				concat('inv-old-', toString(number % ?)), multiIf(number % 10 = 0, 'test', number % 10 <= 2, 'pilot', 'prod')
			FROM numbers(?)`, []any{now.Add(-96 * time.Hour), now.Add(-96 * time.Hour), eco, ActionPackages, n}},
		{"rescans", `INSERT INTO scans (host_id, scan_id, scanned_at, received_at, hostname, os_ecosystem, kernel_running, inventory_hash, ring)
			SELECT concat('h-', toString(number)), concat('s1-', toString(number)), ?, ?, concat('h-', toString(number)), ?, '6.1.0-25-amd64',
				concat(if(number % 20 = 1, 'inv-old-', 'inv-new-'), toString(number % ?)), multiIf(number % 10 = 0, 'test', number % 10 <= 2, 'pilot', 'prod')
			FROM numbers(?) WHERE number % 100 >= 10 AND number % 20 != 0`, []any{now.Add(-20 * time.Hour), now.Add(-20 * time.Hour), eco, ActionPackages, n}},
	}
	for _, s := range stmts {
		if err := st.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("deploytest: write %s: %w", s.what, err)
		}
	}
	return nil
}
