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

// TestShardCond holds the host ranges of the exposure shards: every host
// falls in exactly one shard (bounds are inclusive below, exclusive above,
// the outer shards open-ended), and bounds are quoted literals.
func TestShardCond(t *testing.T) {
	const all = "host_id IN (SELECT host_id FROM x)"
	for _, tc := range []struct {
		name   string
		bounds []string
		i      int
		want   string
	}{
		{"one shard", nil, 0, all},
		{"first of two", []string{"h5"}, 0, all + " AND host_id < 'h5'"},
		{"last of two", []string{"h5"}, 1, all + " AND host_id >= 'h5'"},
		{"middle of three", []string{"h3", "h6"}, 1, all + " AND host_id >= 'h3' AND host_id < 'h6'"},
		{"quote in a host id", []string{"o'brien"}, 1, all + ` AND host_id >= 'o\'brien'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shardCond(all, tc.bounds, tc.i); got != tc.want {
				t.Errorf("shardCond(%q, %q, %d) = %q, want %q", all, tc.bounds, tc.i, got, tc.want)
			}
		})
	}
}
