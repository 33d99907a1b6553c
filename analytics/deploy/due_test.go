package deploy

import (
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/analytics/policy"
)

// A failed action retries in its group's next window after the failure;
// a host that declared its own window retries where the two overlap, as
// the planner placed its first attempt. Hand-worked on the calendar of
// November and December 2026 (28 Nov and 5 Dec are Saturdays).
func TestRetrySlotHostWindow(t *testing.T) {
	pol, err := policy.Parse("retry.yaml", []byte(`name: retry
sla:
  days: {critical: 15, high: 30, medium: 90, low: 180}
groups:
  - name: prod
    select: {ring: prod}
    windows:
      - {days: [sat], start: "01:00", duration: 6h, timezone: UTC}
  - name: rest
    select: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	group := func(name string) *policy.Group {
		for i := range pol.Groups {
			if pol.Groups[i].Name == name {
				return &pol.Groups[i]
			}
		}
		t.Fatalf("no group %s", name)
		return nil
	}
	own := func(s string) *policy.Window {
		w, err := plan.ParseHostWindow(s)
		if err != nil {
			t.Fatal(err)
		}
		return &w
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name        string
		group       string
		own         *policy.Window
		failed, now string
		start, end  string
	}{
		{"group window, failed inside it: the next Saturday", "prod", nil,
			"2026-11-28T05:30:00Z", "2026-11-29T12:00:00Z", "2026-12-05T01:00:00Z", "2026-12-05T07:00:00Z"},
		{"host window overlapping the group's: only the overlap", "prod", own("Sat 05:00-09:00 UTC"),
			"2026-11-28T05:30:00Z", "2026-11-29T12:00:00Z", "2026-12-05T05:00:00Z", "2026-12-05T07:00:00Z"},
		{"host window, failed before this week's overlap: this week's", "prod", own("Sat 05:00-09:00 UTC"),
			"2026-11-28T02:00:00Z", "2026-11-28T02:30:00Z", "2026-11-28T05:00:00Z", "2026-11-28T07:00:00Z"},
		{"group without windows: the host's own window", "rest", own("Wed 22:00-02:00 UTC"),
			"2026-11-28T02:00:00Z", "2026-11-28T02:30:00Z", "2026-12-02T22:00:00Z", "2026-12-03T02:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slot, ok := retrySlot(pol, group(tc.group), tc.own, false, at(tc.failed), at(tc.now))
			if !ok {
				t.Fatal("no retry slot")
			}
			if !slot.Start.Equal(at(tc.start)) || !slot.End.Equal(at(tc.end)) {
				t.Errorf("retry slot %s..%s, want %s..%s", slot.Start.UTC().Format(time.RFC3339), slot.End.UTC().Format(time.RFC3339), tc.start, tc.end)
			}
		})
	}
	// Windows that never overlap leave no retry slot: never "any time".
	if slot, ok := retrySlot(pol, group("prod"), own("Mon 01:00-02:00 UTC"), false, at("2026-11-28T05:30:00Z"), at("2026-11-29T12:00:00Z")); ok {
		t.Errorf("retry slot %v for windows that never overlap", slot)
	}
}
