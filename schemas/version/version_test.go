package version

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func key(t *testing.T, eco, v string) string {
	t.Helper()
	k, err := Key(eco, v)
	if err != nil {
		t.Fatalf("Key(%q, %q): %v", eco, v, err)
	}
	return k
}

func TestLookup(t *testing.T) {
	for eco, want := range map[string]string{
		"Debian": "dpkg", "Debian:12": "dpkg", "Ubuntu": "dpkg", "Ubuntu:22.04:LTS": "dpkg", "Ubuntu:Pro:18.04:LTS": "dpkg",
		"Alpine": "apk", "Alpine:v3.18": "apk", "Wolfi": "apk", "Chainguard": "apk",
		"Red Hat": "rpm", "Red Hat:enterprise_linux:9": "rpm", "AlmaLinux": "rpm", "AlmaLinux:9": "rpm",
		"Rocky Linux": "rpm", "Rocky Linux:8": "rpm", "openSUSE": "rpm", "SUSE": "rpm",
		"npm": "semver", "crates.io": "semver", "Go": "go", "PyPI": "pep440", "Maven": "maven",
		"RubyGems": "rubygems", "NuGet": "nuget", "Packagist": "packagist",
	} {
		c, err := Lookup(eco)
		if err != nil {
			t.Errorf("Lookup(%q): %v", eco, err)
			continue
		}
		if c.Name() != want {
			t.Errorf("Lookup(%q).Name() = %q, want %q", eco, c.Name(), want)
		}
	}
	for _, eco := range []string{"", "debian", "Hackage", "Foo:1"} {
		if _, err := Lookup(eco); err == nil || !strings.Contains(err.Error(), "\""+eco+"\"") {
			t.Errorf("Lookup(%q): got %v, want an error naming it", eco, err)
		}
	}
}

func TestEqualKeys(t *testing.T) {
	for _, tc := range []struct {
		eco  string
		vers []string
	}{
		{"Debian", []string{"1.0", "0:1.0", "1.0-0", "0:1.0-00", "1.00"}},
		{"Debian", []string{"9", "9-0"}},
		{"Red Hat", []string{"1.0-1", "0:1.0-1", "1_0-1", "01.0-1"}},
		{"Alpine", []string{"1.2.3-r7", "1.2.3-r07", "01.2.3-r7"}},
		{"npm", []string{"1.2.3", "v1.2.3", "=1.2.3", "1.2.3+build.5", " v1.2.3"}},
		{"Go", []string{"v2.0.0+incompatible", "2.0.0", "v2.0.0", "v2", "v2.0"}},
		{"PyPI", []string{"1.0", "1.0.0", "v1.0", "0!1.0", " 1.0 "}},
		{"PyPI", []string{"1.0rc1", "1.0c1", "1.0-rc.1", "1.0RC1", "1.0.rc1"}},
		{"PyPI", []string{"1.0.post1", "1.0-1", "1.0.r1", "1.0post1"}},
		{"Maven", []string{"1", "1.0", "1.0.0", "1-ga", "1.final", "1-0"}},
		{"NuGet", []string{"1.0", "1.0.0", "1.0.0.0", "1.0.0+meta"}},
		{"NuGet", []string{"1.0.0-BETA", "1.0.0-beta"}},
		{"RubyGems", []string{"1", "1.0", "1.0.0"}},
		{"Packagist", []string{"1.0.0", "v1.0.0", "1-0-0"}},
	} {
		k0 := key(t, tc.eco, tc.vers[0])
		for _, v := range tc.vers[1:] {
			if k := key(t, tc.eco, v); k != k0 {
				t.Errorf("%s: %q and %q: keys %x and %x differ", tc.eco, tc.vers[0], v, k0, k)
			}
		}
	}
}

