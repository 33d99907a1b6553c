package plan

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas/version"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func parse(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const sla = "sla:\n  days: {critical: 15, high: 30, medium: 90, low: 180}\n  kev_due_date: true\n"

// at is a Wednesday.
var at = utc("2026-12-02T12:00:00Z")

func finding(host, ring, pkg, installed, fixed, adv, sev string, risk float64) *Finding {
	return &Finding{HostID: host, Hostname: host, Ring: ring, Source: "osv", AdvisoryID: adv, Severity: sev,
		Ecosystem: "Debian:12", Package: pkg, Installed: installed, Status: "affected", FixedVersion: fixed,
		ClockStart: at.Add(-24 * time.Hour), RiskScore: risk}
}

func build(t testing.TB, p *policy.Policy, fs ...*Finding) *Plan {
	b := NewBuilder(p, at, DefaultHorizon)
	for _, f := range fs {
		b.Add(f)
	}
	return b.Build("PL-test", 1)
}

func byHost(p *Plan) map[string]*Action {
	m := map[string]*Action{}
	for i := range p.Actions {
		m[p.Actions[i].HostID+"/"+p.Actions[i].Package] = &p.Actions[i]
	}
	return m
}

// No windows and no rings: any time, one wave.
func TestNoWindowsNoRingsIsOneWave(t *testing.T) {
	p := build(t, parse(t, sla),
		finding("h1", "prod", "openssl", "3.0.11-1", "3.0.13-1", "A1", "high", 40),
		finding("h1", "prod", "openssl", "3.0.11-1", "3.0.15-1~deb12u1", "A2", "critical", 60),
		// A1 again (a second range or arch): closed and counted once.
		finding("h1", "prod", "openssl", "3.0.11-1", "3.0.13-1", "A1", "high", 40),
		finding("h2", "test", "curl", "7.88.1-10", "7.88.1-10+deb12u5", "A3", "medium", 10),
		&Finding{HostID: "h2", Ring: "test", Source: "osv", AdvisoryID: "A4", Severity: "high", Ecosystem: "Debian:12",
			Package: "zlib", Installed: "1:1.2.13", Status: "unfixed", ClockStart: at, RiskScore: 30})
	if len(p.Actions) != 2 || len(p.NoFix) != 1 || p.Waves != 1 {
		t.Fatalf("actions %d, no-fix %d, waves %d", len(p.Actions), len(p.NoFix), p.Waves)
	}
	a := byHost(p)["h1/openssl"]
	if a.TargetVersion != "3.0.15-1~deb12u1" || len(a.Advisories) != 2 || a.RiskReduction != 100 || a.Severity != "critical" {
		t.Errorf("openssl action: %+v", a)
	}
	// Critical: 15 days from the clock start.
	if !a.Deadline.Equal(at.Add(14*24*time.Hour)) || a.Rank != 1 {
		t.Errorf("deadline %v rank %d", a.Deadline, a.Rank)
	}
	for _, a := range p.Actions {
		if a.Wave != 1 || !a.WindowStart.Equal(at) || a.Status != Scheduled {
			t.Errorf("%s/%s: wave %d window %v status %s", a.HostID, a.Package, a.Wave, a.WindowStart, a.Status)
		}
		if !strings.HasPrefix(a.ActionID, "AC-") {
			t.Errorf("action id %q", a.ActionID)
		}
	}
}

