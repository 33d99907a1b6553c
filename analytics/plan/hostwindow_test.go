package plan

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseHostWindow(t *testing.T) {
	for _, c := range []struct {
		in       string
		days     []string
		start    string
		dur      time.Duration
		tz, fail string
	}{
		{"Sun 02:00-04:00 UTC", []string{"sun"}, "02:00", 2 * time.Hour, "UTC", ""},
		{"Sat 22:00-02:00 UTC", []string{"sat"}, "22:00", 4 * time.Hour, "UTC", ""}, // across midnight
		{"daily 03:00-04:00", []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, "03:00", time.Hour, "UTC", ""},
		{"Mon,wednesday 23:30-23:30 Europe/Berlin", []string{"mon", "wed"}, "23:30", 24 * time.Hour, "Europe/Berlin", ""},
		{"", nil, "", 0, "", "want"},
		{"whenever", nil, "", 0, "", "want"},
		{"Sun 2-4 UTC", nil, "", 0, "", "HH:MM"},
		{"Sun 02:00 UTC", nil, "", 0, "", "HH:MM-HH:MM"},
		{"Someday 02:00-04:00 UTC", nil, "", 0, "", "unknown day"},
		{"Sun 02:00-04:00 Mars/Olympus", nil, "", 0, "", "time zone"},
		{"Sun 02:00-04:00 UTC extra", nil, "", 0, "", "want"},
	} {
		w, err := ParseHostWindow(c.in)
		if c.fail != "" {
			if err == nil || !strings.Contains(err.Error(), c.fail) {
				t.Errorf("%q: %v, want an error about %q", c.in, err, c.fail)
			}
			continue
		}
		if err != nil || strings.Join(w.Days, ",") != strings.Join(c.days, ",") || w.Start != c.start || time.Duration(w.Duration) != c.dur || w.TimeZone != c.tz {
			t.Errorf("%q: %+v %v", c.in, w, err)
		}
	}
}

func FuzzParseHostWindow(f *testing.F) {
	for _, s := range hostWindows {
		f.Add(s)
	}
	f.Add("Mon,Tue 23:59-00:00 America/New_York")
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseHostWindow(s)
		if err != nil {
			return
		}
		if d := time.Duration(w.Duration); d <= 0 || d > 24*time.Hour || len(w.Days) == 0 {
			t.Fatalf("%q: accepted as %+v", s, w)
		}
	})
}

// hostWindowPolicy is the policy of the hand-worked host-window tests:
// group g (the change board allows every night 00:00-06:00 UTC, frozen on
// the first weekend), group lab with no windows, and the emergency path
// bypassing windows. Hosts in ring lab are in group lab.
const hostWindowPolicy = sla + `groups:
  - {name: lab, select: {ring: lab}}
  - {name: g, select: {}, windows: [{days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", duration: 6h, timezone: UTC}]}
freezes: [{name: first-weekend, from: 2026-12-05, to: 2026-12-06, groups: [g]}]
emergency:
  when: {kev: true}
  bypass: [windows]
`

// hostWindowCase is one host of the hand-worked host-window tests: its
// declared window and the slot (or the unscheduled reason) it must get.
type hostWindowCase struct {
	host, ring, window, start, end, reason string
}

// at is Wednesday 2026-12-02 12:00 UTC.
var hostWindowCases = []hostWindowCase{
	// Sat 22:00-02:00 meets the nightly window on Sunday 00:00-02:00;
	// Sunday 6 December is frozen (the group's freeze holds), so the 13th.
	{"own", "prod", "Sat 22:00-02:00 UTC", "2026-12-13T00:00:00Z", "2026-12-13T02:00:00Z", `host window "Sat 22:00-02:00 UTC" within the group's windows`},
	// No window of its own: the group's next night.
	{"none", "prod", "", "2026-12-03T00:00:00Z", "2026-12-03T06:00:00Z", "group g"},
	// Unreadable: named, and the group's windows apply.
	{"typo", "prod", "whenever", "2026-12-03T00:00:00Z", "2026-12-03T06:00:00Z", `host window "whenever": want`},
	// Within the group's window: the host's hour.
	{"early", "prod", "daily 03:00-04:00 UTC", "2026-12-03T03:00:00Z", "2026-12-03T04:00:00Z", `host window "daily 03:00-04:00 UTC"`},
	// 23:00-01:00 in Berlin (UTC+1) is 22:00-00:00 UTC: it ends as the
	// group's window opens, so the two never overlap: unscheduled, saying so.
	{"night", "prod", "Wed 23:00-01:00 Europe/Berlin", "", "", `unscheduled: host window "Wed 23:00-01:00 Europe/Berlin": the host's window overlaps no window of group g before the horizon ends`},
	// A group without windows: the host's own window, alone.
	{"lab", "lab", "Sun 02:00-04:00 UTC", "2026-12-06T02:00:00Z", "2026-12-06T04:00:00Z", `host window "Sun 02:00-04:00 UTC"`},
	// Emergency: windows bypassed, the host's too: now, for 4 hours.
	{"urgent", "prod", "Sun 02:00-04:00 UTC", "2026-12-02T12:00:00Z", "2026-12-02T16:00:00Z", "emergency: KEV"},
}

