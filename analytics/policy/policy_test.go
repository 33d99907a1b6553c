package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/severity"
)

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return p
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

const slaOnly = "sla:\n  days: {critical: 15, high: 30, medium: 90, low: 180}\n"

func TestSampleAndDefaultParse(t *testing.T) {
	p, err := Parse("sample.yaml", SampleYAML)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Groups) != 3 || len(p.Rings) != 3 || len(p.Freezes) != 1 || !p.Emergency.ApprovalRequired {
		t.Errorf("sample parsed as %s", p.Canonical())
	}
	if p.SLA.Days["unknown"] != 90 || p.SLA.Days["none"] != 365 {
		t.Errorf("defaults for unrated severities: %v", p.SLA.Days)
	}
	// The exception cap (issue 14).
	if c, err := Parse("cap.yaml", []byte("sla:\n  days: {critical: 15, high: 30, medium: 90, low: 180}\nexceptions: {max_duration: 30d}\n")); err != nil ||
		time.Duration(c.Exceptions.MaxDuration) != 30*24*time.Hour {
		t.Errorf("exception cap: %+v %v", c, err)
	}
	d, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if d.SLA.Days["critical"] != 15 || !d.SLA.KEVDueDate || len(d.Rings) != 0 {
		t.Errorf("default policy: %s", d.Canonical())
	}
}

func TestParseErrorsNameFileLineField(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"missing sla", "name: x\n", "test.yaml:1: sla: missing"},
		{"missing severity", "sla:\n  days: {critical: 15, high: 30, medium: 90}\n", "test.yaml:2: sla.days.low: missing"},
		{"unknown field", slaOnly + "blast_raduis: {hosts: 3}\n", "test.yaml:3: blast_raduis: unknown field"},
		{"bad time zone", slaOnly + "groups:\n  - name: g\n    select: {}\n    windows:\n      - days: [mon]\n        start: \"22:00\"\n        duration: 4h\n        timezone: Europe/Berln\n",
			"test.yaml:10: groups[0].windows[0].timezone: unknown IANA time zone \"Europe/Berln\""},
		{"bad day", slaOnly + "groups:\n  - name: g\n    select: {}\n    windows: [{days: [funday], start: \"01:00\", duration: 1h}]\n",
			"test.yaml:6: groups[0].windows[0].days[0]: unknown day \"funday\""},
		{"bad start", slaOnly + "groups:\n  - name: g\n    select: {}\n    windows: [{days: [mon], start: \"25:00\", duration: 1h}]\n",
			"groups[0].windows[0].start: want HH:MM"},
		{"freeze of unknown group", slaOnly + "freezes:\n  - {name: f, from: 2026-12-01, to: 2026-12-02, groups: [nope]}\n",
			"test.yaml:4: freezes[0].groups: unknown group \"nope\""},
		{"freeze backwards", slaOnly + "freezes:\n  - {name: f, from: 2026-12-03, to: 2026-12-02}\n", "freezes[0].to: 2026-12-02 is before from"},
		{"epss out of range", slaOnly + "emergency:\n  when: {critical_epss: 1.5}\n", "test.yaml:4: emergency.when.critical_epss: 1.5 out of range"},
		{"bad bypass", slaOnly + "emergency:\n  bypass: [approvals]\n", "emergency.bypass[0]: unknown bypass"},
		{"ring twice", slaOnly + "rings: [{name: a}, {name: a}]\n", "rings[1].name: ring \"a\" listed twice"},
		{"empty blast radius", slaOnly + "blast_radius: {}\n", "blast_radius: needs percent"},
		{"zero exception cap", slaOnly + "exceptions: {max_duration: 0d}\n", "test.yaml:3: exceptions.max_duration: must be more than zero"},
		{"bad exception cap", slaOnly + "exceptions: {max_duration: soon}\n", "exceptions.max_duration: want a duration"},
		{"unknown exception field", slaOnly + "exceptions: {max_days: 30}\n", "exceptions.max_days: unknown field"},
		{"not yaml", "sla: [\n", "test.yaml"},
		{"alias bomb", "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n", "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("accepted")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func windowPolicy(t *testing.T, window string) *Policy {
	return mustParse(t, slaOnly+"groups:\n  - name: g\n    select: {}\n    windows:\n      - "+window+"\n")
}

