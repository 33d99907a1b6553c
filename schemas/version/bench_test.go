package version

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusVersions returns the distinct versions of an osv-semantic file:
// real versions from OSV advisories.
func corpusVersions(tb testing.TB, file string) []string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(sharedData(tb), "versions", "osv-semantic", file))
	if err != nil {
		tb.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		for _, v := range []string{f[0], f[2]} {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}

var benchCorpora = []struct{ eco, file string }{
	{"Debian", "debian-versions-generated.txt"},
	{"Alpine", "alpine-versions-generated.txt"},
	{"Red Hat", "redhat-versions.txt"},
	{"PyPI", "pypi-versions-generated.txt"},
	{"Maven", "maven-versions-generated.txt"},
	{"RubyGems", "rubygems-versions-generated.txt"},
	{"Packagist", "packagist-versions-generated.txt"},
	{"npm", "semver-versions.txt"},
	{"NuGet", "nuget-versions.txt"},
}

// validCorpus keeps the versions the ecosystem's comparator accepts.
func validCorpus(tb testing.TB, eco, file string) (Comparator, []string) {
	c, err := Lookup(eco)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, v := range corpusVersions(tb, file) {
		if _, err := c.AppendKey(nil, v); err == nil {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		tb.Fatalf("%s: no valid versions", file)
	}
	return c, out
}

// TestAppendKeyAllocs: AppendKey into a buffer with room allocates nothing.
func TestAppendKeyAllocs(t *testing.T) {
	for _, bc := range benchCorpora {
		c, vs := validCorpus(t, bc.eco, bc.file)
		buf := make([]byte, 0, 4096)
		i := 0
		allocs := testing.AllocsPerRun(2000, func() {
			buf, _ = c.AppendKey(buf[:0], vs[i%len(vs)])
			i++
		})
		if allocs != 0 {
			t.Errorf("%s: %.2f allocations per AppendKey", bc.eco, allocs)
		}
	}
}

func BenchmarkAppendKey(b *testing.B) {
	for _, bc := range benchCorpora {
		b.Run(bc.eco, func(b *testing.B) {
			c, vs := validCorpus(b, bc.eco, bc.file)
			total := 0
			for _, v := range vs {
				total += len(v)
			}
			b.SetBytes(int64(total / len(vs)))
			b.ReportAllocs()
			buf := make([]byte, 0, 4096)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				buf, _ = c.AppendKey(buf[:0], vs[i%len(vs)])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
		})
	}
}

// BenchmarkKey is the convenience path: one string allocation per key.
func BenchmarkKey(b *testing.B) {
	_, vs := validCorpus(b, "Debian", "debian-versions-generated.txt")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Key("Debian:12", vs[i%len(vs)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}