func hostWindowFindings() ([]*Finding, map[string]string) {
	var fs []*Finding
	wins := map[string]string{}
	for _, c := range hostWindowCases {
		adv := "A"
		if c.host == "urgent" {
			adv = "K"
		}
		f := finding(c.host, c.ring, "curl", "1", "2", adv, "high", 5)
		f.KEV = c.host == "urgent"
		fs = append(fs, f)
		wins[c.host] = c.window
	}
	return fs, wins
}

func checkHostWindowCases(t *testing.T, acts []Action) {
	t.Helper()
	by := map[string]*Action{}
	for i := range acts {
		by[acts[i].HostID] = &acts[i]
	}
	z := func(t time.Time) string {
		if t.IsZero() || t.Unix() == 0 {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, c := range hostWindowCases {
		a := by[c.host]
		if a == nil || z(a.WindowStart) != c.start || z(a.WindowEnd) != c.end || !strings.Contains(a.Reason, c.reason) ||
			(c.start == "") != (a.Status == Unscheduled) {
			t.Errorf("%s: got %+v\nwant %s..%s, reason containing %q", c.host, a, c.start, c.end, c.reason)
		}
	}
}

// Hand-worked: a host's own window applies where it overlaps its group's
// windows, within the group's freezes; when the two never overlap the
// action is unscheduled with that reason; a group without windows leaves
// the host's window alone; an unreadable one is named and the group's
// applies; the emergency path bypasses both.
func TestHostWindowWithinGroupWindows(t *testing.T) {
	pol := parse(t, hostWindowPolicy)
	fs, wins := hostWindowFindings()
	b := NewBuilder(pol, at, DefaultHorizon)
	for _, f := range fs {
		b.Add(f)
	}
	for id, w := range wins {
		b.hosts[id].setWindow(w)
	}
	checkHostWindowCases(t, b.Build("PL-test", 1).Actions)
}

// The blast radius caps the hosts of a group in one slot: of four hosts
// (cap 50%: 2), the two riskiest with the daily 03:00 window share
// Thursday's, the third takes Friday's, and the Sunday host is not held
// back by them: waves are slot starts in time order.
func TestBlastRadiusPerSlot(t *testing.T) {
	pol := parse(t, hostWindowPolicy+"blast_radius: {percent: 50}\n")
	b := NewBuilder(pol, at, DefaultHorizon)
	for i, w := range []string{"daily 03:00-04:00 UTC", "daily 03:00-04:00 UTC", "daily 03:00-04:00 UTC", "Tue 02:00-04:00 UTC"} {
		b.Add(finding(fmt.Sprintf("h%d", i), "prod", "curl", "1", "2", "A", "high", float64(10-i)))
		b.hosts[fmt.Sprintf("h%d", i)].setWindow(w)
	}
	p := b.Build("PL-test", 1)
	want := map[string]struct {
		wave  uint32
		start string
	}{
		"h0": {1, "2026-12-03T03:00:00Z"},
		"h1": {1, "2026-12-03T03:00:00Z"},
		"h2": {2, "2026-12-04T03:00:00Z"},
		"h3": {3, "2026-12-08T02:00:00Z"},
	}
	for _, a := range p.Actions {
		w := want[a.HostID]
		if a.Wave != w.wave || a.WindowStart.UTC().Format(time.RFC3339) != w.start {
			t.Errorf("%s: wave %d at %v, want wave %d at %s (%s)", a.HostID, a.Wave, a.WindowStart, w.wave, w.start, a.Reason)
		}
	}
	if p.Waves != 3 {
		t.Errorf("waves %d, want 3", p.Waves)
	}
}
