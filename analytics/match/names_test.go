package match

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/scanner/inventory/lang"
	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/version"
)

var nameCases = []struct{ eco, in, want string }{
	{"PyPI", "Flask", "flask"},
	{"PyPI", "Django", "django"},
	{"PyPI", "zope.interface", "zope-interface"},
	{"PyPI", "Foo__Bar--baz..Q", "foo-bar-baz-q"},
	{"PyPI", "-_leading.and.trailing_", "-leading-and-trailing-"},
	{"PyPI", "ruamel.yaml.clib", "ruamel-yaml-clib"},
	{"NuGet", "Newtonsoft.Json", "newtonsoft.json"},
	{"Packagist", "Symfony/HTTP-Kernel", "symfony/http-kernel"},
	{"npm", "JSONStream", "JSONStream"}, // npm names are case-sensitive
	{"Maven", "org.Apache:Foo_bar", "org.Apache:Foo_bar"},
	{"Go", "github.com/BurntSushi/toml", "github.com/BurntSushi/toml"},
	{"Debian:12", "Foo.Bar", "Foo.Bar"},
	{"crates.io", "Serde_json", "Serde_json"},
}

func TestNormalizeName(t *testing.T) {
	for _, c := range nameCases {
		if got := NormalizeName(c.eco, c.in); got != c.want {
			t.Errorf("NormalizeName(%q, %q) = %q, want %q", c.eco, c.in, got, c.want)
		}
	}
}

// TestNameKeySQLEqualsGo holds the SQL form of the naming table to the Go
// form on the real store.
func TestNameKeySQLEqualsGo(t *testing.T) {
	s := testStore(t)
	for _, c := range nameCases {
		var got string
		q := fmt.Sprintf("SELECT %s FROM (SELECT ? AS eco, ? AS n)", nameKeySQL("eco", "n"))
		if _, err := queryOne(context.Background(), s, q, []any{c.eco, c.in}, &got); err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("SQL name key of (%q, %q) = %q, want %q", c.eco, c.in, got, c.want)
		}
	}
}

// TestNamesPyPIRealData: requirements.txt spells Flask==2.0.0; the PyPA
// advisory database keys it as flask. Both matchers (stdin MatchInputs and
// the fleet job) must treat the spellings alike.
func TestNamesPyPIRealData(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the PyPA advisory database")
	}
	data := testenv.SharedData(t)
	s := testStore(t)
	loadFeeds(t, s, filepath.Join(data, "advisories"), "pypa-advisory-database-osv.jsonl.gz")
	ctx := context.Background()

	count := func(name, ver string) int {
		t.Helper()
		res, err := MatchInputs(ctx, s, version.Compare, []Input{{Ecosystem: "PyPI", Name: name, Version: ver}})
		if err != nil {
			t.Fatal(err)
		}
		return len(res[0])
	}
	for _, c := range []struct {
		upper, lower, ver string
		want              int // -1: just equal and > 0
	}{
		{"Django", "django", "3.2.0", 25},
		{"Flask", "flask", "1.0", -1},
		{"Werkzeug", "werkzeug", "0.11", -1},
		{"Jinja2", "jinja2", "2.10", -1},
		{"PyYAML", "pyyaml", "5.3", -1},
	} {
		u, l := count(c.upper, c.ver), count(c.lower, c.ver)
		if u != l || l == 0 || (c.want >= 0 && l != c.want) {
			t.Errorf("%s %s: %d advisories, %s %s: %d (want equal%s)", c.upper, c.ver, u, c.lower, c.ver, l,
				map[bool]string{true: fmt.Sprintf(", %d", c.want), false: ", > 0"}[c.want >= 0])
		}
	}

	// The fleet job: the trivy requirements.txt fixture as scanned, and the
	// same packages spelled the way the advisories key them. Both hosts
	// must get the same advisories per package.
	res, err := lang.Scan(ctx, filepath.Join(data, "inventories/lang/trivy-fixtures/pip"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) == 0 {
		t.Fatal("requirements.txt fixture: no packages")
	}
	var lower []inventory.Package
	for _, p := range res.Packages {
		p.Name = NormalizeName(p.Ecosystem, p.Name)
		lower = append(lower, p)
	}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	storeInventory(t, s, "as-written", "", at, res.Packages)
	// An incremental run first, with every version new: it reads only the
	// ranges whose normalized names its pending versions have, and must
	// find what the full run finds below.
	runJob(t, s, Incremental)
	incremental := exposedIDs(t, s, "as-written")
	storeInventory(t, s, "lower", "", at, lower)
	runJob(t, s, Full)
	asWritten, low := exposedIDs(t, s, "as-written"), exposedIDs(t, s, "lower")
	if !maps.EqualFunc(incremental, asWritten, slices.Equal) {
		t.Errorf("incremental run found %v, full run %v", incremental, asWritten)
	}
	if len(asWritten["Werkzeug"]) == 0 || len(asWritten["Flask"]) == 0 {
		t.Errorf("as written: Werkzeug %v, Flask %v; want findings for both", asWritten["Werkzeug"], asWritten["Flask"])
	}
	for _, p := range res.Packages {
		a, b := asWritten[p.Name], low[NormalizeName(p.Ecosystem, p.Name)]
		if !slices.Equal(a, b) {
			t.Errorf("%s %s: fleet job found %v, as %s %v", p.Name, p.Version, a, NormalizeName(p.Ecosystem, p.Name), b)
		}
	}

	// stdin and fleet agree per package.
	for _, p := range res.Packages {
		m, err := MatchInputs(ctx, s, version.Compare, []Input{{Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, x := range m[0] {
			ids = append(ids, x.AdvisoryID)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		if got := asWritten[p.Name]; !slices.Equal(ids, got) && !(len(ids) == 0 && len(got) == 0) {
			t.Errorf("%s %s: stdin %v, fleet %v", p.Name, p.Version, ids, got)
		}
	}
}
