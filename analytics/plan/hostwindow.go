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
// window is patched in its own window, which replaces its group's windows;
// everything else of the group still applies (freezes, blast radius, ring
// order, the emergency path's bypasses). Its owner knows when the service
// can go down; the change board's freezes still stop it. A window that
// cannot be read is named in the action's reason and the group's windows
// apply: a typo never makes a host "any time".

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

// slotFor is the slot of a host of group g: the group's windows, or the
// host's own window (own true) within the group's freezes.
func slotFor(pol *policy.Policy, g *policy.Group, h *host, own bool, start, end time.Time, opts policy.SlotOptions) (policy.Slot, string, bool) {
	if !own {
		return pol.NextSlot(g, start, end, opts)
	}
	hg := policy.Group{Name: policy.GroupName(g)}
	if g != nil {
		hg = *g
	}
	hg.Windows = []policy.Window{*h.window}
	slot, why, ok := pol.NextSlot(&hg, start, end, opts)
	if !ok {
		why = fmt.Sprintf("host window %q: %s", h.windowText, why)
	}
	return slot, why, ok
}
