package plan

import (
	"fmt"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/policy"
)

// BenchmarkBuild is the planner's Go side (Add for every open finding,
// then Build) on a fleet of 200 hosts with 500 findings each, kernel-like
// packages with hundreds of advisories included. Reported per finding.
func BenchmarkBuild(b *testing.B) {
	pol, err := policy.Parse("sample.yaml", policy.SampleYAML)
	if err != nil {
		b.Fatal(err)
	}
	var fs []*Finding
	rings := []string{"test", "pilot", "prod"}
	for h := range 200 {
		for i := range 500 {
			f := finding(fmt.Sprintf("host-%04d", h), rings[h%3], fmt.Sprintf("pkg%d", i%20), "1.0-1",
				fmt.Sprintf("1.0-%d", 2+i%7), fmt.Sprintf("CVE-2024-%05d", i), "high", float64(i%100))
			f.InternetFacing, f.KEV = h%10 == 0, i%50 == 0
			fs = append(fs, f)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		bl := NewBuilder(pol, at, 30*24*time.Hour)
		for _, f := range fs {
			bl.Add(f)
		}
		if p := bl.Build("PL-bench", 1); len(p.Actions) != 200*20 {
			b.Fatalf("%d actions", len(p.Actions))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(fs)), "ns/finding")
}
