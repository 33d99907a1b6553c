package nodewg

import (
	"archive/tar"
	"bufio"
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

func contains(ivs []interval, v string) bool {
	for _, iv := range ivs {
		if iv.lo != "" && cmp(v, iv.lo) < 0 {
			continue
		}
		if iv.hi != "" && (cmp(v, iv.hi) > 0 || cmp(v, iv.hi) == 0 && !iv.hiIncl) {
			continue
		}
		return true
	}
	return false
}

// node-semver's own range fixtures (strict mode, release versions: our
// intervals include prereleases by key order, node-semver excludes those
// of other tuples, a documented difference).
func TestRangeFixtures(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "versions", "semver")
	n := 0
	for file, want := range map[string]bool{"range-include.tsv": true, "range-exclude.tsv": false} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			cols := strings.Split(sc.Text(), "\t")
			if len(cols) < 2 || len(cols) > 2 && cols[2] != "" || strings.ContainsAny(cols[1], "-+") || !full(cols[1]) {
				continue
			}
			ivs, err := parseRange(cols[0])
			if err != nil {
				continue // loose syntax node-semver accepts only with options
			}
			n++
			if got := contains(ivs, cols[1]); got != want {
				t.Errorf("%s: %q contains %q = %v, want %v (%+v)", file, cols[0], cols[1], got, want, ivs)
			}
		}
		f.Close()
	}
	if n < 100 {
		t.Errorf("only %d fixture rows checked", n)
	}
}

func TestRanges(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []interval
	}{
		{"<=1.5.1", []interval{{"", "1.5.1", true}}},
		{">=1.5.2", []interval{{"1.5.2", "", false}}},
		{"^8.1.4 || ^7.10.1", []interval{{"8.1.4", "9.0.0-0", false}, {"7.10.1", "8.0.0-0", false}}},
		{"<  2.0.5", []interval{{"", "2.0.5", false}}},
		{"<1.6.5 || < 2.1.7 > 2.0.0", []interval{{"", "1.6.5", false}, {"2.0.1-0", "2.1.7", false}}},
		{"2.0.x || 2.1.x", []interval{{"2.0.0", "2.1.0-0", false}, {"2.1.0", "2.2.0-0", false}}},
		{"*", []interval{{"0.0.0", "", false}}},
		{"<= 1.0", []interval{{"", "1.1.0-0", false}}},
		{"=3.10.2", []interval{{"3.10.2", "3.10.2", true}}},
		{"~0.8.0-pre", []interval{{"0.8.0-pre", "0.9.0-0", false}}},
		{"1.2.3 - 2.3", []interval{{"1.2.3", "2.4.0-0", false}}},
		{">2.0.0 <1.0.0", nil},
	} {
		got, err := parseRange(tc.in)
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%q: %+v %v, want %+v", tc.in, got, err, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: %+v, want %+v", tc.in, got, tc.want)
			}
		}
	}
	if _, err := parseRange(">=abc"); err == nil {
		t.Error("no error for a bad version")
	}
}

// All npm advisories of the working group load; core and dependency
// advisories are rejected with ErrCore; advisories without patched
// versions are unfixed.
func TestTree(t *testing.T) {
	f, err := os.Open(filepath.Join(testenv.SharedData(t), "advisories", "nodejs-security-wg-vuln.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var npm, unfixed, core int
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, ".json") || strings.HasSuffix(h.Name, "index.json") {
			continue
		}
		data, _ := io.ReadAll(tr)
		a, probs, err := Parse(data, h.Name)
		switch {
		case strings.Contains(h.Name, "/npm/"):
			if err != nil {
				t.Errorf("%s: %v", h.Name, err)
				continue
			}
			npm++
			if a.Ranges[0].Status == feed.StatusUnfixed {
				unfixed++
			}
			for _, p := range probs {
				t.Logf("%s", p)
			}
			if kp := feed.Key(&a, feedtest.Lookup); len(kp) > 0 {
				t.Errorf("%s: %v", h.Name, kp)
			}
			if a.ID == "NSWG-ECO-1" {
				feedtest.Golden(t, "NSWG-ECO-1", a)
			}
		case errors.Is(err, ErrCore):
			core++
		default:
			t.Errorf("%s: %v", h.Name, err)
		}
	}
	if npm != 467 || unfixed != 55 || core != 171+6 {
		t.Errorf("npm %d (467), unfixed %d (55), core+deps %d (171 core + 6 deps; the 172nd core file is index.json)", npm, unfixed, core)
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"<=1.5.1", "^8.1.4 || ^7.10.1", "1.2.3 - 2.3", "~1", ">2.0.0-rc.1 <3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ivs, err := parseRange(s)
		if err != nil {
			return
		}
		for _, iv := range ivs {
			if iv.lo != "" && iv.hi != "" && cmp(iv.lo, iv.hi) > 0 {
				t.Fatalf("%q: empty interval %+v kept", s, iv)
			}
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"id":1,"module_name":"a","vulnerable_versions":"<=1.5.1","patched_versions":">=1.5.2","cves":["CVE-2014-7205"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, _, err := Parse(data, "fuzz"); err == nil {
			_ = feed.Key(&a, feedtest.Lookup)
		}
	})
}
