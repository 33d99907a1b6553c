package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// AnyTimeSlot is the length of the slot an action gets in a group without
// maintenance windows ("any time"): waves of such a group follow each
// other at this pace.
const AnyTimeSlot = 4 * time.Hour

// DefaultEmergencyWindow is the emergency slot when the policy sets none.
const DefaultEmergencyWindow = 4 * time.Hour

// EmergencyWindow is the length of an emergency slot that bypasses windows.
func (e Emergency) EmergencyWindow() time.Duration {
	if e.Window > 0 {
		return time.Duration(e.Window)
	}
	return DefaultEmergencyWindow
}

// GroupOf returns the first group whose selector matches h (groups are
// tried in file order), or nil: hosts in no group form the implicit
// default group, with no windows and the policy's blast radius.
func (p *Policy) GroupOf(h Host) *Group {
	for i := range p.Groups {
		if p.Groups[i].Select.Matches(h) {
			return &p.Groups[i]
		}
	}
	return nil
}

// GroupName is g's name; "default" for the implicit group.
func GroupName(g *Group) string {
	if g == nil {
		return "default"
	}
	return g.Name
}

// BlastRadiusOf is the cap that applies to group g.
func (p *Policy) BlastRadiusOf(g *Group) BlastRadius {
	if g != nil && g.BlastRadius != nil {
		return *g.BlastRadius
	}
	return p.BlastRadius
}

// RingIndex is the position of ring in the ring order. A ring the order
// does not name (or an empty one) goes last, after every named ring: an
// unlabelled host is treated like production, never like a test machine.
// Without rings every host is in ring 0 (one ring, "any").
func (p *Policy) RingIndex(ring string) (idx int, known bool) {
	for i, r := range p.Rings {
		if r.Name == ring {
			return i, true
		}
	}
	return len(p.Rings), len(p.Rings) == 0
}

// Slot is one occurrence of a window: [Start, End).
type Slot struct {
	Start, End time.Time
}

// SlotOptions are the emergency path's bypasses for one search.
type SlotOptions struct {
	IgnoreWindows bool
	IgnoreFreezes bool
	// AnyTime is the slot length when windows do not apply (no windows
	// or IgnoreWindows). Default AnyTimeSlot.
	AnyTime time.Duration
}

// NextSlot finds the first slot of group g (nil: the implicit group) that
// is still open at earliest (a window already open counts, with its real
// start) and starts before until, and that overlaps no freeze of the
// group. ok is false when there is none; reason then says why (no window
// in the horizon, or the freezes that cover every window).
//
// Wall clock: a window starts at its HH:MM in its time zone on each of its
// days; its duration is elapsed time, so a window across a DST change is
// as long as any other. A start that falls in a spring-forward gap begins
// when the clock resumes (02:30 → 03:30); one that occurs twice in the
// autumn is the second occurrence (Go's time.Date resolves both so; tests
// pin it).
func (p *Policy) NextSlot(g *Group, earliest, until time.Time, o SlotOptions) (slot Slot, reason string, ok bool) {
	freezes := p.freezesOf(g)
	if o.IgnoreFreezes {
		freezes = nil
	}
	frozeBy := map[string]bool{}
	if g == nil || len(g.Windows) == 0 || o.IgnoreWindows {
		n := o.AnyTime
		if n <= 0 {
			n = AnyTimeSlot
		}
		s := Slot{earliest, earliest.Add(n)}
		// Move past every freeze in the way; freezes are few.
		for moved := true; moved; {
			moved = false
			for _, f := range freezes {
				if s.Start.Before(f.end) && f.start.Before(s.End) {
					frozeBy[f.Name] = true
					s = Slot{f.end, f.end.Add(n)}
					moved = true
				}
			}
		}
		if !s.Start.Before(until) {
			return Slot{}, frozenReason(frozeBy, "no slot"), false
		}
		return s, "", true
	}
	best := Slot{}
	found := false
	for _, w := range g.Windows {
		s, ok := w.next(earliest, until, freezes, frozeBy)
		if ok && (!found || s.Start.Before(best.Start)) {
			best, found = s, true
		}
	}
	if !found {
		return Slot{}, frozenReason(frozeBy, fmt.Sprintf("no window of group %s", g.Name)), false
	}
	return best, "", true
}

