package kpi

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas/outcome"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// deployFixture is a plan of ten actions (pkga 1.0 -> 2.0, closing osv/A1)
// under the sample policy (rings test, pilot, prod: staging is test and
// pilot), created at T0, a Monday two weeks ago, 00:00 UTC, so every
// attempt lands in T0's week. Hours after T0:
//
//	a1  h1  test   succeeded 1h (delivered twice); rescan 2h fixed      -> verified 2h
//	a2  h2  test   failed 1h, succeeded 25h (attempt 2); rescan 26h     -> verified 26h
//	a3  h3  pilot  rolled_back 30h; scans fixed 29h, vulnerable 31h     -> rolled_back; exposure reopened
//	a4  h4  pilot  succeeded 30h; rescan 31h still vulnerable           -> still_exposed
//	a5  h5  prod   succeeded 50h; rescan 54h fixed                      -> verified 54h
//	a6  h6  prod   succeeded 50h; no rescan (> 24 h ago)                -> unverified
//	a7  h7  prod   failed 50h                                           -> failed
//	a8  h8  prod   skipped 50h                                          -> skipped
//	a9  h9  prod   no outcome, window opened at T0                      -> in_progress
//	a10 h10 lab    succeeded 60h; rescan 70h fixed (a ring the policy   -> verified 70h
//	               does not name: production)
//
// Every host was scanned vulnerable at T0-24h.
func deployFixture(t *testing.T) (store.Store, time.Time) {
	t.Helper()
	ctx := context.Background()
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	ins := func(table string, cols []string, rows [][]any) {
		t.Helper()
		if err := st.Insert(ctx, table, cols, rows); err != nil {
			t.Fatalf("fixture %s: %v", table, err)
		}
	}
	now := time.Now().UTC()
	d := now.AddDate(0, 0, -14).Truncate(24 * time.Hour)
	t0 := d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)) // Monday
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	if _, err := policy.Apply(ctx, st, audit.New(st), "sample.yaml", policy.SampleYAML, "test", t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	ins("plans", []string{"plan_id", "created_at", "plan_at", "policy_version", "actions"}, [][]any{{"P1", t0, t0, uint32(1), uint64(10)}})
	rings := []string{"", "test", "test", "pilot", "pilot", "prod", "prod", "prod", "prod", "prod", "lab"}
	var actions [][]any
	for i := 1; i <= 10; i++ {
		actions = append(actions, []any{"P1", fmt.Sprintf("a%d", i), uint32(i), fmt.Sprintf("h%d", i), fmt.Sprintf("host%d", i),
			"Debian:12", "pkga", "1.0", "2.0", []string{"osv/A1"}, rings[i], uint32(1), t0, h(4), "scheduled", "everything-else"})
	}
	ins("plan_actions", []string{"plan_id", "action_id", "rank", "host_id", "hostname", "ecosystem", "package", "installed_version",
		"target_version", "advisories", "ring", "wave", "window_start", "window_end", "status", "group_name"}, actions)

	type att struct {
		action  int
		attempt uint32
		status  outcome.Status
		at      int
	}
	var outs [][]any
	for _, a := range []att{
		{1, 1, outcome.Succeeded, 1}, {1, 1, outcome.Succeeded, 1}, {2, 1, outcome.Failed, 1}, {2, 2, outcome.Succeeded, 25},
		{3, 1, outcome.RolledBack, 30}, {4, 1, outcome.Succeeded, 30}, {5, 1, outcome.Succeeded, 50}, {6, 1, outcome.Succeeded, 50},
		{7, 1, outcome.Failed, 50}, {8, 1, outcome.Skipped, 50}, {10, 1, outcome.Succeeded, 60},
	} {
		errText := ""
		if a.status == outcome.Failed || a.status == outcome.RolledBack {
			errText = "fixture"
		}
		outs = append(outs, []any{"P1", fmt.Sprintf("a%d", a.action), a.attempt, fmt.Sprintf("h%d", a.action), "pkga", "1.0", "2.0",
			string(a.status), h(a.at).Add(-10 * time.Minute), h(a.at), errText, uint8(0), now})
	}
	ins("outcomes", []string{"plan_id", "action_id", "attempt", "host_id", "package", "from_version", "to_version", "status",
		"started_at", "finished_at", "error", "reboot_required", "received_at"}, outs)

	// Inventories: inv-old has pkga 1.0 (A1 open), inv-new pkga 2.0.
	ins("advisories", []string{"source", "advisory_id", "record_hash", "modified", "published", "withdrawn", "severity"},
		[][]any{{"osv", "A1", "r1", t0.AddDate(0, 0, -30), t0.AddDate(0, 0, -30), uint8(0), "high"}})
	ins("affected_ranges", []string{"source", "advisory_id", "record_hash", "ecosystem", "package", "range_idx", "status", "comparator",
		"introduced", "introduced_key", "fixed", "fixed_key"},
		[][]any{{"osv", "A1", "r1", "Debian:12", "pkga", uint16(0), "affected", "dpkg", "0", "k0", "2.0", "k2"}})
	ins("inventory_packages", []string{"inventory_hash", "ecosystem", "name", "version", "arch", "match_name", "match_version", "v_key"},
		[][]any{{"inv-old", "Debian:12", "pkga", "1.0", "amd64", "pkga", "1.0", "k1"}, {"inv-new", "Debian:12", "pkga", "2.0", "amd64", "pkga", "2.0", "k2"}})
	ins("match_inventory_findings", []string{"inventory_hash", "ecosystem", "name", "version", "arch", "match_name", "match_version", "v_key",
		"source", "advisory_id", "record_hash", "status", "fixed"},
		[][]any{{"inv-old", "Debian:12", "pkga", "1.0", "amd64", "pkga", "1.0", "k1", "osv", "A1", "r1", "affected", "2.0"}})
	var scans [][]any
	scan := func(host, hours int, inv string) {
		scans = append(scans, []any{fmt.Sprintf("h%d", host), fmt.Sprintf("s-h%d-%d", host, hours), h(hours), now,
			fmt.Sprintf("host%d", host), "Debian:12", inv, rings[host]})
	}
	for i := 1; i <= 10; i++ {
		scan(i, -24, "inv-old")
	}
	scan(1, 2, "inv-new")
	scan(2, 26, "inv-new")
	scan(3, 29, "inv-new")
	scan(3, 31, "inv-old")
	scan(4, 31, "inv-old")
	scan(5, 54, "inv-new")
	scan(10, 70, "inv-new")
	ins("scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_ecosystem", "inventory_hash", "ring"}, scans)
	kpitest.Refresh(t, st)
	return st, t0
}

