package report

import (
	"bytes"
	"strings"
	"testing"
)

// The run summary prints the share of findings whose severity is unknown.
func TestUnknownShare(t *testing.T) {
	var b bytes.Buffer
	writeSeverities(&b, "Open findings", []SeverityCount{{Severity: "high", Findings: 30}, {Severity: "unknown", Findings: 10}})
	if !strings.Contains(b.String(), "unknown severity: 10 of 40 findings (25.0%)") {
		t.Errorf("summary:\n%s", b.String())
	}
}
