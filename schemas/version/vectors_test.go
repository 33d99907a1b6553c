package version

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// sharedData is ../shared/data; the vectors are not copied into the repository.
func sharedData(t testing.TB) string { return testenv.SharedData(t) }

type vectorPair struct {
	line     int
	a, op, b string
}

// readPairs reads "A op B" lines: tab-separated when the line has a tab
// (versions may then contain spaces), else space-separated. '#' and '//'
// start comments; ops other than <, =, ==, > (apk's fuzzy ~ family) are
// skipped.
func readPairs(t testing.TB, path string) []vectorPair {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vectorPair
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "//") || strings.TrimSpace(line) == "" {
			continue
		}
		var fields []string
		if strings.Contains(line, "\t") && !strings.Contains(line, " #") && !strings.Contains(line, "\t#") {
			fields = strings.Split(line, "\t")
		} else {
			if i := strings.Index(line, "#"); i >= 0 {
				line = line[:i]
			}
			fields = strings.Fields(line)
		}
		if len(fields) < 3 {
			continue
		}
		op := fields[1]
		switch op {
		case "<", ">", "=":
		case "==":
			op = "="
		default:
			continue
		}
		out = append(out, vectorPair{n, fields[0], op, fields[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no pairs", path)
	}
	return out
}

func opOf(c int) string {
	switch {
	case c < 0:
		return "<"
	case c > 0:
		return ">"
	}
	return "="
}

func mustKey(t testing.TB, c Comparator, v string) ([]byte, error) {
	t.Helper()
	return c.AppendKey(nil, v)
}

// vectorFile is one file of ordering vectors and the cases where we knowingly
// differ from it, each with the reason.
type vectorFile struct {
	path      string
	ecosystem string
	// known maps "A op B" to why our key does not reproduce that line.
	known map[string]string
	// rejected lists versions we refuse (with an error) although the file
	// orders them; pairs holding one are skipped.
	rejected []string
	// rejectedShared: rejected is shared between files, so not every
	// version occurs in each.
	rejectedShared bool
}

func checkVectorFile(t *testing.T, vf vectorFile) {
	c, err := Lookup(vf.ecosystem)
	if err != nil {
		t.Fatal(err)
	}
	pairs := readPairs(t, filepath.Join(sharedData(t), "versions", vf.path))
	seen := map[string]bool{}
	rejected := map[string]bool{}
	for _, v := range vf.rejected {
		rejected[v] = false
	}
	ok, skipped := 0, 0
	for _, p := range pairs {
		id := p.a + " " + p.op + " " + p.b
		ka, errA := mustKey(t, c, p.a)
		kb, errB := mustKey(t, c, p.b)
		if _, ra := rejected[p.a]; ra || func() bool { _, rb := rejected[p.b]; return rb }() {
			for _, x := range []struct {
				v   string
				err error
			}{{p.a, errA}, {p.b, errB}} {
				if _, r := rejected[x.v]; r {
					if x.err == nil {
						t.Errorf("%s:%d: %q is listed as rejected but got a key", vf.path, p.line, x.v)
					}
					rejected[x.v] = true
				}
			}
			skipped++
			continue
		}
		got := ""
		switch {
		case errA != nil:
			got = "invalid: " + errA.Error()
		case errB != nil:
			got = "invalid: " + errB.Error()
		default:
			got = opOf(bytes.Compare(ka, kb))
		}
		if got == p.op {
			if _, listed := vf.known[id]; listed {
				t.Errorf("%s:%d: %q is listed as a known difference but now agrees", vf.path, p.line, id)
			}
			ok++
			continue
		}
		if _, listed := vf.known[id]; listed {
			seen[id] = true
			continue
		}
		t.Errorf("%s:%d: %q: got %s", vf.path, p.line, id, got)
	}
	for id := range vf.known {
		if !seen[id] {
			t.Errorf("%s: known difference %q not found in the file", vf.path, id)
		}
	}
	for v, used := range rejected {
		if !used && !vf.rejectedShared {
			t.Errorf("%s: rejected version %q not found in the file", vf.path, v)
		}
	}
	t.Logf("%s: %d/%d pairs agree, %d known differences, %d pairs with rejected versions",
		vf.path, ok, len(pairs), len(seen), skipped)
}

func TestVectors(t *testing.T) {
	for _, vf := range vectorFiles {
		t.Run(vf.path, func(t *testing.T) { checkVectorFile(t, vf) })
	}
}

var vectorFiles = []vectorFile{
	{path: "dpkg/dpkg-pairs.tsv", ecosystem: "Debian"},
	{path: "dpkg/dpkg-pairs-derived-inventory-vs-dsa-dla.tsv", ecosystem: "Debian:12"},
	{path: "osv-semantic/debian-versions.txt", ecosystem: "Debian"},
	{path: "osv-semantic/debian-versions-generated.txt", ecosystem: "Ubuntu:22.04:LTS"},
	{path: "rpm/rpm-pairs.tsv", ecosystem: "Red Hat"},
	{path: "claircore/rpmver-rpmvercmp.txt", ecosystem: "AlmaLinux:9"},
	{
		path: "osv-semantic/redhat-versions.txt", ecosystem: "Red Hat:enterprise_linux:9",
		known: map[string]string{
			// osv-scalibr keeps the '-' in the release and orders "-" after
			// "". rpm parses "1-" as an empty release, and rpmverCmp then
			// equals "1" (no release): so do we.
			"1 < 1-": "empty release equals a missing one",
		},
	},
	{
		// apk-tools' own test data; these two lines sit under "invalid.
		// do string sort": apk-tools compares invalid versions as strings,
		// we refuse them.
		path: "apk/version.data", ecosystem: "Alpine",
		rejected: []string{"23_foo", "1.0bc"},
	},
	{
		// osv-scalibr's hand-written cases include inputs apk-tools rejects
		// (apk version -t prints nothing useful for them).
		path: "osv-semantic/alpine-versions.txt", ecosystem: "Alpine:v3.18",
		rejected: []string{
			".1", ".2", "0...1...0", "0...1...0.r1", "0...1...0r1", "0..1..0", "0..8", "0.8.21.r2", "0.r1",
			"1-r", "1-r-0", "1-r-1", "1-r0-1", "1-r0-ruff2", "1-ruff", "1-ruff2", "1.0bc", "1.2.0A", "1.2.0D",
			"1.2_blah", "1.2_csv2", "10.2.24.r0", "23_foo", "a", "c",
		},
	},
	{path: "osv-semantic/alpine-versions-generated.txt", ecosystem: "Wolfi"},
	{path: "semver/semver-pairs.tsv", ecosystem: "npm"},
	{
		// osv-scalibr's "semver-like" parser accepts any dotted numbers;
		// SemVer 2.0 (npm, crates.io) does not.
		path: "osv-semantic/semver-versions.txt", ecosystem: "crates.io",
		rejected: []string{"999999999999999999999999999991", "999999999999999999999999999999", "1.1.3.4.5"},
	},
	{path: "osv-semantic/pypi-versions.txt", ecosystem: "PyPI", rejected: pypiLegacy, rejectedShared: true},
	{path: "osv-semantic/pypi-versions-generated.txt", ecosystem: "PyPI", rejected: pypiLegacy, rejectedShared: true},
}

// pypiLegacy are versions that are not PEP 440. packaging >= 22 raises
// InvalidVersion for them (pip refuses them); the OSV generator still
// ordered them with the removed LegacyVersion. We refuse them too.
var pypiLegacy = []string{
	"-class.-jw.util.version.Version-", "-class.-jw.util.version.version-dev", "-class.-jw.util.version.version-pre",
	"-class.-jw.util.version.version-preview", "0.0.1-test1", "0.1-bulbasaur", "0.1-charmander", "0.3.1-p1",
	"0.3m1", "0.3m2", "0.3m3", "0.3m4", "0.3m5", "0.4.0-p1", "0.4m1", "0.4m2", "0.4m3", "0.4m4", "0.4m5", "0.5m1",
	"0.5m2", "0.5m3", "0.5m4", "0.5m5", "0.6m1", "0.6m2", "0.6m3", "0.6m4", "0.6m5", "0.6m6", "0.7.1.fix1",
	"0.7.10p1", "0.7.11p1", "0.7.11p2", "0.7.11p3", "0.7.4.svn.r2010", "0.8.1p1", "0.8.3p1", "0.8.4p1", "0.8.4p2",
	"0.8.6p1", "0.8.7p1", "0.9-doduo", "0.9-eevee", "0.9-fearow", "0.9-gyarados", "0.9-horsea", "0.9-ivysaur",
	"1.0beta6.1", "1.3.1-STAGING", "2.0.0-final", "2.0.1rc2-git", "4.11-final", "5.0-final", "a3", "trunk",
	"2013-01-21T20:33:09+0100", "2013-01-23T17:11:52+0100", "2013-02-01T20:50:46+0100", "2013-02-02T19:59:03+0100",
	"2013-02-02T20:23:17+0100", "2013-02-08T17:40:57+0000", "2013-03-27T16:32:26+0100", "2013-05-09T12:47:53+0200",
	"2013-05-10T17:55:56+0200", "2013-05-14T20:16:05+0200", "2013-06-01T10:32:51+0200", "2013-07-19T09:11:08+0000",
	"2013-08-12T21:48:56+0200", "2013-09-11T19-27-10", "2013-12-23T17-51-15", "2014-01-12T15-52-10",
}

func init() {
	vectorFiles = append(vectorFiles,
		vectorFile{
			path: "osv-semantic/maven-versions.txt", ecosystem: "Maven",
			known: map[string]string{
				// The flat "version order specification" on maven.apache.org
				// says equal; ComparableVersion's tree drops the "ga" and
				// compares the list [1] with the number 1: list < number.
				"1-1 = 1-ga-1": "ComparableVersion tree, not the flat spec",
			},
		},
		vectorFile{
			path: "osv-semantic/maven-versions-generated.txt", ecosystem: "Maven",
			known: map[string]string{
				// ComparableVersion cycles (see maven.go): 2.9.0-1 < 2.9.0.RC1
				// (list < number) but 2.9.0.RC1 < 2.9 < 2.9.0-1. Our total
				// order keeps the comparisons with the shorter version.
				"2.9.0-1 < 2.9.0.RC1":                     "ComparableVersion is not transitive",
				"1.0.0-gradle-rework-beta3 < 1.0.0.RC7-3": "ComparableVersion is not transitive",
				"1.1.0-01-glassfish < 1.1.0.Beta1":        "ComparableVersion is not transitive",
			},
		},
		vectorFile{path: "claircore/maven-compare.list", ecosystem: "Maven"},
	)
}

func init() {
	vectorFiles = append(vectorFiles,
		vectorFile{path: "osv-semantic/nuget-versions.txt", ecosystem: "NuGet"},
		vectorFile{
			// Gem::Version's pattern wants '.' or '-' before letters:
			// Gem::Version.new("1beta") raises "Malformed version number".
			path: "osv-semantic/rubygems-versions.txt", ecosystem: "RubyGems",
			rejected: []string{"1beta", "1gamma"},
		},
		vectorFile{path: "osv-semantic/rubygems-versions-generated.txt", ecosystem: "RubyGems"},
		vectorFile{path: "osv-semantic/packagist-versions.txt", ecosystem: "Packagist"},
		vectorFile{path: "osv-semantic/packagist-versions-generated.txt", ecosystem: "Packagist"},
	)
}

// TestRPMNEVRA takes claircore's NEVRA lines whose name and arch agree and
// compares their EVRs (name and arch are the join key, not the version).
func TestRPMNEVRA(t *testing.T) {
	arches := map[string]bool{"noarch": true, "x86_64": true, "aarch64": true, "riscv": true, "i686": true, "s390x": true, "ppc64le": true, "src": true}
	split := func(nevra string) (name, evr, arch string) {
		if i := strings.LastIndexByte(nevra, '.'); i >= 0 && arches[nevra[i+1:]] {
			nevra, arch = nevra[:i], nevra[i+1:]
		}
		if strings.Count(nevra, "-") < 2 {
			return "", nevra, arch
		}
		i := strings.LastIndexByte(nevra, '-')
		i = strings.LastIndexByte(nevra[:i], '-')
		return nevra[:i], nevra[i+1:], arch
	}
	c, _ := Lookup("Red Hat")
	checked := 0
	for _, p := range readPairs(t, filepath.Join(sharedData(t), "versions", "claircore", "rpmver-compare.txt")) {
		na, ea, aa := split(p.a)
		nb, eb, ab := split(p.b)
		if na != nb || aa != ab {
			continue
		}
		got, err := c.Compare(ea, eb)
		if err != nil {
			t.Errorf("line %d: %v", p.line, err)
			continue
		}
		if opOf(got) != p.op {
			t.Errorf("line %d: %s %s %s: got %s", p.line, p.a, p.op, p.b, opOf(got))
		}
		checked++
	}
	if checked < 6 {
		t.Errorf("only %d lines checked", checked)
	}
}
