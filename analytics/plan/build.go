// Package plan is the remediation planner: from the open findings
// (finding_risk) and the active policy (analytics/policy) it builds a plan
// of actions, one per (host, package): the target version that closes
// every open fixable advisory of the package on the host, the ring, wave
// and maintenance window it runs in, and the reason for its place.
//
// Plans are immutable (tables plans, plan_actions, plan_no_fix of
// 0008_policy_plans): a new plan supersedes the previous one and history
// is kept. Builder is the pure part (findings in, plan out; tested by hand
// and on generated fleets); store.go reads and writes.
package plan

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas/severity"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// Finding is one open finding as the planner reads it (from finding_risk).
type Finding struct {
	HostID, Hostname, Owner, Ring, OS string
	Criticality                       int
	InternetFacing                    bool
	Source, AdvisoryID, Severity      string
	EPSS                              float64
	HasEPSS, KEV                      bool
	KEVDueDate                        time.Time // zero when not in KEV
	Ecosystem, Package, Installed     string
	Status, FixedVersion              string // status affected with a fixed version: fixable
	ClockStart                        time.Time
	RiskScore                         float64
}

// Fixable reports whether a fix is released for f.
func (f *Finding) Fixable() bool { return f.Status == "affected" && f.FixedVersion != "" }

// Status values of an action.
const (
	Scheduled   = "scheduled"   // a window before the deadline
	Late        = "late"        // the first window starts after the deadline
	Unscheduled = "unscheduled" // no window in the horizon
)

// Action is one package upgrade on one host.
type Action struct {
	PlanID, ActionID                string
	Rank                            uint32
	HostID, Hostname, Owner, OS     string
	Group                           string
	Ecosystem, Package              string
	InstalledVersion, TargetVersion string
	Advisories                      []string // source/advisory_id, sorted
	KEVAdvisories                   uint32
	KEVIDs                          []string // the advisories of Advisories in CISA KEV
	Severity                        string   // the highest severity among Advisories
	RiskReduction                   float64
	Deadline                        time.Time
	Ring                            string
	Wave                            uint32
	WindowStart, WindowEnd          time.Time // zero when unscheduled
	Emergency, ApprovalRequired     bool
	Status, Reason                  string
	emergencyWhy, emergencyAdv      string
	badVersion                      string // the smallest fixed version that cannot be compared
	ringIdx                         int
	ringKnown                       bool
	hostRef                         *host
	risks                           []float64 // parallel to Advisories until dedupe
	targetKey                       string
}

// NoFix is an open finding with no fix released: no action, listed.
type NoFix struct {
	HostID, Hostname, Ecosystem, Package, InstalledVersion string
	Advisory, Status                                       string
	RiskScore                                              float64
}

// Plan is a built plan.
type Plan struct {
	ID             string
	At, HorizonEnd time.Time
	PolicyVersion  uint32
	Actions        []Action // in rank order
	NoFix          []NoFix
	Findings       uint64
	Hosts          int
	Waves          uint32
}

// Counts summarises the actions by status.
func (p *Plan) Counts() (scheduled, late, unscheduled, emergency int, risk float64) {
	for i := range p.Actions {
		a := &p.Actions[i]
		switch a.Status {
		case Scheduled:
			scheduled++
		case Late:
			late++
		default:
			unscheduled++
		}
		if a.Emergency {
			emergency++
		}
		risk += a.RiskReduction
	}
	return
}

type host struct {
	policy.Host
	group *policy.Group
	// window is the host's own maintenance window (scans.maintenance_window)
	// when it declares a readable one: the host is patched where it
	// overlaps the group's windows (see hostwindow.go). windowText is the
	// declared text.
	window     *policy.Window
	windowText string
	windowNote string // why a declared window was not used
}

type actionKey struct{ host, ecosystem, pkg string }

// Builder accumulates findings (Add) and builds the plan (Build). Not
// safe for concurrent use.
type Builder struct {
	pol     *policy.Policy
	at, end time.Time
	hosts   map[string]*host
	actions map[actionKey]*Action
	noFix   []NoFix
	n       uint64
	keys    map[[2]string]keyed // version key cache: fleets share versions
	strs    map[string]string   // interned strings: millions of rows repeat few values
}

type keyed struct {
	key string
	err error
}

// NewBuilder starts a plan under pol for the time at, scheduling up to
// at+horizon.
func NewBuilder(pol *policy.Policy, at time.Time, horizon time.Duration) *Builder {
	return &Builder{pol: pol, at: at.UTC().Truncate(time.Second), end: at.UTC().Truncate(time.Second).Add(horizon),
		hosts: map[string]*host{}, actions: map[actionKey]*Action{}, keys: map[[2]string]keyed{}, strs: map[string]string{}}
}