// Ring order with soak: test, then pilot after test's last window plus
// 24 h, then prod; hosts with a ring the order does not name go last.
func TestRingOrder(t *testing.T) {
	pol := parse(t, sla+`rings:
  - {name: test, gate: {min_soak: 24h}}
  - {name: pilot, gate: {min_soak: 48h}}
  - {name: prod}
`)
	p := build(t, pol,
		finding("p1", "prod", "openssl", "1", "2", "A1", "critical", 90),
		finding("t1", "test", "openssl", "1", "2", "A1", "low", 1),
		finding("x1", "lab", "openssl", "1", "2", "A1", "low", 1),
		finding("i1", "pilot", "openssl", "1", "2", "A1", "low", 1))
	a := byHost(p)
	// Any-time slots of 4 h: test at 12:00-16:00, pilot 24 h after
	// 16:00, prod 48 h after pilot's end, lab after prod.
	want := map[string]struct {
		wave  uint32
		start string
	}{
		"t1": {1, "2026-12-02T12:00:00Z"},
		"i1": {2, "2026-12-03T16:00:00Z"},
		"p1": {3, "2026-12-05T20:00:00Z"},
		"x1": {4, "2026-12-06T00:00:00Z"},
	}
	for h, w := range want {
		got := a[h+"/openssl"]
		if got.Wave != w.wave || !got.WindowStart.Equal(utc(w.start)) {
			t.Errorf("%s: wave %d at %v, want wave %d at %s (%s)", h, got.Wave, got.WindowStart, w.wave, w.start, got.Reason)
		}
	}
	if !strings.Contains(a["x1/openssl"].Reason, `host ring "lab" not in the ring order`) {
		t.Errorf("lab reason: %s", a["x1/openssl"].Reason)
	}
	// Rank ignores rings: the critical prod action is first.
	if a["p1/openssl"].Rank != 1 {
		t.Errorf("p1 rank %d", a["p1/openssl"].Rank)
	}
}

// Blast radius: 10 hosts of one group, at most 30% (3) per wave → waves
// of 3, 3, 3, 1, most urgent hosts first, each wave after the previous.
func TestBlastRadiusCap(t *testing.T) {
	pol := parse(t, sla+"blast_radius: {percent: 30}\n")
	var fs []*Finding
	for i := range 10 {
		fs = append(fs, finding(fmt.Sprintf("h%02d", i), "prod", "curl", "1", "2", "A", "high", float64(i)))
	}
	p := build(t, pol, fs...)
	if p.Waves != 4 {
		t.Fatalf("waves %d, want 4", p.Waves)
	}
	perWave := map[uint32]int{}
	for _, a := range p.Actions {
		perWave[a.Wave]++
	}
	if perWave[1] != 3 || perWave[2] != 3 || perWave[3] != 3 || perWave[4] != 1 {
		t.Errorf("hosts per wave %v", perWave)
	}
	a := byHost(p)
	if a["h09/curl"].Wave != 1 || a["h00/curl"].Wave != 4 { // riskiest first (same deadline)
		t.Errorf("h09 wave %d, h00 wave %d", a["h09/curl"].Wave, a["h00/curl"].Wave)
	}
	if !a["h00/curl"].WindowStart.Equal(at.Add(3 * policy.AnyTimeSlot)) {
		t.Errorf("wave 4 at %v", a["h00/curl"].WindowStart)
	}
}

// The emergency path: a KEV finding bypasses windows, freezes and soak;
// the rest of the same host waits for its window after the freeze.
func TestEmergencyBypass(t *testing.T) {
	pol := parse(t, sla+`groups:
  - name: prod
    select: {ring: prod}
    windows: [{days: [sat], start: "02:00", duration: 4h, timezone: UTC}]
freezes: [{name: dec, from: 2026-12-01, to: 2026-12-10, groups: [prod]}]
rings: [{name: test, gate: {min_soak: 72h}}, {name: prod}]
emergency:
  when: {kev: true}
  bypass: [windows, freezes, soak]
  window: 2h
  approval_required: true
`)
	kev := finding("p1", "prod", "openssl", "1", "2", "KEV1", "high", 80)
	kev.KEV, kev.KEVDueDate = true, utc("2026-12-04T00:00:00Z")
	p := build(t, pol, kev,
		finding("p1", "prod", "curl", "1", "2", "A2", "low", 5),
		finding("t1", "test", "curl", "1", "2", "A2", "low", 5))
	a := byHost(p)
	e := a["p1/openssl"]
	if !e.Emergency || !e.ApprovalRequired || e.Rank != 1 || e.Wave != 1 ||
		!e.WindowStart.Equal(at) || !e.WindowEnd.Equal(at.Add(2*time.Hour)) || e.Status != Scheduled {
		t.Errorf("emergency action: %+v", e)
	}
	// KEV dueDate (end of 4 Dec) is sooner than high's 30 days.
	if !e.Deadline.Equal(utc("2026-12-04T23:59:59Z")) {
		t.Errorf("KEV deadline %v", e.Deadline)
	}
	if !strings.Contains(e.Reason, "emergency: KEV") || !strings.Contains(e.Reason, "bypasses windows, freezes, soak") {
		t.Errorf("reason %q", e.Reason)
	}
	// Normal prod action: after test's soak, first Saturday after the
	// freeze (ends 10 Dec 24:00): Sat 12 Dec 02:00 UTC.
	n := a["p1/curl"]
	if n.Emergency || !n.WindowStart.Equal(utc("2026-12-12T02:00:00Z")) {
		t.Errorf("normal prod action: %v %s", n.WindowStart, n.Reason)
	}
}

