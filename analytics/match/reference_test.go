package match

import (
	"testing"

	"github.com/patchgrid/patchgrid/schemas/version"
)

// keyInRange is the SQL matcher's predicate over stored keys (see
// matchVersions and 0002_feeds.sql), with the feed loader's keying rules:
// introduced "" or "0" has the empty key, an unkeyable version has none.
func keyInRange(eco, v string, r *Range) bool {
	vk, err := version.Key(eco, v)
	if err != nil || vk == "" {
		return false
	}
	key := func(s string) (string, bool) {
		if s == "" {
			return "", true
		}
		k, err := version.Key(eco, s)
		return k, err == nil
	}
	ik, ok1 := "", true
	if r.Introduced != "0" {
		ik, ok1 = key(r.Introduced)
	}
	fk, ok2 := key(r.Fixed)
	lk, ok3 := key(r.LastAffected)
	if !ok1 || !ok2 || !ok3 {
		return false // the loader drops ranges it cannot key
	}
	return vk >= ik && (fk == "" || vk < fk) && (lk == "" || vk <= lk)
}

// FuzzInRange checks that the Go matcher's range test (by Compare) and
// the SQL matcher's (by stored keys) agree on any input.
func FuzzInRange(f *testing.F) {
	for _, c := range [][5]string{
		{"Debian:12", "3.0.11-1", "0", "3.0.11-1", ""},
		{"Debian:12", "1:2.0", "1.0", "", "1:2.0"},
		{"Alpine:v3.16", "1.35.0-r17", "", "1.35.0-r7", ""},
		{"Red Hat:enterprise_linux:9", "32:9.16.23-24.el9_5", "", "32:9.8.2-0.68.rc1.el6_10.17", ""},
		{"Go", "0.3.6", "0", "0.3.7", ""},
		{"PyPI", "2.0rc1", "1.0", "2.0", ""},
		{"Debian:12", "not a version!", "", "", ""},
	} {
		f.Add(c[0], c[1], c[2], c[3], c[4])
	}
	f.Fuzz(func(t *testing.T, eco, v, intro, fixed, last string) {
		if _, err := version.Lookup(eco); err != nil {
			return
		}
		r := Range{Ecosystem: eco, Introduced: intro, Fixed: fixed, LastAffected: last}
		got, err := InRange(version.Compare, v, &r)
		if err != nil {
			got = false
		}
		if want := keyInRange(eco, v, &r); got != want {
			t.Errorf("%s %q in [%q, %q) last %q: Go says %v, keys say %v", eco, v, intro, fixed, last, got, want)
		}
	})
}

// BenchmarkReference matches the corpus fixture in memory.
func BenchmarkReference(b *testing.B) {
	f := corpus()
	vs, rs := f.versions(), f.current()
	b.ReportAllocs()
	for b.Loop() {
		if len(Reference(version.Compare, vs, rs)) == 0 {
			b.Fatal("no findings")
		}
	}
}
