package kpi

import (
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/patchgrid/patchgrid/analytics/refresh"
)

// TestViewsDocumented keeps schemas/VIEWS.md in step with the views of
// 0004_kpis.sql and with All().
func TestViewsDocumented(t *testing.T) {
	sql, err := os.ReadFile("../../schemas/migrations/0004_kpis.sql")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../schemas/VIEWS.md")
	if err != nil {
		t.Fatal(err)
	}
	var views []string
	for _, m := range regexp.MustCompile(`CREATE VIEW IF NOT EXISTS (\w+)`).FindAllStringSubmatch(string(sql), -1) {
		views = append(views, m[1])
		if !regexp.MustCompile("`" + m[1] + "`").Match(doc) {
			t.Errorf("view %s is not documented in schemas/VIEWS.md", m[1])
		}
	}
	for _, k := range All() {
		if !slices.Contains(views, k.View) {
			t.Errorf("KPI %s reads view %s, which 0004_kpis.sql does not create", k.Name, k.View)
		}
	}
}

// TestKPIsAreSnapshots checks that every KPI view reads a table the refresh
// fills: 0005 defines X_live and X_snapshot for it and analytics/refresh
// copies one into the other.
func TestKPIsAreSnapshots(t *testing.T) {
	sql, err := os.ReadFile("../../schemas/migrations/0005_snapshots.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range All() {
		for _, obj := range []string{"VIEW IF NOT EXISTS " + k.View + "_live AS", "TABLE IF NOT EXISTS " + k.View + "_snapshot",
			"VIEW IF NOT EXISTS " + k.View + " AS SELECT * FROM " + k.View + "_snapshot"} {
			if !regexp.MustCompile(`CREATE ` + regexp.QuoteMeta(obj)).Match(sql) {
				t.Errorf("KPI %s: 0005_snapshots.sql does not CREATE %s", k.Name, obj)
			}
		}
		if !slices.Contains(refresh.Snapshots, k.View) {
			t.Errorf("KPI %s: view %s is not in refresh.Snapshots", k.Name, k.View)
		}
	}
}