// Windows across the spring and autumn DST changes and across midnight,
// worked out by hand for Europe/Berlin (CET = UTC+1, CEST = UTC+2; 2026:
// spring forward Sun 29 March 02:00 → 03:00, fall back Sun 25 October
// 03:00 → 02:00).
func TestWindowsAcrossDSTAndMidnight(t *testing.T) {
	end := utc("2027-01-01T00:00:00Z")
	for _, tc := range []struct {
		name, window, earliest string
		start, stop            string
	}{
		// 02:30 does not exist on 29 March: the window starts when the
		// clock resumes, 03:30 CEST = 01:30 UTC, and lasts 2 h of real time.
		{"spring gap", "{days: [sun], start: \"02:30\", duration: 2h, timezone: Europe/Berlin}", "2026-03-28T12:00:00Z",
			"2026-03-29T01:30:00Z", "2026-03-29T03:30:00Z"},
		// 02:30 happens twice on 25 October: the second (CET) occurrence.
		{"autumn repeat", "{days: [sun], start: \"02:30\", duration: 2h, timezone: Europe/Berlin}", "2026-10-24T12:00:00Z",
			"2026-10-25T01:30:00Z", "2026-10-25T03:30:00Z"},
		// Saturday 22:00 CET for 4 h crosses midnight and the spring
		// change: 21:00 UTC to 01:00 UTC (03:00 CEST local).
		{"midnight and DST", "{days: [sat], start: \"22:00\", duration: 4h, timezone: Europe/Berlin}", "2026-03-28T00:00:00Z",
			"2026-03-28T21:00:00Z", "2026-03-29T01:00:00Z"},
		// Already open at earliest (00:30 UTC Sunday): that window, with
		// its real start on Saturday.
		{"open across midnight", "{days: [sat], start: \"22:00\", duration: 4h, timezone: Europe/Berlin}", "2026-03-29T00:30:00Z",
			"2026-03-28T21:00:00Z", "2026-03-29T01:00:00Z"},
		// The next Saturday is summer time: 22:00 CEST = 20:00 UTC.
		{"after the change", "{days: [sat], start: \"22:00\", duration: 4h, timezone: Europe/Berlin}", "2026-03-29T01:00:00Z",
			"2026-04-04T20:00:00Z", "2026-04-05T00:00:00Z"},
		// Two days: Tuesday before Thursday.
		{"two days", "{days: [thu, tue], start: \"23:30\", duration: 1h, timezone: UTC}", "2026-12-02T00:30:00Z",
			"2026-12-03T23:30:00Z", "2026-12-04T00:30:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := windowPolicy(t, tc.window)
			s, why, ok := p.NextSlot(&p.Groups[0], utc(tc.earliest), end, SlotOptions{})
			if !ok {
				t.Fatalf("no slot: %s", why)
			}
			if !s.Start.Equal(utc(tc.start)) || !s.End.Equal(utc(tc.stop)) {
				t.Errorf("slot %s..%s, want %s..%s", s.Start.UTC(), s.End.UTC(), tc.start, tc.stop)
			}
		})
	}
}

// freezePolicy: weekly windows in two zones and a year-end freeze of one
// group (the sample policy's groups before it moved to nightly windows).
const freezePolicy = slaOnly + `groups:
  - name: internet-edge
    select: {internet_facing: true}
    windows: [{days: [tue, thu], start: "22:00", duration: 4h, timezone: Europe/Berlin}]
  - name: prod
    select: {ring: prod}
    windows: [{days: [sat], start: "01:00", duration: 6h, timezone: America/New_York}]
freezes:
  - {name: year-end, from: "2026-12-21", to: "2027-01-03", timezone: UTC, groups: [prod]}
`

