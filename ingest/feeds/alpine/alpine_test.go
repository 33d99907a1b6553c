package alpine

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed/feedtest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func parse(t *testing.T, p, dirRelease string) []feed.Advisory {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	advs, probs, err := Parse(data, filepath.Base(p), dirRelease)
	if err != nil || len(probs) > 0 {
		t.Fatalf("%s: %v %v", p, err, probs)
	}
	return advs
}

// affectedCVEs lists the CVEs whose ranges contain pkg@v.
func affectedCVEs(t *testing.T, advs []feed.Advisory, eco, pkg, v string) []string {
	var out []string
	for i := range advs {
		feedtest.Key(t, &advs[i])
		if feedtest.Affected(t, &advs[i], eco, pkg, v) {
			out = append(out, advs[i].ID)
		}
	}
	slices.Sort(out)
	return out
}

// The expected matches of the data README §5 (vuln-list docs × the apk
// inventories), matched on the apk origin.
func TestExpectedMatches(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "advisories", "alpine-secdb-vuln-list")
	for _, tc := range []struct {
		rel, pkg, version string
		want              []string
	}{
		{"3.18", "busybox", "1.36.0-r9", []string{"CVE-2022-48174", "CVE-2023-42363", "CVE-2023-42364", "CVE-2023-42365", "CVE-2023-42366"}},
		{"3.18", "openssl", "3.1.0-r4", []string{"CVE-2023-2650", "CVE-2023-2975", "CVE-2023-3446", "CVE-2023-3817", "CVE-2023-5363", "CVE-2023-5678", "CVE-2023-6129", "CVE-2023-6237"}},
		{"3.18", "zlib", "1.2.13-r1", nil},
		{"3.18", "apk-tools", "2.14.0-r0", nil},
		{"3.16", "busybox", "1.35.0-r17", []string{"CVE-2023-42366"}},
		{"3.16", "openssl", "1.1.1q-r0", []string{"CVE-2022-4304", "CVE-2022-4450", "CVE-2023-0215", "CVE-2023-0286", "CVE-2023-0464", "CVE-2023-0465", "CVE-2023-2650", "CVE-2023-3446", "CVE-2023-3817", "CVE-2023-5678"}},
		{"3.16", "zlib", "1.2.12-r3", nil},
	} {
		advs := parse(t, filepath.Join(dir, tc.rel, "main", tc.pkg+".json"), "")
		for _, a := range advs {
			if a.Source != "alpine-secdb:v"+tc.rel+"/main/"+tc.pkg {
				t.Fatalf("source %q", a.Source)
			}
		}
		got := affectedCVEs(t, advs, "Alpine:v"+tc.rel, tc.pkg, tc.version)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %s %s: got %v, want %v", tc.rel, tc.pkg, tc.version, got, tc.want)
		}
	}
}

// A "0" key means not affected: the range is kept with that status and
// never matches.
func TestZeroKeyNotAffected(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "advisories", "alpine-secdb-vuln-list")
	advs := parse(t, filepath.Join(dir, "3.18", "main", "zlib.json"), "")
	found := false
	for i := range advs {
		a := &advs[i]
		if a.ID != "CVE-2023-45853" {
			continue
		}
		found = true
		if len(a.Ranges) != 1 || a.Ranges[0].Status != feed.StatusNotAffected {
			t.Errorf("CVE-2023-45853 ranges %+v", a.Ranges)
		}
		feedtest.Key(t, a)
		if feedtest.Affected(t, a, "Alpine:v3.18", "zlib", "1.2.13-r1") {
			t.Error("a not_affected range matched")
		}
	}
	if !found {
		t.Error("CVE-2023-45853 missing")
	}
}

// Legacy YAML: libcrypto1.1 1.1.1c-r0 (origin openssl) → CVE-2019-1549
// (openssl secfix 1.1.1d-r0); ids with aliases ("CVE-… XSA-…").
func TestLegacyYAML(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "advisories", "alpine-secdb-legacy")
	data, err := os.ReadFile(filepath.Join(dir, "v3.10", "main.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	advs, _, err := Parse(data, "v3.10/main.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := affectedCVEs(t, advs, "Alpine:v3.10", "openssl", "1.1.1c-r0"); !slices.Contains(got, "CVE-2019-1549") {
		t.Errorf("openssl 1.1.1c-r0: %v", got)
	}
	for _, a := range advs {
		if a.Source != "alpine-secdb:v3.10/main" {
			t.Fatalf("source %q", a.Source)
		}
	}
	data, _ = os.ReadFile(filepath.Join(dir, "v3.8", "main.yaml"))
	advs, _, err = Parse(data, "v3.8/main.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(advs, func(a feed.Advisory) bool { return a.ID == "CVE-2017-8904" })
	if i < 0 || !slices.Contains(advs[i].Aliases, "XSA-214") {
		t.Errorf("CVE-2017-8904 with alias XSA-214 missing")
	}
}

func TestGolden(t *testing.T) {
	base := filepath.Join(testenv.SharedData(t), "advisories")
	feedtest.Golden(t, "claircore-v3.10-community", parse(t, filepath.Join(base, "alpine-secdb-json", "claircore-v3.10-community.json"), ""))
	cg := parse(t, filepath.Join(base, "chainguard-wolfi-secdb", "vunnel-chainguard-security.json"), "")
	if len(cg) == 0 || cg[0].Source != "chainguard-secdb" || cg[0].Ranges[0].Ecosystem != "Chainguard" {
		t.Errorf("chainguard: %+v", cg[:1])
	}
	// The release comes from the directory when the document has none.
	advs, _, err := Parse([]byte(`{"name":"x","secfixes":{"1.0-r1":["CVE-1"]}}`), "x.json", "v3.19")
	if err != nil || advs[0].Ranges[0].Ecosystem != "Alpine:v3.19" {
		t.Errorf("%v %+v", err, advs)
	}
	if _, _, err := Parse([]byte(`{"name":"x","secfixes":{}}`), "x.json", ""); err == nil {
		t.Error("no release: no error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"distroversion":"v3.18","reponame":"main","packages":[{"pkg":{"name":"a","secfixes":{"0":["CVE-1"],"1.0-r1":["CVE-2 XSA-1"]}}}]}`))
	f.Add([]byte("distroversion: v3.10\npackages:\n  - pkg:\n      name: a\n      secfixes:\n        1.2-r0:\n          - CVE-1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		advs, _, err := Parse(data, "fuzz", "v3.18")
		if err == nil {
			for i := range advs {
				_ = feed.Key(&advs[i], feedtest.Lookup)
			}
		}
	})
}