func TestOrder(t *testing.T) {
	for _, tc := range []struct {
		eco  string
		vers []string // strictly ascending
	}{
		{"Debian", []string{"1.0~rc1", "1.0", "1.0-1", "1.0-1+deb12u1", "1.0a", "1.0+b1", "1.0.1", "1:0.1"}},
		{"Alpine", []string{"1.2.3_rc1", "1.2.3", "1.2.3-r7", "1.2.3-r17", "1.2.3_p1", "1.2.3a", "1.2.4"}},
		{"Red Hat", []string{"1.0~rc1", "1.0", "1.0-1.el9", "1.0-1.el9_1", "1.0^git1", "1.0a", "1.0.1", "1:0.1"}},
		{"Go", []string{"v0.0.0-20191109021931-daa7c04131f5", "v0.1.0", "v1.0.0-rc.1", "v1.0.0", "v1.10.0", "v2.0.0+incompatible"}},
		{"npm", []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.10"}},
		{"PyPI", []string{"1.0.dev1", "1.0a1", "1.0rc1", "1.0", "1.0+local.1", "1.0.post1", "1.1", "1!0.1"}},
		{"Maven", []string{"1.0-alpha-1", "1.0-beta", "1.0-SNAPSHOT", "1.0", "1.0-sp", "1.0-1", "1.0.1"}},
		{"RubyGems", []string{"1.0.a", "1.0.b1", "1.0.pre", "1.0", "1.0.1"}},
		{"Packagist", []string{"1.0-dev", "1.0-alpha1", "1.0-beta", "1.0-RC1", "1.0", "1.0.0", "1.0-pl1"}},
		{"NuGet", []string{"1.0.0-alpha", "1.0.0-alpha.2", "1.0.0-alpha.10", "1.0.0", "1.0.0.1"}},
	} {
		for i := 1; i < len(tc.vers); i++ {
			if a, b := key(t, tc.eco, tc.vers[i-1]), key(t, tc.eco, tc.vers[i]); a >= b {
				t.Errorf("%s: want %q < %q", tc.eco, tc.vers[i-1], tc.vers[i])
			}
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct{ eco, v string }{
		{"Debian", ""}, {"Debian", "a:1.0"}, {"Debian", "1.0-"}, {"Debian", "1.0 beta"}, {"Debian", "1_0"},
		{"Red Hat", ""}, {"Red Hat", "1.0 1"},
		{"Alpine", "1.0bc"}, {"Alpine", "1.0_foo"}, {"Alpine", "1.0-r"}, {"Alpine", "v1.0"},
		{"npm", "1.0"}, {"npm", "1.0.0-"}, {"Go", "v1.02.0"}, {"Go", "v1.2-pre"}, {"Go", "1.0.0-01"},
		{"PyPI", "1.0-foo"}, {"PyPI", "latest"}, {"Maven", ""}, {"RubyGems", "1.0 2"}, {"NuGet", "1.0.0.0.0"},
		{"Packagist", ""}, {"Debian", "1." + strings.Repeat("9", 300)},
	} {
		c, _ := Lookup(tc.eco)
		dst := []byte("prefix")
		out, err := c.AppendKey(dst, tc.v)
		var inv *InvalidError
		if !errors.As(err, &inv) {
			t.Errorf("%s %q: got %v, want an InvalidError", tc.eco, tc.v, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.eco) || !strings.Contains(err.Error(), "\""+tc.v+"\"") {
			t.Errorf("%s %q: error %q does not name ecosystem and input", tc.eco, tc.v, err)
		}
		if !bytes.Equal(out, []byte("prefix")) {
			t.Errorf("%s %q: dst changed to %q on error", tc.eco, tc.v, out)
		}
	}
}

// TestRPMMissingReleaseOrder pins the total order chosen where rpm's own
// comparison is not transitive (see rpm.go): rpm's rpmverCmp says 1.0 ==
// 1.0-1 and 1.0 == 1.0-2 but 1.0-1 < 1.0-2. A missing (or empty) release
// sorts before every release.
func TestRPMMissingReleaseOrder(t *testing.T) {
	k := func(v string) string { return key(t, "Red Hat", v) }
	if !(k("1.0") < k("1.0-1") && k("1.0-1") < k("1.0-2")) {
		t.Error("want 1.0 < 1.0-1 < 1.0-2")
	}
	if k("1.0") != k("1.0-") || k("1.0") != k("0:1.0") {
		t.Error("want 1.0 == 1.0- == 0:1.0")
	}
	// A ':' not preceded by digits only is part of the version, as in rpm.
	if !(k("a:1") < k("b:1")) {
		t.Error("want a:1 < b:1")
	}
}

// TestMavenCycle pins our total order where ComparableVersion has a cycle
// (see maven.go): it says 2.9.0-1 < 2.9.0.RC1, 2.9.0.RC1 < 2.9 and
// 2.9 < 2.9.0-1. We keep the two comparisons with the shorter version.
func TestMavenCycle(t *testing.T) {
	k := func(v string) string { return key(t, "Maven", v) }
	if !(k("2.9.0.RC1") < k("2.9") && k("2.9") < k("2.9.0-1")) {
		t.Error("want 2.9.0.RC1 < 2.9 < 2.9.0-1")
	}
}

func TestCompare(t *testing.T) {
	if c, err := Compare("Alpine:v3.18", "1.2.3-r17", "1.2.3-r7"); err != nil || c != 1 {
		t.Errorf("Compare: %d, %v", c, err)
	}
	if _, err := Compare("Alpine", "1.0", "x"); err == nil {
		t.Error("Compare with an invalid version: no error")
	}
	if _, err := Compare("Nope", "1", "2"); err == nil {
		t.Error("Compare with an unknown ecosystem: no error")
	}
}

func TestEcosystemNamesAnyCase(t *testing.T) {
	for in, want := range map[string]string{
		"debian:12": "Debian:12", "DEBIAN": "Debian", "pypi": "PyPI", "red hat:9": "Red Hat:9",
		"Alpine:v3.18": "Alpine:v3.18", "crates.IO": "crates.io",
	} {
		got, err := Canonical(in)
		if err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
		// Lookup itself stays exact (stored data uses OSV's spelling), and
		// says how OSV spells a name given in another case.
		if _, err := Lookup(in); in != want && (err == nil || !strings.Contains(err.Error(), want[:strings.IndexByte(want+":", ':')])) {
			t.Errorf("Lookup(%q): %v, want an error naming %q", in, err, want)
		}
	}
	if _, err := Canonical("debain:12"); err == nil || !strings.Contains(err.Error(), "Debian") {
		t.Errorf("a typo must be refused with the known names: %v", err)
	}
	eco := Ecosystems()
	if len(eco) != len(ecosystems) || eco[0] != "AlmaLinux" {
		t.Errorf("Ecosystems() = %v", eco)
	}
}
