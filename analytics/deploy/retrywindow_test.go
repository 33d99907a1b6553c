package deploy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/deploy"
)

// hostWindow stores the plan_hosts row of host with its declared window,
// as the planner writes it.
func (f *fixture) hostWindow(planID, host, window string) {
	f.t.Helper()
	f.ins("plan_hosts", []string{"plan_id", "host_id", "emergency", "group_name", "ring", "wave", "window_start", "window_end",
		"scheduled", "why", "place", "first_window", "host_window", "deadline", "risk_reduction"}, [][]any{
		{planID, host, uint8(0), "rest", "test", uint32(1), f.ago(time.Hour), f.now.Add(3 * time.Hour), uint8(1), "fixture", "fixture",
			"", window, f.now.Add(100 * h), 10.0},
	})
}

// A failed action of a host that declared its own window is retried in
// that window (group rest has none: any time otherwise), read from the
// plan's plan_hosts; a host without one is due again at once.
func TestRetryInHostWindowOnCHDB(t *testing.T) {
	f := newFixture(t)
	f.writePlan("PL-hw", []act{
		{id: "own", host: "hw-own", windowStart: -3 * h},
		{id: "none", host: "hw-none", windowStart: -3 * h},
	})
	// A one-hour window on the day after tomorrow: never open now.
	day := strings.ToLower(f.now.Add(48 * h).Weekday().String()[:3])
	f.hostWindow("PL-hw", "hw-own", day+" 00:00-01:00 UTC")
	f.outcome("PL-hw", "own", "hw-own", 1, "failed", 2*h, false, "dpkg lock held")
	f.outcome("PL-hw", "none", "hw-none", 1, "failed", 2*h, false, "dpkg lock held")
	r, err := deploy.Status(f.ctx, f.cfg(0), "PL-hw", true)
	if err != nil {
		t.Fatal(err)
	}
	if ids := strings.Join(dueIDs(r), ","); ids != "none" {
		t.Errorf("due %s, want none (hw-own waits for its own window)", ids)
	}
	if r.Due.NotDue[deploy.NotDueWindow] != 1 {
		t.Errorf("not due %v, want hw-own's retry before its window", r.Due.NotDue)
	}

	// A stored window that does not parse is an error naming the host,
	// never "any time".
	f.writePlan("PL-hw-bad", []act{{id: "bad", host: "hw-bad", windowStart: -3 * h}})
	f.hostWindow("PL-hw-bad", "hw-bad", "someday 25:00-26:00")
	f.outcome("PL-hw-bad", "bad", "hw-bad", 1, "failed", 2*h, false, "dpkg lock held")
	if _, err := deploy.Status(f.ctx, f.cfg(0), "PL-hw-bad", true); err == nil || !strings.Contains(err.Error(), "hw-bad") {
		t.Errorf("status with an unreadable stored window: %v, want an error naming hw-bad", err)
	}
}
