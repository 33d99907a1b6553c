package refresh

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestStepAttrs holds the closing "refresh steps" line to one
// name=duration attribute per phase and snapshot, in order, rounded to
// 10 ms: the line bench/cmd/pgbench's make_run step reads.
func TestStepAttrs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("refresh steps", stepAttrs([]StepTime{
		{"segments", 2503 * time.Millisecond}, {"exposure_facts", 65 * time.Second}, {"kpi_open_exposure", 4 * time.Millisecond},
	})...)
	line := strings.TrimSpace(buf.String())
	want := `msg="refresh steps" segments=2.5s exposure_facts=1m5s kpi_open_exposure=0s`
	if !strings.HasSuffix(line, want) {
		t.Errorf("log line %q, want it to end with %q", line, want)
	}
}