// NextSlotWithin is NextSlot for a host that declares its own window
// (own): the slot is where one occurrence of own overlaps one of the
// group's windows, so the host's owner (when the service may go down) and
// the change board (when changes are allowed) both agree; a group without
// windows ("any time") leaves own alone. The group's freezes apply to the
// overlap. The emergency path's IgnoreWindows ignores both windows.
// When no overlap opens before until, reason says whether the two never
// meet or freezes cover every overlap.
func (p *Policy) NextSlotWithin(g *Group, own Window, earliest, until time.Time, o SlotOptions) (slot Slot, reason string, ok bool) {
	if o.IgnoreWindows {
		return p.NextSlot(g, earliest, until, o)
	}
	if g == nil || len(g.Windows) == 0 {
		return p.nextOwn(g, own, earliest, until, o)
	}
	freezes := p.freezesOf(g)
	if o.IgnoreFreezes {
		freezes = nil
	}
	frozeBy := map[string]bool{}
	for t := earliest; t.Before(until); {
		h, hok := own.next(t, until, nil, nil)
		var gr Slot
		gok := false
		for _, w := range g.Windows {
			s, ok := w.next(t, until, nil, nil)
			if ok && (!gok || s.Start.Before(gr.Start)) {
				gr, gok = s, true
			}
		}
		if !hok || !gok {
			break
		}
		s := Slot{Start: maxTime(h.Start, gr.Start), End: minTime(h.End, gr.End)}
		if !s.Start.Before(s.End) {
			// No overlap: the occurrence that ends first meets nothing
			// before the other starts.
			t = maxTime(h.Start, gr.Start)
			continue
		}
		if !s.Start.Before(until) {
			break
		}
		frozen := false
		for _, f := range freezes {
			if s.Start.Before(f.end) && f.start.Before(s.End) {
				frozeBy[f.Name] = true
				frozen = true
			}
		}
		if !frozen {
			return s, "", true
		}
		t = s.End
	}
	return Slot{}, frozenReason(frozeBy, fmt.Sprintf("the host's window overlaps no window of group %s", g.Name)), false
}

// nextOwn is the next occurrence of the host's own window, outside g's
// freezes.
func (p *Policy) nextOwn(g *Group, own Window, earliest, until time.Time, o SlotOptions) (Slot, string, bool) {
	freezes := p.freezesOf(g)
	if o.IgnoreFreezes {
		freezes = nil
	}
	frozeBy := map[string]bool{}
	s, ok := own.next(earliest, until, freezes, frozeBy)
	if !ok {
		return Slot{}, frozenReason(frozeBy, "no occurrence of the host's window"), false
	}
	return s, "", true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func frozenReason(frozeBy map[string]bool, none string) string {
	if len(frozeBy) == 0 {
		return none + " before the horizon ends"
	}
	names := make([]string, 0, len(frozeBy))
	for n := range frozeBy {
		names = append(names, n)
	}
	sort.Strings(names)
	return "change freeze " + strings.Join(names, ", ") + " covers every window before the horizon ends"
}

func (p *Policy) freezesOf(g *Group) []Freeze {
	var out []Freeze
	for _, f := range p.Freezes {
		if len(f.Groups) == 0 || (g != nil && contains(f.Groups, g.Name)) {
			out = append(out, f)
		}
	}
	return out
}

// next is the first occurrence of w open at earliest, starting before
// until, outside freezes.
func (w Window) next(earliest, until time.Time, freezes []Freeze, frozeBy map[string]bool) (Slot, bool) {
	dur := time.Duration(w.Duration)
	// Start a week early: a window of up to 7 days that began then may
	// still be open.
	local := earliest.In(w.loc)
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, w.loc).AddDate(0, 0, -7)
	for ; day.Before(until); day = day.AddDate(0, 0, 1) {
		if !w.weekdays[day.Weekday()] {
			continue
		}
		start := time.Date(day.Year(), day.Month(), day.Day(), w.hour, w.minute, 0, 0, w.loc)
		end := start.Add(dur)
		if !end.After(earliest) {
			continue
		}
		if !start.Before(until) {
			return Slot{}, false
		}
		frozen := false
		for _, f := range freezes {
			if start.Before(f.end) && f.start.Before(end) {
				frozeBy[f.Name] = true
				frozen = true
			}
		}
		if !frozen {
			return Slot{start, end}, true
		}
	}
	return Slot{}, false
}

