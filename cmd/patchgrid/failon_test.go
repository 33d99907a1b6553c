package main

import (
	"testing"

	"github.com/patchgrid/patchgrid/analytics/failon"
	"github.com/patchgrid/patchgrid/analytics/report"
)

// TestRunFailOnScope: `run --fail-on` judges the hosts the run scanned
// (ScannedBySeverity) unless --scope fleet; an old host's critical finding
// elsewhere in the data dir does not fail this run.
func TestRunFailOnScope(t *testing.T) {
	sum := &report.Summary{
		BySeverity:        []report.SeverityCount{{Severity: "critical", Findings: 3}, {Severity: "low", Findings: 1}},
		ScannedBySeverity: []report.SeverityCount{{Severity: "critical"}, {Severity: "low", Findings: 1}, {Severity: "unknown", Findings: 2}},
	}
	for _, c := range []struct {
		failOn, scope string
		want          bool
	}{
		{"critical", "run", false},
		{"critical", "fleet", true},
		{"low", "run", true},
		{"medium", "run", false},
		{"unknown", "run", true},
		{"any", "fleet", true},
		{"high", "fleet", true},
	} {
		th, err := failon.Parse(c.failOn)
		if err != nil {
			t.Fatal(err)
		}
		if got := failOnTripped(runConfig{failOn: th, scope: c.scope}, sum); got != c.want {
			t.Errorf("--fail-on %s --scope %s: tripped = %v, want %v", c.failOn, c.scope, got, c.want)
		}
	}
	if code, _, _ := runCLI(t, "", nil, "run", "--scope", "everything"); code != exitUsage {
		t.Errorf("bad --scope: exit %d", code)
	}
	if code, _, _ := runCLI(t, "", nil, "run", "--fail-on", "severe"); code != exitUsage {
		t.Errorf("bad --fail-on: exit %d", code)
	}
}
