package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// TestRunPlaysAutomation runs `patchgrid run` on a small simulated fleet
// against the real broker: after the plan, the simulated automation plays
// the due actions, and the loop it prints is the plan's row of
// kpi_deploy_plans, which matches the outcomes and scans stored.
func TestRunPlaysAutomation(t *testing.T) {
	st := testenv.CHDBStore(t)
	topic, out := runAutomated(t, st, 120, 3, filepath.Join("advisories", "debian12-changelog-derived-osv.zip"))
	i := strings.Index(out, "patch loop of plan ")
	if i < 0 {
		t.Fatalf("no patch loop in the output:\n%s", out)
	}
	loop := out[i:]
	t.Log(loop)
	m := regexp.MustCompile(`(\d+) due actions played in (\d+) windows`).FindStringSubmatch(loop)
	if m == nil {
		t.Fatalf("no plan line:\n%s", loop)
	}
	played, _ := strconv.Atoi(m[1])
	if windows, _ := strconv.Atoi(m[2]); played == 0 || played > 50 || windows == 0 {
		t.Fatalf("%d played in %s windows; want some, at most 50", played, m[2])
	}
	q := func(sql string) []any { return oneRow(t, st, sql) }
	if !strings.Contains(loop, "published to "+topic+".outcomes (0 rejected)") {
		t.Errorf("outcomes not all stored from %s.outcomes:\n%s", topic, loop)
	}
	// The current plan's loop as the KPI has it, and as the raw tables
	// have it: every played action has its outcome, every host its rescan.
	row := q(`SELECT deployments + skipped, failed_attempts, rolled_back_attempts, verified, still_exposed
		FROM kpi_deploy_plans WHERE plan_id = (SELECT argMax(plan_id, (created_at, plan_id)) FROM plans)`)
	raw := q(`SELECT count(), countIf(status = 'failed'), countIf(status = 'rolled_back'), uniqExact(host_id)
		FROM outcomes FINAL WHERE plan_id = (SELECT argMax(plan_id, (created_at, plan_id)) FROM plans)`)
	if fmt.Sprint(row[0]) != fmt.Sprint(played) || fmt.Sprint(raw[0]) != fmt.Sprint(played) ||
		fmt.Sprint(row[1]) != fmt.Sprint(raw[1]) || fmt.Sprint(row[2]) != fmt.Sprint(raw[2]) {
		t.Errorf("kpi_deploy_plans %v, outcomes %v, played %d", row, raw, played)
	}
	if v, _ := strconv.Atoi(fmt.Sprint(row[3])); v == 0 {
		t.Errorf("no verified action: %v\n%s", row, loop)
	}
	rescans := q(`SELECT uniqExact(host_id) FROM scans WHERE scan_id LIKE '%-rescan-%'`)
	if fmt.Sprint(rescans[0]) != fmt.Sprint(raw[3]) {
		t.Errorf("%v hosts rescanned, %v hosts with outcomes", rescans[0], raw[3])
	}
	for _, want := range []string{
		fmt.Sprintf("%v verified, %v still exposed", row[3], row[4]),
		fmt.Sprintf("%v failed, %v rolled back", row[1], row[2]),
		"failure rate ", "rollback rate ",
	} {
		if !strings.Contains(loop, want) {
			t.Errorf("the loop does not say %q:\n%s", want, loop)
		}
	}
	checkSnapshotsRefreshedLast(t, q, "[0 1]")
}

// runAutomated runs `patchgrid run` into st on endpoints simulated over
// days against the real broker, with the feeds at shared data's feeds,
// playing up to 50 actions; it returns the scan topic and the output.
func runAutomated(t *testing.T, st store.Store, endpoints, days int, feeds string) (topic, out string) {
	t.Helper()
	brokers := testenv.Kafka(t)
	shared := testenv.SharedData(t)
	topic = fmt.Sprintf("patchgrid.automate-test.%d", time.Now().UnixNano())
	code, out, errOut := runCLI(t, "", chdbCLIEnv(t, st), "run", "--skip-local", "--endpoints", strconv.Itoa(endpoints),
		"--days", strconv.Itoa(days), "--seed", "5",
		"--kafka-brokers", brokers, "--topic", topic, "--partitions", "1", "--cache-dir", t.TempDir(),
		"--feeds", filepath.Join(shared, feeds),
		"--inventories", filepath.Join(shared, "inventories"), "--automate-actions", "50", "--outcome-topic", topic+".outcomes")
	if code != exitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	return topic, out
}

// oneRow reads the one row sql returns.
func oneRow(t *testing.T, st store.Store, sql string) []any {
	t.Helper()
	rows, err := st.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := export.ReadTable(rows, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl.Rows) != 1 {
		t.Fatalf("%s: %d rows", sql, len(tbl.Rows))
	}
	return tbl.Rows[0]
}

// checkSnapshotsRefreshedLast checks, after `patchgrid run`, what its
// refreshes recorded (refresh_runs.snapshots of each, in order: want) and
// that the KPI snapshots are those of the last one: kpi_open_exposure's
// rows as computed now from the same tables.
func checkSnapshotsRefreshedLast(t *testing.T, q func(string) []any, want string) {
	t.Helper()
	if got := fmt.Sprint(q(`SELECT groupArray(snapshots) FROM (SELECT snapshots FROM refresh_runs WHERE error = '' ORDER BY started_at, version)`)[0]); got != want {
		t.Errorf("refresh_runs.snapshots of the run's refreshes: %s, want %s", got, want)
	}
	snap := q(`SELECT count(), sum(open_exposures), sum(hosts) FROM kpi_open_exposure_snapshot`)
	live := q(`SELECT count(), sum(open_exposures), sum(hosts) FROM kpi_open_exposure_live`)
	if fmt.Sprint(snap) != fmt.Sprint(live) || fmt.Sprint(snap[0]) == "0" {
		t.Errorf("kpi_open_exposure_snapshot %v, kpi_open_exposure_live %v: want the same, not empty", snap, live)
	}
}

// TestRunWithNothingToPlayRefreshesKPIs: with only the KEV catalogue
// loaded, the plan has no action (the end-of-life findings have no fix),
// so the automation stage plays nothing and does not refresh; `run` then
// writes the KPI snapshots its first refresh left for that stage.
func TestRunWithNothingToPlayRefreshesKPIs(t *testing.T) {
	st := testenv.CHDBStore(t)
	_, out := runAutomated(t, st, 60, 2, "kev")
	q := func(sql string) []any { return oneRow(t, st, sql) }
	if n := fmt.Sprint(q(`SELECT count() FROM outcomes`)[0]); n != "0" {
		t.Fatalf("%s outcomes stored; the test wants a plan with nothing to play\n%s", n, out)
	}
	checkSnapshotsRefreshedLast(t, q, "[0 1]")
}