// Canonical is the policy as indented JSON with sorted keys: the stored,
// shown and compared form.
func (p *Policy) Canonical() string {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil { // only plain types: cannot happen
		return fmt.Sprintf("{\"error\": %q}", err.Error())
	}
	return string(b)
}

// Flatten lists a canonical policy as "path = value" lines in order, the
// unit Diff compares.
func Flatten(canonical string) ([]string, error) {
	var v any
	if err := json.Unmarshal([]byte(canonical), &v); err != nil {
		return nil, fmt.Errorf("canonical policy: %w", err)
	}
	var out []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(strings.TrimPrefix(prefix+"."+k, "."), x[k])
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", prefix, i), e)
			}
		default:
			b, _ := json.Marshal(x)
			out = append(out, prefix+" = "+string(b))
		}
	}
	walk("", v)
	return out, nil
}

// Diff compares two canonical policies field by field: "- path = old"
// and "+ path = new" lines, sorted by path; empty when they are equal.
func Diff(a, b string) ([]string, error) {
	fa, err := Flatten(a)
	if err != nil {
		return nil, err
	}
	fb, err := Flatten(b)
	if err != nil {
		return nil, err
	}
	split := func(lines []string) map[string]string {
		m := make(map[string]string, len(lines))
		for _, l := range lines {
			k, v, _ := strings.Cut(l, " = ")
			m[k] = v
		}
		return m
	}
	ma, mb := split(fa), split(fb)
	keys := map[string]bool{}
	for k := range ma {
		keys[k] = true
	}
	for k := range mb {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out []string
	for _, k := range sorted {
		va, ina := ma[k]
		vb, inb := mb[k]
		if ina && inb && va == vb {
			continue
		}
		if ina {
			out = append(out, "- "+k+" = "+va)
		}
		if inb {
			out = append(out, "+ "+k+" = "+vb)
		}
	}
	return out, nil
}

// NewWindow builds a weekly window from its parts (days mon..sun, start
// HH:MM, duration, IANA time zone), checked as a policy file's window is.
// The planner builds hosts' own windows (scans.maintenance_window) with it.
func NewWindow(days []string, start string, dur time.Duration, timezone string) (Window, error) {
	w := Window{Start: start, Duration: Duration(dur), TimeZone: timezone}
	for _, d := range days {
		d = strings.ToLower(d)
		wd, ok := weekdayNames[d]
		if !ok {
			return Window{}, fmt.Errorf("unknown day %q (want mon, tue, wed, thu, fri, sat or sun)", d)
		}
		w.weekdays[wd] = true
		w.Days = append(w.Days, d)
	}
	if len(w.Days) == 0 {
		return Window{}, errors.New("no days")
	}
	t, err := time.Parse("15:04", start)
	if err != nil {
		return Window{}, fmt.Errorf("start %q: want HH:MM (24-hour wall clock)", start)
	}
	w.hour, w.minute = t.Hour(), t.Minute()
	if dur <= 0 || dur > 7*24*time.Hour {
		return Window{}, fmt.Errorf("duration %s: want more than 0 and at most a week", dur)
	}
	if w.loc, err = time.LoadLocation(timezone); err != nil || timezone == "" || timezone == "Local" {
		return Window{}, fmt.Errorf("unknown IANA time zone %q (e.g. UTC, Europe/Berlin)", timezone)
	}
	return w, nil
}
