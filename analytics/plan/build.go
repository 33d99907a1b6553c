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
	emergencyWhy                    string
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
	if a.Severity == "" || sevRank(f.Severity) < sevRank(a.Severity) {
		a.Severity = b.intern(f.Severity)
	}
	if f.Installed < a.InstalledVersion { // several installed copies: name one, stably
		a.InstalledVersion = b.intern(f.Installed)
	}
	if d := Deadline(b.pol, f); a.Deadline.IsZero() || d.Before(a.Deadline) {
		a.Deadline = d
	}
	if ok, why := b.pol.Emergency.Qualifies(f.KEV, f.Severity, f.EPSS, f.HasEPSS, f.InternetFacing); ok && !a.Emergency {
		a.Emergency, a.emergencyWhy = true, why+" ("+adv+")"
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
func (b *Builder) higher(a *Action, v, cur string) bool {
	kv, err := b.versionKey(a.Ecosystem, v)
	if err != nil {
		if a.Reason == "" {
			a.Reason = fmt.Sprintf("fixed version %q cannot be compared in %s: %v", v, a.Ecosystem, err)
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
	return kv > kc
}

// unit is what a wave holds: one host's emergency or normal actions.
type unit struct {
	h         *host
	emergency bool
	actions   []*Action
	deadline  time.Time
	risk      float64
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
			u = &unit{h: h, emergency: a.Emergency}
			units[k] = u
			list = append(list, u)
		}
		u.actions = append(u.actions, a)
		if u.deadline.IsZero() || a.Deadline.Before(u.deadline) {
			u.deadline = a.Deadline
		}
		u.risk += a.RiskReduction
	}
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
	nRings := len(b.pol.Rings) + 1
	phases := make([][]*unit, 2*nRings)
	for _, u := range list {
		ri := u.actions[0].ringIdx
		if u.emergency {
			phases[ri] = append(phases[ri], u)
		} else {
			phases[nRings+ri] = append(phases[nRings+ri], u)
		}
	}
	var wave uint32
	earliest := [2]time.Time{b.at, b.at} // emergency, normal streams
	for pi, units := range phases {
		if len(units) == 0 {
			continue
		}
		emergency := pi < nRings
		ri := pi % nRings
		stream := 1
		if emergency {
			stream = 0
		}
		wave = b.schedulePhase(units, emergency, ri, wave, &earliest[stream])
	}
	p.Waves = wave
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

// schedulePhase places one ring's units (emergency or not) in waves: per
// group, units in priority order are cut into chunks of the group's blast
// radius; chunk j of every group forms the phase's wave j. Wave j+1 starts
// after wave j's windows end; the next ring starts after the last wave
// plus this ring's soak (unless the emergency path bypasses soak).
func (b *Builder) schedulePhase(units []*unit, emergency bool, ri int, wave uint32, earliest *time.Time) uint32 {
	pol := b.pol
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
	start := *earliest
	for j := 0; ; j++ {
		more := false
		waveEnd := start
		w := wave + uint32(j) + 1
		for _, g := range groups {
			us := byGroup[g]
			c := pol.BlastRadiusOf(g).Cap(len(us))
			if j*c >= len(us) {
				continue
			}
			more = true
			chunk := us[j*c : min((j+1)*c, len(us))]
			slot, why, ok := pol.NextSlot(g, start, b.end, opts)
			if ok && slot.End.After(waveEnd) {
				waveEnd = slot.End
			}
			for pos, u := range chunk {
				for _, a := range u.actions {
					a.Wave = w
					b.place(a, slot, ok, why, emergency, ringName, j*c+pos+1, len(us), c, opts)
				}
			}
		}
		if !more {
			wave += uint32(j)
			break
		}
		start = waveEnd
	}
	*earliest = start
	if ri < len(pol.Rings) && !(emergency && pol.Emergency.Bypasses(policy.BypassSoak)) {
		*earliest = start.Add(time.Duration(pol.Rings[ri].Gate.MinSoak))
	}
	return wave
}

func (b *Builder) place(a *Action, slot policy.Slot, ok bool, why string, emergency bool, ring string, pos, n, cap int, opts policy.SlotOptions) {
	var r strings.Builder
	if a.Reason != "" { // the target version could not be worked out
		a.Status = Unscheduled
		return
	}
	if emergency {
		r.WriteString("emergency: " + a.emergencyWhy)
		var by []string
		if opts.IgnoreWindows {
			by = append(by, "windows")
		}
		if opts.IgnoreFreezes {
			by = append(by, "freezes")
		}
		if b.pol.Emergency.Bypasses(policy.BypassSoak) {
			by = append(by, "soak")
		}
		if len(by) > 0 {
			r.WriteString(", bypasses " + strings.Join(by, ", "))
		}
		if a.ApprovalRequired {
			r.WriteString(", needs approval")
		}
		r.WriteString("; ")
	}
	fmt.Fprintf(&r, "ring %s", ring)
	if !a.ringKnown {
		fmt.Fprintf(&r, " (host ring %q not in the ring order: last)", a.Ring)
	}
	fmt.Fprintf(&r, ", wave %d, group %s (%d of %d hosts by deadline and risk, at most %d per wave)", a.Wave, a.Group, pos, n, cap)
	if !ok {
		a.Status = Unscheduled
		a.Reason = "unscheduled: " + why + "; " + r.String()
		return
	}
	a.WindowStart, a.WindowEnd = slot.Start, slot.End
	a.Status = Scheduled
	fmt.Fprintf(&r, "; deadline %s", a.Deadline.Format(time.RFC3339))
	if slot.Start.After(a.Deadline) {
		a.Status = Late
		fmt.Fprintf(&r, ": no window before the deadline, first window %s", slot.Start.Format(time.RFC3339))
	}
	a.Reason = r.String()
}