// TestDeployKPIsOnKnownPlan checks every deployment KPI against the
// numbers worked out by hand from deployFixture, and each snapshot
// against its live view.
func TestDeployKPIsOnKnownPlan(t *testing.T) {
	st, t0 := deployFixture(t)
	ctx := context.Background()
	week := t0.Format(time.RFC3339)
	third := 100.0 / 3
	nan := math.NaN()
	runDeploy := func(name string, q DeployQuery) []map[string]any {
		t.Helper()
		tbl, err := RunDeploy(ctx, st, name, q)
		if err != nil {
			t.Fatal(err)
		}
		return tbl.Records()
	}
	one := func(name string, q DeployQuery, key map[string]any) map[string]any {
		t.Helper()
		var found []map[string]any
		for _, r := range runDeploy(name, q) {
			ok := true
			for k, v := range key {
				ok = ok && fmt.Sprint(r[k]) == fmt.Sprint(v)
			}
			if ok {
				found = append(found, r)
			}
		}
		if len(found) != 1 {
			t.Fatalf("%s: %d rows match %v", name, len(found), key)
		}
		return found[0]
	}

	t.Run("failures", func(t *testing.T) {
		// Attempts (a1's second delivery counts once): 10, of which 9
		// deployments (a8 skipped): 6 succeeded, failed a2#1 and a7,
		// rolled back a3.
		check(t, one("failures", DeployQuery{Dimension: "all"}, map[string]any{"week": week}), map[string]float64{
			"deployments": 9, "succeeded": 6, "failed": 2, "rolled_back": 1, "skipped": 1,
			"failure_rate_pct": third, "rollback_rate_pct": 100.0 / 9})
		check(t, one("failures", DeployQuery{Dimension: "ring", Value: "test"}, nil), map[string]float64{"deployments": 3, "failed": 1, "failure_rate_pct": third, "rollback_rate_pct": 0})
		check(t, one("failures", DeployQuery{Dimension: "ring", Value: "pilot"}, nil), map[string]float64{"deployments": 2, "failure_rate_pct": 50, "rollback_rate_pct": 50})
		check(t, one("failures", DeployQuery{Dimension: "ring", Value: "prod"}, nil), map[string]float64{"deployments": 3, "skipped": 1, "failure_rate_pct": third})
		check(t, one("failures", DeployQuery{Dimension: "package", Value: "pkga"}, nil), map[string]float64{"deployments": 9, "failure_rate_pct": third})
	})

	t.Run("stage_success", func(t *testing.T) {
		s := one("stage_success", DeployQuery{Value: "staging"}, nil)
		check(t, s, map[string]float64{"deployments": 5, "succeeded": 3, "failed": 1, "rolled_back": 1, "success_rate_pct": 60})
		if fmt.Sprint(s["rings"]) != "[test pilot]" {
			t.Errorf("staging rings %v", s["rings"])
		}
		p := one("stage_success", DeployQuery{Value: "production"}, nil)
		check(t, p, map[string]float64{"deployments": 4, "succeeded": 3, "failed": 1, "success_rate_pct": 75})
		if fmt.Sprint(p["rings"]) != "[lab prod]" { // lab: not a ring of the policy (order 0)
			t.Errorf("production rings %v", p["rings"])
		}
	})

	t.Run("test_pass", func(t *testing.T) {
		check(t, one("test_pass", DeployQuery{Value: "test"}, nil), map[string]float64{"ring_order": 1, "actions": 2, "decided": 2, "verified": 2, "pass_rate_pct": 100})
		pilot := one("test_pass", DeployQuery{Value: "pilot"}, nil)
		check(t, pilot, map[string]float64{"decided": 2, "verified": 0, "still_exposed": 1, "rolled_back": 1, "pass_rate_pct": 0})
		check(t, one("test_pass", DeployQuery{Value: "prod"}, nil), map[string]float64{"ring_order": 3, "actions": 5, "decided": 3, "verified": 1,
			"unverified": 1, "failed": 1, "not_run": 2, "awaiting_verification": 0, "pass_rate_pct": third})
		lab := one("test_pass", DeployQuery{Value: "lab"}, nil)
		check(t, lab, map[string]float64{"ring_order": 0, "pass_rate_pct": 100})
		if pilot["stage"] != "staging" || lab["stage"] != "production" {
			t.Errorf("stages: pilot %v, lab %v", pilot["stage"], lab["stage"])
		}
	})

	t.Run("time_to_verify", func(t *testing.T) {
		// Verified after 2, 26, 54 and 70 hours; quantileExact takes index
		// floor(level * n) of the sorted values.
		check(t, one("time_to_verify", DeployQuery{Dimension: "all"}, nil), map[string]float64{"verified": 4, "avg_hours": 38, "median_hours": 54, "p90_hours": 70, "max_hours": 70})
		check(t, one("time_to_verify", DeployQuery{Dimension: "stage", Value: "staging"}, nil), map[string]float64{"verified": 2, "avg_hours": 14, "median_hours": 26})
		check(t, one("time_to_verify", DeployQuery{Dimension: "stage", Value: "production"}, nil), map[string]float64{"verified": 2, "avg_hours": 62})
		check(t, one("time_to_verify", DeployQuery{Dimension: "ring", Value: "prod"}, nil), map[string]float64{"verified": 1, "avg_hours": 54})
	})

	t.Run("still_exposed", func(t *testing.T) {
		check(t, one("still_exposed", DeployQuery{Dimension: "all"}, nil), map[string]float64{"reported_success": 6, "rescanned": 5, "still_exposed": 1, "still_exposed_pct": 20})
		check(t, one("still_exposed", DeployQuery{Dimension: "ring", Value: "pilot"}, nil), map[string]float64{"reported_success": 1, "still_exposed_pct": 100})
		check(t, one("still_exposed", DeployQuery{Dimension: "ring", Value: "prod"}, nil), map[string]float64{"reported_success": 2, "rescanned": 1, "still_exposed_pct": 0})
		if rows := runDeploy("still_exposed", DeployQuery{Dimension: "ring", Value: "lab"}); len(rows) != 1 {
			t.Errorf("lab: %v", rows)
		}
	})

	t.Run("regressions", func(t *testing.T) {
		// h3: vulnerable at -24h, fixed at 29h, rolled back at 31h.
		check(t, one("regressions", DeployQuery{Dimension: "all"}, map[string]any{"week": week}), map[string]float64{"reopened_exposures": 1, "reopen_events": 1, "hosts": 1, "open_now": 1})
		check(t, one("regressions", DeployQuery{Dimension: "ring", Value: "pilot"}, nil), map[string]float64{"reopened_exposures": 1})
		if rows := runDeploy("regressions", DeployQuery{Dimension: "ring", Value: "prod"}); len(rows) != 0 {
			t.Errorf("prod has no regression: %v", rows)
		}
	})

	t.Run("plans", func(t *testing.T) {
		check(t, one("plans", DeployQuery{Value: "P1"}, nil), map[string]float64{
			"actions": 10, "attempted": 9, "planned": 0, "in_progress": 1, "succeeded": 0, "failed": 1, "rolled_back": 1, "skipped": 1,
			"verified": 4, "still_exposed": 1, "unverified": 1, "rescanned": 5,
			"deployments": 9, "failed_attempts": 2, "rolled_back_attempts": 1, "failure_rate_pct": third, "rollback_rate_pct": 100.0 / 9})
	})

	t.Run("no outcomes yet", func(t *testing.T) {
		if err := st.Insert(ctx, "plans", []string{"plan_id", "created_at", "policy_version"}, [][]any{{"P2", t0, uint32(1)}}); err != nil {
			t.Fatal(err)
		}
		if err := st.Insert(ctx, "plan_actions", []string{"plan_id", "action_id", "host_id", "package", "ring", "window_start", "status"},
			[][]any{{"P2", "b1", "h1", "pkga", "test", time.Now().Add(time.Hour), "scheduled"}}); err != nil {
			t.Fatal(err)
		}
		kpitest.Refresh(t, st)
		check(t, one("plans", DeployQuery{Value: "P2"}, nil), map[string]float64{"actions": 1, "planned": 1, "deployments": 0, "failure_rate_pct": nan})
	})

	// The refreshed snapshots equal their live views.
	for _, k := range DeployKPIs() {
		live, snap := tableText(t, st, k.View+"_live"), tableText(t, st, k.View)
		if len(snap) == 0 {
			t.Errorf("%s: no rows", k.View)
		}
		if !slices.Equal(live, snap) {
			t.Errorf("%s: snapshot\n%s\nlive\n%s", k.View, strings.Join(snap, "\n"), strings.Join(live, "\n"))
		}
	}
}

// tableText reads every row of view as text, sorted.
func tableText(t *testing.T, st store.Store, view string) []string {
	t.Helper()
	tbl, err := readAll(st, "SELECT * FROM "+view)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range tbl {
		out = append(out, fmt.Sprint(r))
	}
	slices.Sort(out)
	return out
}

func readAll(st store.Store, q string) ([][]any, error) {
	rows, err := st.Query(context.Background(), q)
	if err != nil {
		return nil, err
	}
	tbl, err := export.ReadTable(rows, 0)
	if err != nil {
		return nil, err
	}
	return tbl.Rows, nil
}