func TestFreeze(t *testing.T) {
	p := mustParse(t, freezePolicy)
	prod := &p.Groups[1] // Saturdays 01:00 America/New_York for 6 h, frozen 2026-12-21..2027-01-03 (UTC days)
	// Saturdays 26 Dec and 2 Jan are frozen; 9 Jan 01:00 EST = 06:00 UTC.
	s, why, ok := p.NextSlot(prod, utc("2026-12-20T00:00:00Z"), utc("2027-02-01T00:00:00Z"), SlotOptions{})
	if !ok || !s.Start.Equal(utc("2027-01-09T06:00:00Z")) {
		t.Errorf("slot %v (%s), want 2027-01-09T06:00:00Z", s, why)
	}
	// A horizon ending inside the freeze: unscheduled, naming the freeze.
	_, why, ok = p.NextSlot(prod, utc("2026-12-20T00:00:00Z"), utc("2027-01-05T00:00:00Z"), SlotOptions{})
	if ok || !strings.Contains(why, "change freeze year-end") {
		t.Errorf("ok=%v why=%q, want unscheduled by the freeze", ok, why)
	}
	// Bypassed by the emergency path.
	s, _, ok = p.NextSlot(prod, utc("2026-12-20T00:00:00Z"), utc("2027-01-05T00:00:00Z"), SlotOptions{IgnoreFreezes: true})
	if !ok || !s.Start.Equal(utc("2026-12-26T06:00:00Z")) {
		t.Errorf("freeze bypass: slot %v", s)
	}
	// The freeze names prod only: internet-edge keeps its Tuesday windows.
	edge := &p.Groups[0]
	s, _, ok = p.NextSlot(edge, utc("2026-12-21T00:00:00Z"), utc("2027-01-05T00:00:00Z"), SlotOptions{})
	if !ok || !s.Start.Equal(utc("2026-12-22T21:00:00Z")) { // Tue 22:00 CET
		t.Errorf("unfrozen group: slot %v", s)
	}
	// Without windows: any time, moved past a freeze that covers it.
	q := mustParse(t, slaOnly+"freezes: [{name: f, from: 2026-12-01, to: 2026-12-02}]\n")
	s, _, ok = q.NextSlot(nil, utc("2026-12-01T10:00:00Z"), utc("2026-12-31T00:00:00Z"), SlotOptions{})
	if !ok || !s.Start.Equal(utc("2026-12-03T00:00:00Z")) || s.End.Sub(s.Start) != AnyTimeSlot {
		t.Errorf("any-time slot past a freeze: %v", s)
	}
}

func TestBlastRadiusCap(t *testing.T) {
	for _, tc := range []struct {
		b    BlastRadius
		n    int
		want int
	}{
		{BlastRadius{}, 7, 7},
		{BlastRadius{Percent: 25}, 100, 25},
		{BlastRadius{Percent: 25}, 7, 1}, // 1.75 rounds down, never 0
		{BlastRadius{Percent: 10}, 3, 1}, // at least one host
		{BlastRadius{Hosts: 5}, 100, 5},  // absolute cap
		{BlastRadius{Percent: 50, Hosts: 5}, 100, 5},
		{BlastRadius{Percent: 50, Hosts: 80}, 100, 50},
		{BlastRadius{Hosts: 5}, 2, 2},
	} {
		if got := tc.b.Cap(tc.n); got != tc.want {
			t.Errorf("%+v.Cap(%d) = %d, want %d", tc.b, tc.n, got, tc.want)
		}
	}
}

func TestSelectorsAndGroups(t *testing.T) {
	p, err := Parse("sample.yaml", SampleYAML)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		h    Host
		want string
	}{
		{Host{Ring: "prod", InternetFacing: true}, "internet-edge"}, // first match wins
		{Host{Ring: "prod"}, "prod"},
		{Host{Ring: "test"}, "everything-else"},
	} {
		if g := GroupName(p.GroupOf(tc.h)); g != tc.want {
			t.Errorf("%+v: group %s, want %s", tc.h, g, tc.want)
		}
	}
	q := mustParse(t, slaOnly+"groups:\n  - name: web\n    select: {hostname: \"web-*\", tags: [pci], criticality: 4, owner: shop, os: \"Debian:12\"}\n")
	h := Host{Hostname: "web-01", Tags: []string{"x", "pci"}, Criticality: 4, Owner: "shop", OS: "Debian:12"}
	if GroupOf := q.GroupOf(h); GroupOf == nil {
		t.Errorf("web host not in web")
	}
	h.Tags = []string{"x"}
	if q.GroupOf(h) != nil {
		t.Errorf("host without tag pci in web")
	}
	if !q.UsesTags() || p.UsesTags() {
		t.Errorf("UsesTags")
	}
	if i, known := p.RingIndex("pilot"); i != 1 || !known {
		t.Errorf("pilot at %d", i)
	}
	if i, known := p.RingIndex("lab"); i != 3 || known {
		t.Errorf("unknown ring at %d %v, want last", i, known)
	}
}