func (b *Builder) intern(s string) string {
	if v, ok := b.strs[s]; ok {
		return v
	}
	b.strs[s] = s
	return s
}

func (b *Builder) versionKey(eco, v string) (string, error) {
	k := [2]string{eco, v}
	if c, ok := b.keys[k]; ok {
		return c.key, c.err
	}
	key, err := version.Key(eco, v)
	b.keys[k] = keyed{key, err}
	return key, err
}

// Deadline is f's SLA deadline under the policy: the clock start plus the
// severity's days; the end of the KEV dueDate (23:59:59 UTC) when the
// policy has the KEV rule and it is sooner (never before the clock start,
// as the SLA views do); and at most the EPSS escalation's days after the
// clock start when EPSS reaches its threshold.
func Deadline(p *policy.Policy, f *Finding) time.Time {
	days, ok := p.SLA.Days[f.Severity]
	if !ok {
		days = p.SLA.Days["unknown"]
	}
	d := f.ClockStart.Add(time.Duration(days) * 24 * time.Hour)
	if p.SLA.KEVDueDate && f.KEV && !f.KEVDueDate.IsZero() && f.KEVDueDate.Unix() > 0 {
		due := f.KEVDueDate.UTC().Truncate(24 * time.Hour).Add(24*time.Hour - time.Second)
		if due.Before(f.ClockStart) {
			due = f.ClockStart
		}
		if due.Before(d) {
			d = due
		}
	}
	if e := p.SLA.EPSSEscalation; e != nil && f.HasEPSS && f.EPSS >= e.Threshold {
		if esc := f.ClockStart.Add(time.Duration(e.Days) * 24 * time.Hour); esc.Before(d) {
			d = esc
		}
	}
	return d.UTC()
}

// Add takes one open finding.
func (b *Builder) Add(f *Finding) {
	b.n++
	h, ok := b.hosts[f.HostID]
	if !ok {
		h = &host{Host: policy.Host{ID: f.HostID, Hostname: f.Hostname, Ring: b.intern(f.Ring), Owner: b.intern(f.Owner),
			OS: b.intern(f.OS), Criticality: f.Criticality, InternetFacing: f.InternetFacing}}
		b.hosts[f.HostID] = h
	}
	eco, pkg := b.intern(f.Ecosystem), b.intern(f.Package)
	adv := b.intern(f.Source + "/" + f.AdvisoryID)
	if !f.Fixable() {
		b.noFix = append(b.noFix, NoFix{HostID: h.ID, Hostname: h.Hostname, Ecosystem: eco, Package: pkg,
			InstalledVersion: b.intern(f.Installed), Advisory: adv, Status: b.intern(f.Status), RiskScore: f.RiskScore})
		return
	}
	k := actionKey{h.ID, eco, pkg}
	a, ok := b.actions[k]
	if !ok {
		a = &Action{HostID: h.ID, Hostname: h.Hostname, Owner: h.Owner, OS: h.OS, Ecosystem: eco, Package: pkg,
			InstalledVersion: b.intern(f.Installed), Ring: h.Ring, hostRef: h}
		b.actions[k] = a
	}
	// Duplicates (the same advisory through a second range or arch) are
	// removed once, in Build: no per-action index while reading.
	a.Advisories = append(a.Advisories, adv)
	a.risks = append(a.risks, f.RiskScore)
	if f.KEV {
		a.KEVIDs = append(a.KEVIDs, adv)
	}
	if b.higher(a, f.FixedVersion, a.TargetVersion) {
		a.TargetVersion = b.intern(f.FixedVersion)
	}
	if ok, why := b.pol.Emergency.Qualifies(f.KEV, f.Severity, f.EPSS, f.HasEPSS, f.InternetFacing); ok && (!a.Emergency || adv < a.emergencyAdv) {
		// The first qualifying advisory in sorted order names the reason,
		// whatever order the findings come in (the engine's plan agrees).
		a.Emergency, a.emergencyWhy, a.emergencyAdv = true, why+" ("+adv+")", adv
	}
	if a.Severity == "" || sevRank(f.Severity) < sevRank(a.Severity) {
		a.Severity = b.intern(f.Severity)
	}
	if f.Installed < a.InstalledVersion { // several installed copies: name one, stably
		a.InstalledVersion = b.intern(f.Installed)
	}
	if d := Deadline(b.pol, f); a.Deadline.IsZero() || d.Before(a.Deadline) {
		a.Deadline = d
	}
}

