package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/schemas/outcome"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

const outcomeLines = `{"version":1,"plan_id":"PL-1","action_id":"PL-1/1","host_id":"web-1","package":"openssl","from_version":"3.0.11-1~deb12u2","to_version":"3.0.15-1~deb12u1","status":"succeeded","attempt":1,"started_at":"2026-12-03T02:00:00Z","finished_at":"2026-12-03T02:01:00Z","reboot_required":false}

{"version":1,"plan_id":"PL-1","action_id":"PL-1/2","host_id":"db-1","package":"openssl","to_version":"3.0.15-1~deb12u1","status":"failed","attempt":1,"started_at":"2026-12-03T02:00:00Z","finished_at":"2026-12-03T02:01:00Z"}
{"version":1,"plan_id":"PL-1","action_id":"PL-1/3","host_id":"db-2","package":"openssl","to_version":"3.0.15-1~deb12u1","status":"rolled_back","attempt":2,"started_at":"2026-12-03T02:00:00+01:00","finished_at":"2026-12-03T01:30:00Z","error":"service did not come back"}
`

// TestOutcomeReport publishes outcomes through the real broker: the good
// lines arrive keyed by host, the bad one (a failure without its reason) is
// named by line and fails the run.
func TestOutcomeReport(t *testing.T) {
	broker := testenv.Kafka(t)
	topic := fmt.Sprintf("pgtest-outcomes-%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := publish.EnsureTopic(ctx, []string{broker}, topic, 1); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, outcomeLines, nil, "outcome", "report", "--kafka-brokers", broker, "--topic", topic)
	if code != exitFailure || !strings.Contains(errOut, "stdin:3: malformed outcome: outcome: error: a failed outcome says why") ||
		!strings.Contains(errOut, "2 outcomes published") || !strings.Contains(errOut, "1 rejected") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	var got []string
	for len(got) < 2 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read back after %d messages: %v", len(got), err)
		}
		o, err := outcome.Decode(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != o.HostID {
			t.Errorf("message key %q, host %q", m.Key, o.HostID)
		}
		got = append(got, o.ActionID+" "+string(o.Status)+" "+o.StartedAt.Format(time.RFC3339))
	}
	want := "PL-1/1 succeeded 2026-12-03T02:00:00Z,PL-1/3 rolled_back 2026-12-03T01:00:00Z"
	if strings.Join(got, ",") != want {
		t.Fatalf("published %v, want %s", got, want)
	}

	code, out, errOut := runCLI(t, strings.SplitN(outcomeLines, "\n", 2)[0]+"\n", nil, "outcome", "report", "--dry-run")
	if code != exitOK || !strings.Contains(out, `"action_id":"PL-1/1"`) || !strings.Contains(errOut, "1 outcomes checked (dry run), 0 rejected") {
		t.Fatalf("dry run: %d %q %s", code, out, errOut)
	}
}
