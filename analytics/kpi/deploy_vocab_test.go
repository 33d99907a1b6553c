package kpi_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/analytics/deploy"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/refresh"
	"github.com/patchgrid/patchgrid/schemas/outcome"
)

// TestDeployKPIsDocumented (an external test: analytics/deploy imports
// this package through the planner) keeps 0015, refresh.Snapshots, DeployKPIs and
// schemas/VIEWS.md in step, and the state and status literals of 0015 in
// the vocabulary of analytics/deploy and schemas/outcome.
func TestDeployKPIsDocumented(t *testing.T) {
	sqlText, err := os.ReadFile("../../schemas/migrations/0015_deploy_kpis.sql")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../schemas/VIEWS.md")
	if err != nil {
		t.Fatal(err)
	}
	sql := string(sqlText)
	for _, k := range kpi.DeployKPIs() {
		for _, obj := range []string{"VIEW IF NOT EXISTS " + k.View + "_live AS", "TABLE IF NOT EXISTS " + k.View + "_snapshot",
			"VIEW IF NOT EXISTS " + k.View + " AS SELECT * FROM " + k.View + "_snapshot"} {
			if !strings.Contains(sql, "CREATE "+obj) {
				t.Errorf("KPI %s: 0015 does not CREATE %s", k.Name, obj)
			}
		}
		if !slices.Contains(refresh.Snapshots, k.View) {
			t.Errorf("KPI %s: %s is not in refresh.Snapshots", k.Name, k.View)
		}
	}
	for _, m := range regexp.MustCompile(`CREATE VIEW IF NOT EXISTS (\w+)`).FindAllStringSubmatch(sql, -1) {
		if !strings.HasSuffix(m[1], "_live") && !strings.Contains(string(doc), "`"+m[1]+"`") {
			t.Errorf("view %s is not documented in schemas/VIEWS.md", m[1])
		}
	}
	var known []string
	for _, s := range deploy.States {
		known = append(known, string(s))
	}
	for _, s := range outcome.Statuses {
		known = append(known, string(s))
	}
	checked := 0
	for _, m := range regexp.MustCompile(`(?:state|status|last_status) (?:=|!=|IN) \(?('[^)]*')`).FindAllStringSubmatch(sql, -1) {
		for _, lit := range regexp.MustCompile(`'(\w+)'`).FindAllStringSubmatch(m[1], -1) {
			checked++
			if !slices.Contains(known, lit[1]) {
				t.Errorf("0015 compares a state or status with %q, which is neither an analytics/deploy state nor an outcome status", lit[1])
			}
		}
	}
	if checked < 30 {
		t.Errorf("found %d state and status literals in 0015: the pattern no longer reads it", checked)
	}
}