// dedupe sorts a.Advisories, drops repeats, and sums the risk of each
// advisory once (the larger, should two rows of one exposure differ).
func (a *Action) dedupe() {
	idx := make([]int, len(a.Advisories))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int { return strings.Compare(a.Advisories[x], a.Advisories[y]) })
	advs := make([]string, 0, len(idx))
	a.RiskReduction = 0
	for i, j := range idx {
		if i > 0 && a.Advisories[j] == advs[len(advs)-1] {
			continue
		}
		top := a.risks[j]
		for _, k := range idx[i+1:] {
			if a.Advisories[k] != a.Advisories[j] {
				break
			}
			top = max(top, a.risks[k])
		}
		advs = append(advs, a.Advisories[j])
		a.RiskReduction += top
	}
	// Two decimals, as risk scores have: sums then agree whatever order
	// they are added in (here or in the engine).
	a.RiskReduction = round2(a.RiskReduction)
	a.Advisories, a.risks = advs, nil
	slices.Sort(a.KEVIDs)
	a.KEVIDs = slices.Compact(a.KEVIDs)
	a.KEVAdvisories = uint32(len(a.KEVIDs))
}

// sevRank is a severity's position in the vocabulary (0 = critical);
// anything else ranks as unknown.
func sevRank(s string) int { return severity.Index(s) }

// higher reports whether version v sorts above cur by the ecosystem's
// comparator (cur "" is lowest). A version the comparator refuses marks
// the action so Build lists it with the reason, never guesses an order.
// Equal keys (Debian's 1.0 and 1.0-0) are ordered by the text, so the
// target does not depend on the order findings come in.
func (b *Builder) higher(a *Action, v, cur string) bool {
	kv, err := b.versionKey(a.Ecosystem, v)
	if err != nil {
		if a.badVersion == "" || v < a.badVersion {
			a.badVersion = v
			a.Reason = uncomparable(a.Ecosystem, v, err)
		}
		return false
	}
	if cur == "" {
		return true
	}
	kc, err := b.versionKey(a.Ecosystem, cur)
	if err != nil {
		return true
	}
	return kv > kc || kv == kc && v > cur
}

// uncomparable is the reason of an action whose fixed version the
// ecosystem's comparator refuses.
func uncomparable(eco, v string, err error) string {
	return fmt.Sprintf("fixed version %q cannot be compared in %s: %v", v, eco, err)
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// unit is what a wave holds: one host's emergency or normal actions. The
// scheduler sees units only (deadline and risk of the host's actions), so
// the engine's plan (engine.go) schedules the same rows without bringing
// actions into Go; the fields after risk are its result.
type unit struct {
	h         *host
	emergency bool
	actions   []*Action // the Go path's actions; nil in the engine's
	deadline  time.Time
	risk      float64
	ringIdx   int
	ringKnown bool

	wave  uint32
	slot  policy.Slot
	ok    bool
	why   string // why there is no slot (ok false)
	place string // the reason text of its place, shared by its actions
}

// Build schedules the actions and returns the plan with id planID.
func (b *Builder) Build(planID string, policyVersion uint32) *Plan {
	p := &Plan{ID: planID, At: b.at, HorizonEnd: b.end, PolicyVersion: policyVersion, NoFix: b.noFix, Findings: b.n, Hosts: len(b.hosts)}
	for _, h := range b.hosts {
		h.group = b.pol.GroupOf(h.Host)
	}
	units := map[[2]any]*unit{}
	var list []*unit
	for _, a := range b.actions {
		a.dedupe()
		h := a.hostRef
		a.Group = policy.GroupName(h.group)
		a.ringIdx, a.ringKnown = b.pol.RingIndex(h.Ring)
		a.ApprovalRequired = a.Emergency && b.pol.Emergency.ApprovalRequired
		k := [2]any{h.ID, a.Emergency}
		u, ok := units[k]
		if !ok {
			u = &unit{h: h, emergency: a.Emergency, ringIdx: a.ringIdx, ringKnown: a.ringKnown}
			units[k] = u
			list = append(list, u)
		}
		u.actions = append(u.actions, a)
		if u.deadline.IsZero() || a.Deadline.Before(u.deadline) {
			u.deadline = a.Deadline
		}
		u.risk += a.RiskReduction
	}
	for _, u := range list {
		u.risk = round2(u.risk)
	}
	p.Waves = schedule(b.pol, b.at, b.end, list)
	for _, u := range list {
		for _, a := range u.actions {
			a.Wave = u.wave
			place(b.pol, a, u)
		}
	}
	for _, a := range b.actions {
		a.PlanID = planID
		sum := sha256.Sum256([]byte(planID + "\x00" + a.HostID + "\x00" + a.Ecosystem + "\x00" + a.Package))
		a.ActionID = "AC-" + hex.EncodeToString(sum[:8])
		p.Actions = append(p.Actions, *a)
	}
	slices.SortFunc(p.Actions, func(x, y Action) int {
		if x.Emergency != y.Emergency {
			if x.Emergency {
				return -1
			}
			return 1
		}
		if c := x.Deadline.Compare(y.Deadline); c != 0 {
			return c
		}
		if c := cmp.Compare(y.RiskReduction, x.RiskReduction); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(x.HostID, y.HostID), strings.Compare(x.Ecosystem, y.Ecosystem), strings.Compare(x.Package, y.Package))
	})
	for i := range p.Actions {
		p.Actions[i].Rank = uint32(i + 1)
	}
	return p
}

