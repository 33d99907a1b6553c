package plan

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/policy"
)

// A host's own maintenance window is what its scanner reports in
// scans.maintenance_window (schemas/inventory Meta.MaintenanceWindow), as
//
//	<days> HH:MM-HH:MM [TZ]
//
// days: "daily", a day (Mon..Sun, any case) or days joined by commas
// ("Mon,Wed"); TZ an IANA zone, UTC when left out. An end at or before the
// start is on the next day ("Sat 22:00-02:00 UTC" lasts four hours).
//
// The rule (README "Remediation plans"): a host that declares a readable
// window is patched where its window overlaps one of its group's windows:
// its owner knows when the service can go down, the change board (the
// policy's windows) when changes are allowed, and both must agree. A group
// without windows leaves the host's window alone; a host without one gets
// the group's. When the two never overlap before the horizon ends the
// host's actions are unscheduled with that reason (never "any time").
// Everything else of the group still applies (freezes, blast radius, ring
// order, the emergency path's bypasses, which skip both windows). A window
// that cannot be read is named in the action's reason and the group's
// windows apply: a typo never makes a host "any time".

// ParseHostWindow reads a host's declared window.
func ParseHostWindow(s string) (policy.Window, error) {
	f := strings.Fields(s)
	if len(f) < 2 || len(f) > 3 {
		return policy.Window{}, fmt.Errorf("host window %q: want \"<days> HH:MM-HH:MM [TZ]\"", s)
	}
	var days []string
	if strings.EqualFold(f[0], "daily") {
		days = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	} else {
		for _, d := range strings.Split(f[0], ",") {
			d = strings.ToLower(strings.TrimSpace(d))
			if len(d) > 3 { // Monday, Tuesday...
				d = d[:3]
			}
			days = append(days, d)
		}
	}
	from, to, ok := strings.Cut(f[1], "-")
	if !ok {
		return policy.Window{}, fmt.Errorf("host window %q: want HH:MM-HH:MM", s)
	}
	a, err1 := time.Parse("15:04", from)
	b, err2 := time.Parse("15:04", to)
	if err := errors.Join(err1, err2); err != nil {
		return policy.Window{}, fmt.Errorf("host window %q: want HH:MM-HH:MM (24-hour wall clock)", s)
	}
	dur := b.Sub(a)
	if dur <= 0 {
		dur += 24 * time.Hour
	}
	tz := "UTC"
	if len(f) == 3 {
		tz = f[2]
	}
	w, err := policy.NewWindow(days, from, dur, tz)
	if err != nil {
		return policy.Window{}, fmt.Errorf("host window %q: %w", s, err)
	}
	return w, nil
}

// setWindow records h's declared window (text from its latest scan).
func (h *host) setWindow(text string) {
	text = strings.TrimSpace(text)
	if text == "" {
		return
	}
	w, err := ParseHostWindow(text)
	if err != nil {
		h.windowNote = fmt.Sprintf("%v: the group's windows apply", err)
		return
	}
	h.window, h.windowText = &w, text
}

// slotFor is the slot of a host of group g: the group's windows, or, for
// a host that declares its own window (own), where that window overlaps
// the group's (policy.NextSlotWithin), within the group's freezes.
func slotFor(pol *policy.Policy, g *policy.Group, h *host, own bool, start, end time.Time, opts policy.SlotOptions) (policy.Slot, string, bool) {
	if !own {
		return pol.NextSlot(g, start, end, opts)
	}
	slot, why, ok := pol.NextSlotWithin(g, *h.window, start, end, opts)
	if !ok {
		why = fmt.Sprintf("host window %q: %s", h.windowText, why)
	}
	return slot, why, ok
}