func TestDiff(t *testing.T) {
	a := mustParse(t, slaOnly)
	b := mustParse(t, "sla:\n  days: {critical: 7, high: 30, medium: 90, low: 180}\nrings: [{name: test}]\n")
	d, err := Diff(a.Canonical(), b.Canonical())
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(d, "\n")
	for _, want := range []string{"- sla.days.critical = 15", "+ sla.days.critical = 7", "+ rings[0].name = \"test\""} {
		if !strings.Contains(got, want) {
			t.Errorf("diff lacks %q:\n%s", want, got)
		}
	}
	if d, _ := Diff(a.Canonical(), a.Canonical()); len(d) != 0 {
		t.Errorf("diff of equal policies: %v", d)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(SampleYAML)
	f.Add([]byte(slaOnly))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		// A valid policy survives its canonical round trip... of meaning:
		// its SLA is complete.
		for _, s := range severity.All {
			if p.SLA.Days[s] == 0 {
				t.Fatalf("accepted policy without SLA days for %s", s)
			}
		}
	})
}

// A host's own window within its group's windows: the overlap of one
// occurrence of each, past freezes; nothing when they never meet; the
// host's window alone in a group without windows; both bypassed by the
// emergency path.
func TestNextSlotWithin(t *testing.T) {
	p := mustParse(t, strings.Replace(freezePolicy, "freezes:", "  - {name: lab, select: {ring: lab}}\nfreezes:", 1))
	edge, prod, lab := &p.Groups[0], &p.Groups[1], &p.Groups[2]
	win := func(days []string, start string, d time.Duration, tz string) Window {
		w, err := NewWindow(days, start, d, tz)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	satNight := win([]string{"sat"}, "05:00", 3*time.Hour, "UTC")                                      // Sat 05:00-08:00 UTC
	thuLate := win([]string{"thu"}, "23:00", 2*time.Hour, "Europe/Berlin")                             // Thu 22:00-00:00 UTC in winter
	daily := win([]string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, "03:00", time.Hour, "UTC") // never in edge's 21:00-01:00 UTC
	for _, tc := range []struct {
		name        string
		g           *Group
		own         Window
		from, until string
		o           SlotOptions
		start, end  string // "" when none
		why         string
	}{
		// Prod's Saturday 01:00-07:00 New York (06:00-12:00 UTC) meets
		// 05:00-08:00 UTC at 06:00-08:00.
		{"overlap", prod, satNight, "2026-12-01T00:00:00Z", "2026-12-20T00:00:00Z", SlotOptions{}, "2026-12-05T06:00:00Z", "2026-12-05T08:00:00Z", ""},
		// From 2026-12-20, the Saturdays to 2 January are frozen.
		{"frozen", prod, satNight, "2026-12-20T00:00:00Z", "2027-02-01T00:00:00Z", SlotOptions{}, "2027-01-09T06:00:00Z", "2027-01-09T08:00:00Z", ""},
		{"frozen to the end", prod, satNight, "2026-12-20T00:00:00Z", "2027-01-05T00:00:00Z", SlotOptions{}, "", "", "change freeze year-end"},
		// Edge's Thursday 22:00-02:00 Berlin is 21:00-01:00 UTC: the host's
		// 22:00-00:00 UTC lies inside it.
		{"inside", edge, thuLate, "2026-12-01T00:00:00Z", "2026-12-20T00:00:00Z", SlotOptions{}, "2026-12-03T22:00:00Z", "2026-12-04T00:00:00Z", ""},
		{"never", edge, daily, "2026-12-01T00:00:00Z", "2026-12-20T00:00:00Z", SlotOptions{}, "", "", "overlaps no window of group internet-edge"},
		// No group windows: the host's own.
		{"group any time", lab, daily, "2026-12-01T12:00:00Z", "2026-12-20T00:00:00Z", SlotOptions{}, "2026-12-02T03:00:00Z", "2026-12-02T04:00:00Z", ""},
		// Emergency: both windows bypassed, a 2 h slot now.
		{"emergency", edge, daily, "2026-12-01T12:00:00Z", "2026-12-20T00:00:00Z", SlotOptions{IgnoreWindows: true, AnyTime: 2 * time.Hour}, "2026-12-01T12:00:00Z", "2026-12-01T14:00:00Z", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, why, ok := p.NextSlotWithin(tc.g, tc.own, utc(tc.from), utc(tc.until), tc.o)
			if tc.start == "" {
				if ok || !strings.Contains(why, tc.why) {
					t.Errorf("slot %v ok=%v why=%q, want none because %q", s, ok, why, tc.why)
				}
				return
			}
			if !ok || !s.Start.Equal(utc(tc.start)) || !s.End.Equal(utc(tc.end)) {
				t.Errorf("slot %s..%s ok=%v (%s), want %s..%s", s.Start.UTC(), s.End.UTC(), ok, why, tc.start, tc.end)
			}
		})
	}
}