// schedule places the units in waves (setting their schedule fields) and
// returns the number of waves. Units need h (with its group), emergency,
// deadline, risk and ring set.
func schedule(pol *policy.Policy, at, end time.Time, list []*unit) uint32 {
	// Most urgent units first: emergency, then deadline, then risk.
	slices.SortFunc(list, func(x, y *unit) int {
		if x.emergency != y.emergency {
			if x.emergency {
				return -1
			}
			return 1
		}
		if c := x.deadline.Compare(y.deadline); c != 0 {
			return c
		}
		if c := cmp.Compare(y.risk, x.risk); c != 0 {
			return c
		}
		return strings.Compare(x.h.ID, y.h.ID)
	})
	// Phases: emergency rings in order, then normal rings in order.
	nRings := len(pol.Rings) + 1
	phases := make([][]*unit, 2*nRings)
	for _, u := range list {
		if u.emergency {
			phases[u.ringIdx] = append(phases[u.ringIdx], u)
		} else {
			phases[nRings+u.ringIdx] = append(phases[nRings+u.ringIdx], u)
		}
	}
	var wave uint32
	earliest := [2]time.Time{at, at} // emergency, normal streams
	for pi, units := range phases {
		if len(units) == 0 {
			continue
		}
		emergency := pi < nRings
		stream := 1
		if emergency {
			stream = 0
		}
		wave = schedulePhase(pol, end, units, emergency, pi%nRings, wave, &earliest[stream])
	}
	return wave
}

