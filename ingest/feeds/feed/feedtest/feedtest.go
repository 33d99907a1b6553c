// Package feedtest has the helpers the feed parsers' tests share: golden
// files and the version lookup.
package feedtest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/schemas/version"
)

var update = flag.Bool("update", false, "rewrite golden files from the parsers' output")

// Golden compares got, as indented JSON, with testdata/<name>.golden.json,
// or rewrites that file when the test runs with -update.
func Golden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	p := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, b) {
		t.Errorf("%s differs from the parser's output (run with -update after checking the diff):\n%s", p, b)
	}
}

// Lookup is schemas/version.Lookup as a feed.LookupFunc.
func Lookup(eco string) (feed.Comparator, error) { return version.Lookup(eco) }

// InRange reports whether v is inside r by the keys, the way ClickHouse
// matches: v_key >= introduced_key AND (fixed_key = ” OR v_key < fixed_key)
// AND (last_affected_key = ” OR v_key <= last_affected_key).
func InRange(t *testing.T, r feed.Range, v string) bool {
	t.Helper()
	k, err := version.Key(r.Ecosystem, v)
	if err != nil {
		t.Fatalf("key of %s %q: %v", r.Ecosystem, v, err)
	}
	return k >= r.IntroducedKey && (r.FixedKey == "" || k < r.FixedKey) && (r.LastAffectedKey == "" || k <= r.LastAffectedKey)
}

// Affected reports whether any range of a for pkg whose status is a finding
// (not not_affected) contains v.
func Affected(t *testing.T, a *feed.Advisory, eco, pkg, v string) bool {
	t.Helper()
	for _, r := range a.Ranges {
		if r.Ecosystem == eco && r.Package == pkg && r.Status != feed.StatusNotAffected && InRange(t, r, v) {
			return true
		}
	}
	return false
}

// Key fills the version keys of a's ranges and fails on any problem.
func Key(t *testing.T, a *feed.Advisory) {
	t.Helper()
	if probs := feed.Key(a, Lookup); len(probs) > 0 {
		t.Fatalf("keying %s: %v", a.ID, probs)
	}
}
