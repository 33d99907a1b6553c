package lang

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestTrivyFixtures(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "inventories", "lang", "trivy-fixtures")
	res, err := Scan(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ eco, name, version string }
	got := map[key]bool{}
	perEco := map[string]int{}
	for _, p := range res.Packages {
		got[key{p.Ecosystem, p.Name, p.Version}] = true
		perEco[p.Ecosystem]++
		if !strings.HasPrefix(p.Location, dir) && !filepath.IsAbs(p.Location) {
			t.Errorf("location %q", p.Location)
		}
	}
	t.Logf("per ecosystem: %v; warnings: %q", perEco, res.Warnings)
	for _, want := range []key{
		{"Go", "golang.org/x/text", "0.3.6"}, // no "v": OSV SEMVER events have none
		{"Go", "github.com/open-policy-agent/opa", "0.35.0"},
		{"npm", "jquery", "3.3.9"},
		{"PyPI", "Werkzeug", "0.11"}, // as written; PyPI names are matched case-insensitively
		{"Maven", "com.fasterxml.jackson.core:jackson-databind", "2.9.1"},
		{"crates.io", "smallvec", "0.6.9"},
	} {
		if !got[want] {
			t.Errorf("missing %+v", want)
		}
	}
	for _, eco := range []string{"Go", "npm", "PyPI", "Maven", "crates.io", "Packagist"} {
		if perEco[eco] == 0 {
			t.Errorf("no %s packages", eco)
		}
	}
}
