package osv

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed/feedtest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func parseFile(t *testing.T, p string) feed.Advisory {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	a, probs, err := ParseJSON(data, filepath.Base(p))
	if err != nil || len(probs) > 0 {
		t.Fatalf("%s: %v %v", p, err, probs)
	}
	return a
}

// The log4j boundaries of the data README: 2.12.2 is fixed for 7rjr (range
// 0→2.12.2) but affected for p6xc (2.4.0→2.12.3); 2.16.0 is fixed for 7rjr
// but affected for p6xc (2.13.0→2.17.0); 2.14.1 is in both.
func TestLog4jBoundaries(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "advisories", "ghsa-direct")
	a7 := parseFile(t, filepath.Join(dir, "GHSA-7rjr-3q55-vv33.json"))
	p6 := parseFile(t, filepath.Join(dir, "GHSA-p6xc-xr62-6r2g.json"))
	feedtest.Golden(t, "GHSA-7rjr-3q55-vv33", a7)
	feedtest.Key(t, &a7)
	feedtest.Key(t, &p6)

	const eco, pkg = "Maven", "org.apache.logging.log4j:log4j-core"
	if len(a7.Ranges) == 0 || len(p6.Ranges) == 0 {
		t.Fatal("no ranges")
	}
	type iv struct{ intro, fixed string }
	has := func(a feed.Advisory, want iv) bool {
		for _, r := range a.Ranges {
			if r.Ecosystem == eco && r.Package == pkg && r.Introduced == want.intro && r.Fixed == want.fixed && r.Status == feed.StatusAffected {
				return true
			}
		}
		return false
	}
	for _, w := range []iv{{"2.13.0", "2.16.0"}, {"0", "2.12.2"}} {
		if !has(a7, w) {
			t.Errorf("GHSA-7rjr: no range %v in %+v", w, a7.Ranges)
		}
	}
	for _, w := range []iv{{"2.4.0", "2.12.3"}, {"2.13.0", "2.17.0"}} {
		if !has(p6, w) {
			t.Errorf("GHSA-p6xc: no range %v in %+v", w, p6.Ranges)
		}
	}
	for _, tc := range []struct {
		v         string
		in7, inP6 bool
	}{
		{"2.14.1", true, true},
		{"2.12.2", false, true},
		{"2.16.0", false, true},
		{"2.17.0", false, false},
		{"2.3.1", true, false}, // p6xc has 0→2.3.1 and 2.4.0→2.12.3
	} {
		if got := feedtest.Affected(t, &a7, eco, pkg, tc.v); got != tc.in7 {
			t.Errorf("GHSA-7rjr %s affected = %v, want %v", tc.v, got, tc.in7)
		}
		if got := feedtest.Affected(t, &p6, eco, pkg, tc.v); got != tc.inP6 {
			t.Errorf("GHSA-p6xc %s affected = %v, want %v", tc.v, got, tc.inP6)
		}
	}
	if a7.CVSS.Version != "3.1" || a7.CVSS.Score != 9.0 || a7.Severity != "critical" {
		t.Errorf("GHSA-7rjr cvss %+v severity %s", a7.CVSS, a7.Severity)
	}
	if got := a7.CVEs(); len(got) != 1 || got[0] != "CVE-2021-45046" {
		t.Errorf("GHSA-7rjr CVEs %v", got)
	}
}

// The Debian changelog-derived records: ecosystem with release, source
// package, fix date from database_specific, CVE from upstream.
func TestDebianDerived(t *testing.T) {
	data := []byte(`{"schema_version":"1.6.0","id":"DEBIAN-CVE-2004-2541","modified":"2026-01-01T00:00:00Z","published":"2006-06-10T18:06:36Z","upstream":["CVE-2004-2541"],"summary":"CVE-2004-2541 (derived from Debian changelog)","affected":[{"package":{"ecosystem":"Debian:12","name":"cscope"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"15.5+cvs20050816-1.1"}]}],"database_specific":{"source":"derived-from-debian-changelog","fix_date":"2006-06-10T18:06:36Z"}}]}`)
	a, probs, err := ParseJSON(data, "x.json")
	if err != nil || len(probs) > 0 {
		t.Fatal(err, probs)
	}
	feedtest.Key(t, &a)
	r := a.Ranges[0]
	if r.Ecosystem != "Debian:12" || r.Package != "cscope" || r.Comparator != "dpkg" || r.FixPublished.Year() != 2006 {
		t.Errorf("range %+v", r)
	}
	if !feedtest.Affected(t, &a, "Debian:12", "cscope", "15.5-1") || feedtest.Affected(t, &a, "Debian:12", "cscope", "15.5+cvs20050816-1.1") {
		t.Error("fixed boundary wrong")
	}
	if cves := a.CVEs(); len(cves) != 1 || cves[0] != "CVE-2004-2541" {
		t.Errorf("cves %v", cves)
	}
}