// A freeze covering the whole horizon: the action is listed with the
// reason, never dropped.
func TestUnschedulableIsListed(t *testing.T) {
	pol := parse(t, sla+`groups:
  - {name: g, select: {}, windows: [{days: [mon], start: "01:00", duration: 1h}]}
freezes: [{name: all-month, from: 2026-12-01, to: 2027-01-31}]
`)
	p := build(t, pol, finding("h1", "prod", "curl", "1", "2", "A", "high", 5))
	if len(p.Actions) != 1 || p.Actions[0].Status != Unscheduled || !strings.Contains(p.Actions[0].Reason, "change freeze all-month") {
		t.Fatalf("actions %+v", p.Actions)
	}
}

// An incomparable fixed version is listed with the reason.
func TestIncomparableVersionIsListed(t *testing.T) {
	p := build(t, parse(t, sla), finding("h1", "prod", "curl", "1", "not a version!", "A", "high", 5))
	if len(p.Actions) != 1 || p.Actions[0].Status != Unscheduled || !strings.Contains(p.Actions[0].Reason, "cannot be compared") {
		t.Fatalf("actions %+v", p.Actions)
	}
}

// Property tests on generated fleets.
func TestPropertiesOnGeneratedFleets(t *testing.T) {
	pol := parse(t, string(policy.SampleYAML))
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var fs []*Finding
		versions := []string{"1.0-1", "1.0-2", "1.1-1", "1:0.9-1", "1.0-1+deb12u1", "1.0~rc1-1", "2.0-1"}
		rings := []string{"test", "pilot", "prod", "lab", ""}
		nHosts := 5 + rng.IntN(60)
		for h := range nHosts {
			ring := rings[rng.IntN(len(rings))]
			inet := rng.IntN(4) == 0
			for range 1 + rng.IntN(6) {
				f := finding(fmt.Sprintf("h%03d", h), ring, fmt.Sprintf("pkg%d", rng.IntN(5)), "0.1-1",
					versions[rng.IntN(len(versions))], fmt.Sprintf("A%d", rng.IntN(12)),
					[]string{"critical", "high", "medium", "low", "unknown"}[rng.IntN(5)], rng.Float64()*100)
				f.InternetFacing = inet
				f.KEV = rng.IntN(10) == 0
				f.HasEPSS, f.EPSS = true, rng.Float64()
				if rng.IntN(6) == 0 {
					f.Status, f.FixedVersion = "unfixed", ""
				}
				fs = append(fs, f)
			}
		}
		b := NewBuilder(pol, at, time.Duration(1+rng.IntN(60))*24*time.Hour)
		for _, f := range fs {
			b.Add(f)
		}
		p := b.Build("PL-prop", 1)
		checkProperties(t, pol, fs, p, b.hosts)
	}
}