// schedulePhase places one ring's units (emergency or not). The blast
// radius caps how many hosts of a group change together: each host takes
// the first slot of its windows (its own window within the group's, see
// hostwindow.go) from the phase's start in which fewer than the group's
// cap of its hosts are already placed, units in priority order. Hosts
// whose windows differ change at different times, so a weekly host
// window delays that host, never the group. A wave is one slot start of
// the phase (waves are numbered in time order across groups), so no wave
// holds more than a group's cap of its hosts. The next ring starts after
// this ring's last slot ends plus its soak (unless the emergency path
// bypasses soak). An unscheduled unit is in no wave (0).
func schedulePhase(pol *policy.Policy, end time.Time, units []*unit, emergency bool, ri int, wave uint32, earliest *time.Time) uint32 {
	var groups []*policy.Group
	byGroup := map[*policy.Group][]*unit{}
	for _, u := range units {
		if _, ok := byGroup[u.h.group]; !ok {
			groups = append(groups, u.h.group)
		}
		byGroup[u.h.group] = append(byGroup[u.h.group], u)
	}
	opts := policy.SlotOptions{}
	if emergency {
		opts.IgnoreWindows = pol.Emergency.Bypasses(policy.BypassWindows)
		opts.IgnoreFreezes = pol.Emergency.Bypasses(policy.BypassFreezes)
		if opts.IgnoreWindows {
			opts.AnyTime = pol.Emergency.EmergencyWindow()
		}
	}
	ringName := "any"
	if ri < len(pol.Rings) {
		ringName = pol.Rings[ri].Name
	} else if len(pol.Rings) > 0 {
		ringName = "after " + pol.Rings[len(pol.Rings)-1].Name
	}
	type found struct {
		slot policy.Slot
		why  string
		ok   bool
	}
	start := *earliest
	phaseEnd := start
	// Slots are keyed by their start's Unix time: two windows in different
	// zones may open at the same instant.
	starts := map[int64]bool{}
	for _, g := range groups {
		us := byGroup[g]
		c := pol.BlastRadiusOf(g).Cap(len(us))
		// The group's hosts per slot start, and per distinct window (""
		// is the group's windows; fleets declare few) the slot its next
		// host would take: slots fill in time order, so each window's
		// search only moves forward.
		placed := map[int64]int{}
		cursor := map[string]found{}
		for _, u := range us {
			key := ""
			if u.h.window != nil && !opts.IgnoreWindows {
				key = u.h.windowText
			}
			f, ok := cursor[key]
			if !ok {
				f.slot, f.why, f.ok = slotFor(pol, g, u.h, key != "", start, end, opts)
			}
			for f.ok && placed[f.slot.Start.Unix()] >= c {
				f.slot, f.why, f.ok = slotFor(pol, g, u.h, key != "", f.slot.End, end, opts)
				if !f.ok {
					f.why += fmt.Sprintf(" (each earlier slot holds the group's cap of %d hosts)", c)
				}
			}
			cursor[key] = f
			u.slot, u.why, u.ok = f.slot, f.why, f.ok
			if f.ok {
				placed[f.slot.Start.Unix()]++
				starts[f.slot.Start.Unix()] = true
				if f.slot.End.After(phaseEnd) {
					phaseEnd = f.slot.End
				}
			}
		}
	}
	// Number the waves by slot start, then write each unit's.
	order := make([]int64, 0, len(starts))
	for t := range starts {
		order = append(order, t)
	}
	slices.Sort(order)
	waveOf := make(map[int64]uint32, len(order))
	for i, t := range order {
		waveOf[t] = wave + uint32(i) + 1
	}
	for _, g := range groups {
		us := byGroup[g]
		c := pol.BlastRadiusOf(g).Cap(len(us))
		for pos, u := range us {
			u.wave = 0
			if u.ok {
				u.wave = waveOf[u.slot.Start.Unix()]
			}
			var r strings.Builder
			fmt.Fprintf(&r, "ring %s", ringName)
			if !u.ringKnown {
				fmt.Fprintf(&r, " (host ring %q not in the ring order: last)", u.h.Ring)
			}
			fmt.Fprintf(&r, ", wave %d, group %s (%d of %d hosts by deadline and risk, at most %d per wave)", u.wave, policy.GroupName(g), pos+1, len(us), c)
			if u.h.window != nil && !opts.IgnoreWindows {
				fmt.Fprintf(&r, ", host window %q within the group's windows", u.h.windowText)
			}
			if u.h.windowNote != "" {
				r.WriteString(", " + u.h.windowNote)
			}
			u.place = r.String()
		}
	}
	*earliest = phaseEnd
	if ri < len(pol.Rings) && !(emergency && pol.Emergency.Bypasses(policy.BypassSoak)) {
		*earliest = phaseEnd.Add(time.Duration(pol.Rings[ri].Gate.MinSoak))
	}
	return wave + uint32(len(order))
}

// emergencySuffix is what the emergency path bypasses and whether it
// needs approval, as an emergency action's reason states it.
func emergencySuffix(pol *policy.Policy) string {
	var by []string
	if pol.Emergency.Bypasses(policy.BypassWindows) {
		by = append(by, "windows")
	}
	if pol.Emergency.Bypasses(policy.BypassFreezes) {
		by = append(by, "freezes")
	}
	if pol.Emergency.Bypasses(policy.BypassSoak) {
		by = append(by, "soak")
	}
	var r string
	if len(by) > 0 {
		r = ", bypasses " + strings.Join(by, ", ")
	}
	if pol.Emergency.ApprovalRequired {
		r += ", needs approval"
	}
	return r
}

// place gives action a its unit's schedule, status and reason. The engine
// states the same rules in SQL (engine.go, final); the differential
// test holds them equal.
func place(pol *policy.Policy, a *Action, u *unit) {
	if a.Reason != "" { // the target version could not be worked out
		a.Status = Unscheduled
		return
	}
	var r strings.Builder
	if a.Emergency {
		r.WriteString("emergency: " + a.emergencyWhy + emergencySuffix(pol) + "; ")
	}
	r.WriteString(u.place)
	if !u.ok {
		a.Status = Unscheduled
		a.Reason = "unscheduled: " + u.why + "; " + r.String()
		return
	}
	a.WindowStart, a.WindowEnd = u.slot.Start, u.slot.End
	a.Status = Scheduled
	fmt.Fprintf(&r, "; deadline %s", a.Deadline.Format(time.RFC3339))
	if u.slot.Start.After(a.Deadline) {
		a.Status = Late
		fmt.Fprintf(&r, ": no window before the deadline, first window %s", u.slot.Start.Format(time.RFC3339))
	}
	a.Reason = r.String()
}