// Event semantics: last_affected is inclusive, limit and fixed exclusive,
// GIT ranges ignored, versions become single-version ranges, withdrawn kept.
func TestEvents(t *testing.T) {
	data := []byte(`{"id":"X-1","modified":"2024-01-02T03:04:05Z","withdrawn":"2024-02-01T00:00:00Z",
	"severity":[{"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],
	"affected":[{"package":{"ecosystem":"PyPI","name":"p"},
	  "ranges":[{"type":"GIT","repo":"r","events":[{"introduced":"abc"}]},
	            {"type":"ECOSYSTEM","events":[{"introduced":"1.0"},{"last_affected":"1.5"},{"introduced":"2.0"},{"limit":"2.5"},{"introduced":"3.0"}]}],
	  "versions":["1.10","0.9"]}]}`)
	a, probs, err := ParseJSON(data, "x.json")
	if err != nil || len(probs) > 0 {
		t.Fatal(err, probs)
	}
	feedtest.Key(t, &a)
	if !a.Withdrawn || a.CVSS.Version != "4.0" || a.CVSS.Score != 9.3 {
		t.Errorf("advisory %+v", a)
	}
	for _, tc := range []struct {
		v    string
		want bool
	}{{"0.8", false}, {"0.9", true}, {"1.0", true}, {"1.5", true}, {"1.5.1", false}, {"1.10", true}, {"2.0", true}, {"2.4.9", true}, {"2.5", false}, {"3.0", true}, {"99", true}} {
		if got := feedtest.Affected(t, &a, "PyPI", "p", tc.v); got != tc.want {
			t.Errorf("p %s affected = %v, want %v", tc.v, got, tc.want)
		}
	}
	var unfixed int
	for _, r := range a.Ranges {
		if r.Status == feed.StatusUnfixed {
			unfixed++
		}
	}
	if unfixed != 1+1+2 { // the limit and the open 3.0 intervals, and the version list (no fixed event)
		t.Errorf("%d unfixed ranges in %+v", unfixed, a.Ranges)
	}
}

// PyPA YAML: scalars stay strings, so 1.10 stays 1.10 (not the float 1.1).
func TestPyPAYAMLStrings(t *testing.T) {
	data := []byte("id: PYSEC-0000-1\nmodified: 2021-01-01T00:00:00Z\naffected:\n- package:\n    ecosystem: PyPI\n    name: p\n  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: \"0\"\n    - fixed: 1.10\n  versions:\n  - 1.10\n  - 1.1\n  ecosystem_specific:\n    n: 1.10\n")
	a, probs, err := ParseYAML(data, "x.yaml")
	if err != nil || len(probs) > 0 {
		t.Fatal(err, probs)
	}
	if a.Ranges[0].Fixed != "1.10" || a.Ranges[1].Introduced != "1.10" || a.Ranges[2].Introduced != "1.1" {
		t.Errorf("ranges %+v", a.Ranges)
	}
	if !strings.Contains(a.Specific, `"n":"1.10"`) {
		t.Errorf("specific %s", a.Specific)
	}
}

// Every record of the PyPA tree parses, and the YAML tree and its JSONL
// export give the same advisories (same hashes).
func TestPyPATree(t *testing.T) {
	f, err := os.Open(filepath.Join(testenv.SharedData(t), "advisories", "pypa-advisory-database-vulns.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	n, with110 := 0, 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, ".yaml") {
			continue
		}
		data, _ := io.ReadAll(tr)
		a, _, err := ParseYAML(data, h.Name)
		if err != nil {
			t.Errorf("%s: %v", h.Name, err)
			continue
		}
		n++
		for _, r := range a.Ranges {
			if r.Introduced == "1.10" || r.Fixed == "1.10" {
				with110++
				break
			}
		}
	}
	if n != 2661 {
		t.Errorf("%d PyPA records, want 2661", n)
	}
	if with110 == 0 {
		t.Error("no record kept a 1.10 version")
	}
}

func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"id":"X","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}],"versions":["0.1.0"]}],"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, _, err := ParseJSON(data, "fuzz.json")
		if err == nil {
			_ = feed.Key(&a, feedtest.Lookup)
			_ = a.Hash()
		}
	})
}

func FuzzParseYAML(f *testing.F) {
	f.Add([]byte("id: X\naffected:\n- package: {ecosystem: PyPI, name: a}\n  versions: [1.10]\n  ecosystem_specific: {a: [1, {b: 2}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, _, err := ParseYAML(data, "fuzz.yaml"); err == nil {
			_ = a.Hash()
		}
	})
}

// An Ubuntu record rates by Ubuntu's priority (the distribution's own
// rating) and keeps its CVSS vector's score: UBUNTU-CVE-2022-24823 is
// priority low with a CVSS 3.1 vector of 5.5.
func TestUbuntuPriority(t *testing.T) {
	a := parseFile(t, filepath.Join(testenv.SharedData(t), "advisories", "ubuntu-osv", "UBUNTU-CVE-2022-24823.json"))
	if a.Severity != "low" || a.CVSS.Version != "3.1" || a.CVSS.Score != 5.5 {
		t.Errorf("severity %s, cvss %s %v; want low, 3.1 5.5", a.Severity, a.CVSS.Version, a.CVSS.Score)
	}
}