func checkProperties(t *testing.T, pol *policy.Policy, fs []*Finding, p *Plan, planHosts map[string]*host) {
	t.Helper()
	actions := map[actionKey]*Action{}
	for i := range p.Actions {
		a := &p.Actions[i]
		actions[actionKey{a.HostID, a.Ecosystem, a.Package}] = a
		// No action outside a window unless emergency.
		if a.Status != Unscheduled && !a.Emergency {
			g := groupByName(pol, a.Group)
			if h := planHosts[a.HostID]; h != nil && h.window != nil {
				// The host's own window, where it overlaps the group's.
				s, _, ok := pol.NextSlotWithin(g, *h.window, a.WindowStart, a.WindowEnd, policy.SlotOptions{})
				if !ok || !s.Start.Equal(a.WindowStart) || !s.End.Equal(a.WindowEnd) {
					t.Errorf("%s: %v..%v is not where host window %q meets the windows of %s", a.ActionID, a.WindowStart, a.WindowEnd, h.windowText, a.Group)
				}
			} else if g != nil && len(g.Windows) > 0 {
				s, _, ok := pol.NextSlot(g, a.WindowStart, a.WindowEnd, policy.SlotOptions{})
				if !ok || !s.Start.Equal(a.WindowStart) || !s.End.Equal(a.WindowEnd) {
					t.Errorf("%s: %v..%v is not a window of %s", a.ActionID, a.WindowStart, a.WindowEnd, a.Group)
				}
			}
		}
		if a.Status != Unscheduled && a.Wave == 0 {
			t.Errorf("%s: %s in no wave", a.ActionID, a.Status)
		}
		if a.Reason == "" {
			t.Errorf("%s without a reason", a.ActionID)
		}
	}
	// No wave above the blast radius: hosts per (wave, group) against the
	// cap of the group's hosts in that wave's ring phase.
	type wg struct {
		wave  uint32
		group string
	}
	hosts := map[wg]map[string]bool{}
	phaseHosts := map[string]map[string]bool{} // group+ring+emergency → hosts
	for _, a := range p.Actions {
		// An unscheduled action is in no wave (or its host's, without it),
		// yet its host counts in the phase the cap is a share of.
		if k := (wg{a.Wave, a.Group}); a.Status != Unscheduled {
			if hosts[k] == nil {
				hosts[k] = map[string]bool{}
			}
			hosts[k][a.HostID] = true
		}
		pk := fmt.Sprintf("%s/%s/%v", a.Group, a.Ring, a.Emergency)
		if _, known := pol.RingIndex(a.Ring); !known {
			pk = fmt.Sprintf("%s/?/%v", a.Group, a.Emergency)
		}
		if phaseHosts[pk] == nil {
			phaseHosts[pk] = map[string]bool{}
		}
		phaseHosts[pk][a.HostID] = true
	}
	for k, hs := range hosts {
		limit := 0
		for pk, ph := range phaseHosts {
			if strings.HasPrefix(pk, k.group+"/") {
				limit = max(limit, capByDefinition(pol.BlastRadiusOf(groupByName(pol, k.group)), len(ph)))
			}
		}
		if len(hs) > limit {
			t.Errorf("wave %d group %s: %d hosts, cap %d", k.wave, k.group, len(hs), limit)
		}
	}
	// Every fixable open finding is covered by an action that lists its
	// advisory; every other one is in the no-fix list.
	noFix := map[string]bool{}
	for _, n := range p.NoFix {
		noFix[n.HostID+"/"+n.Package+"/"+n.Advisory] = true
	}
	for _, f := range fs {
		adv := f.Source + "/" + f.AdvisoryID
		if !f.Fixable() {
			if !noFix[f.HostID+"/"+f.Package+"/"+adv] {
				t.Errorf("no-fix finding %s on %s not listed", adv, f.HostID)
			}
			continue
		}
		a := actions[actionKey{f.HostID, f.Ecosystem, f.Package}]
		if a == nil || !slices.Contains(a.Advisories, adv) {
			t.Errorf("finding %s on %s/%s not covered", adv, f.HostID, f.Package)
			continue
		}
		// A fixed version the comparator refuses leaves the action
		// unscheduled with the reason; otherwise the target is at least
		// every fixed version of the advisories the action claims to
		// close, by the ecosystem's comparator.
		if _, err := version.Key(f.Ecosystem, f.FixedVersion); err != nil {
			if a.Status != Unscheduled || !strings.Contains(a.Reason, "cannot be compared") {
				t.Errorf("%s: fix %q cannot be compared, yet %s: %s", a.ActionID, f.FixedVersion, a.Status, a.Reason)
			}
			continue
		}
		if c, err := version.Compare(a.Ecosystem, a.TargetVersion, f.FixedVersion); err != nil || c < 0 {
			t.Errorf("%s: target %s below %s's fix %s (%v)", a.ActionID, a.TargetVersion, adv, f.FixedVersion, err)
		}
	}
}

