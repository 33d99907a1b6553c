package plan

import (
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

// Hand-worked: a host's own window replaces its group's, within the
// group's freezes; an unreadable one is named and the group's applies; the
// emergency path bypasses both.
func TestHostWindowReplacesGroupWindow(t *testing.T) {
	pol := parse(t, sla+`groups:
  - {name: g, select: {}, windows: [{days: [mon], start: "01:00", duration: 1h}]}
freezes: [{name: first-weekend, from: 2026-12-05, to: 2026-12-06, groups: [g]}]
emergency:
  when: {kev: true}
  bypass: [windows]
`)
	fs := []*Finding{
		finding("own", "prod", "curl", "1", "2", "A", "high", 5),
		finding("none", "prod", "curl", "1", "2", "A", "high", 5),
		finding("typo", "prod", "curl", "1", "2", "A", "high", 5),
		finding("night", "prod", "curl", "1", "2", "A", "high", 5),
		finding("urgent", "prod", "curl", "1", "2", "K", "high", 5),
	}
	fs[4].KEV = true
	b := NewBuilder(pol, at, DefaultHorizon) // at: Wednesday 2026-12-02 12:00 UTC
	for _, f := range fs {
		b.Add(f)
	}
	b.hosts["own"].setWindow("Sat 22:00-02:00 UTC")
	b.hosts["typo"].setWindow("whenever")
	b.hosts["night"].setWindow("Wed 23:00-01:00 Europe/Berlin")
	b.hosts["urgent"].setWindow("Sun 02:00-04:00 UTC")
	p := b.Build("PL-test", 1)
	acts := byHost(p)
	for _, c := range []struct {
		host, start, end, reason string
	}{
		// Saturday 5 December is frozen (the group's freeze holds for the
		// host's window); the next Saturday 22:00 runs to Sunday 02:00.
		{"own", "2026-12-12T22:00:00Z", "2026-12-13T02:00:00Z", `host window "Sat 22:00-02:00 UTC"`},
		{"none", "2026-12-07T01:00:00Z", "2026-12-07T02:00:00Z", "group g"},
		{"typo", "2026-12-07T01:00:00Z", "2026-12-07T02:00:00Z", `host window "whenever": want`},
		// 23:00 in Berlin (UTC+1) is 22:00 UTC, the same Wednesday.
		{"night", "2026-12-02T22:00:00Z", "2026-12-03T00:00:00Z", `host window "Wed 23:00-01:00 Europe/Berlin"`},
		// Emergency: windows bypassed, the host's too: now, for 4 hours.
		{"urgent", "2026-12-02T12:00:00Z", "2026-12-02T16:00:00Z", "emergency: KEV"},
	} {
		a := acts[c.host+"/curl"]
		if a == nil || a.WindowStart.UTC().Format(time.RFC3339) != c.start || a.WindowEnd.UTC().Format(time.RFC3339) != c.end ||
			!strings.Contains(a.Reason, c.reason) {
			t.Errorf("%s: %+v", c.host, a)
		}
	}
}
