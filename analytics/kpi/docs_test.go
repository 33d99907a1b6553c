package kpi

import (
	"os"
	"regexp"
	"slices"
	"testing"
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