func groupByName(p *policy.Policy, name string) *policy.Group {
	for i := range p.Groups {
		if p.Groups[i].Name == name {
			return &p.Groups[i]
		}
	}
	return nil
}

// capByDefinition is the blast radius as the policy documents it, written
// independently of BlastRadius.Cap: at most Percent % of the n hosts
// (rounded down, at least 1) and at most Hosts.
func capByDefinition(b policy.BlastRadius, n int) int {
	c := n
	if b.Percent > 0 {
		p := int(b.Percent * float64(n) / 100)
		if p < 1 {
			p = 1
		}
		if p < c {
			c = p
		}
	}
	if b.Hosts > 0 && int(b.Hosts) < c {
		c = int(b.Hosts)
	}
	return c
}

// The shipped sample policy is realistic for the simulated fleet
// (scanner/simulate: rings test 5%, pilot 15%, prod 80%; one in five hosts
// internet-facing; each host declares one of four windows, three of them
// weekly): nearly every action gets a window within the default horizon,
// whether the plan starts early in December (prod just before the
// year-end freeze), in the summer or inside the freeze; whatever is left is
// unscheduled with its reason.
func TestSamplePolicySchedulesSimulatedFleet(t *testing.T) {
	pol := parse(t, string(policy.SampleYAML))
	wins := []string{"Sun 02:00-04:00 UTC", "Sat 22:00-02:00 UTC", "Wed 01:00-03:00 UTC", "daily 03:00-04:00 UTC"}
	for _, start := range []string{"2026-12-03T16:00:00Z", "2026-06-10T09:00:00Z", "2026-12-26T09:00:00Z"} {
		rng := rand.New(rand.NewPCG(3, 5))
		b := NewBuilder(pol, utc(start), DefaultHorizon)
		for h := range 1500 {
			ring := "prod"
			if n := rng.IntN(100); n < 5 {
				ring = "test"
			} else if n < 20 {
				ring = "pilot"
			}
			id := fmt.Sprintf("h%04d", h)
			inet := rng.IntN(5) == 0
			for p := range 2 {
				f := finding(id, ring, fmt.Sprintf("pkg%d", p), "1", "2", fmt.Sprintf("A%d", rng.IntN(40)),
					[]string{"high", "medium", "low"}[rng.IntN(3)], rng.Float64()*50)
				f.InternetFacing, f.ClockStart = inet, utc(start).Add(-time.Duration(rng.IntN(30*24))*time.Hour)
				b.Add(f)
			}
			b.hosts[id].setWindow(wins[rng.IntN(len(wins))])
		}
		p := b.Build("PL-sample", 1)
		sched, late, unsched, _, _ := p.Counts()
		if sched+late < len(p.Actions)*95/100 {
			t.Errorf("at %s: %d of %d actions get a window (%d late), want at least 95%%", start, sched+late, len(p.Actions), late)
		}
		for _, a := range p.Actions {
			if a.Status == Unscheduled && !strings.HasPrefix(a.Reason, "unscheduled: ") {
				t.Errorf("at %s: %s unscheduled without its reason: %q", start, a.ActionID, a.Reason)
			}
		}
		t.Logf("at %s: %d actions, %d scheduled, %d late, %d unscheduled, %d waves", start, len(p.Actions), sched, late, unsched, p.Waves)
	}
}
