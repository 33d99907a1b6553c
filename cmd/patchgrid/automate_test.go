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
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// TestRunPlaysAutomation runs `patchgrid run` on a small simulated fleet
// against the real broker: after the plan, the simulated automation plays
// the due actions, and the loop it prints is the plan's row of
// kpi_deploy_plans, which matches the outcomes and scans stored.
func TestRunPlaysAutomation(t *testing.T) {
	st := testenv.CHDBStore(t)
	brokers := testenv.Kafka(t)
	env := chdbCLIEnv(t, st)
	shared := testenv.SharedData(t)
	topic := fmt.Sprintf("patchgrid.automate-test.%d", time.Now().UnixNano())
	code, out, errOut := runCLI(t, "", env, "run", "--skip-local", "--endpoints", "120", "--days", "3", "--seed", "5",
		"--kafka-brokers", brokers, "--topic", topic, "--partitions", "1", "--cache-dir", t.TempDir(),
		"--feeds", filepath.Join(shared, "advisories", "debian12-changelog-derived-osv.zip"),
		"--inventories", filepath.Join(shared, "inventories"), "--automate-actions", "50", "--outcome-topic", topic+".outcomes")
	if code != exitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
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
	q := func(sql string) []any {
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
}
