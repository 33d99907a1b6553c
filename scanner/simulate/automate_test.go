package simulate_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/outcome"
)

// dueActions makes one plan action per package of every host that is still
// at an upgrade path's vulnerable version on the last day, as a plan built
// from the fleet's scans would.
func dueActions(f *simulate.Fleet, days int) []simulate.PlannedAction {
	fixed := map[[2]string]string{}
	for _, u := range f.Upgrades {
		fixed[[2]string{u.Package, u.Vulnerable}] = u.Fixed
	}
	var acts []simulate.PlannedAction
	for i, e := range f.Endpoints {
		seen := map[string]bool{}
		for _, p := range f.PackagesOn(i, days-1) {
			to, ok := fixed[[2]string{p.Name, p.Version}]
			if !ok || seen[p.Name] {
				continue
			}
			seen[p.Name] = true
			acts = append(acts, simulate.PlannedAction{
				PlanID: "PL-test", ActionID: fmt.Sprintf("A-%s-%s", e.HostID[:8], p.Name), HostID: e.HostID,
				Package: p.Name, TargetVersion: to, Ring: e.Meta.Ring, Wave: 1,
			})
		}
	}
	return acts
}

// TestAutomate plays automation on a fleet with a known failure rate and
// rollback share: decisions are per host as in the timeline, at the
// configured rates, deterministic, and the rescans show exactly the
// succeeded upgrades, after every scan the fleet already sent.
func TestAutomate(t *testing.T) {
	bases, ups := loadInputs(t)
	const days = 7
	cfg := simulate.Config{Endpoints: 800, Days: days, Seed: 11, FailureRate: 0.3, RollbackShare: 0.5, Waves: 1,
		Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	f, err := simulate.NewFleet(cfg, bases, ups)
	if err != nil {
		t.Fatal(err)
	}
	lastScan := map[string]time.Time{}
	if _, err := f.Run(context.Background(), simulate.WriterSink{W: discard{}}, simulate.RunOptions{
		OnScan: func(_ int, s *inventory.Scan) {
			if s.ScannedAt.After(lastScan[s.HostID]) {
				lastScan[s.HostID] = s.ScannedAt
			}
		},
	}); err != nil {
		t.Fatal(err)
	}
	acts := dueActions(f, days)
	if len(acts) < 200 {
		t.Fatalf("only %d due actions: the fixture exercises too little", len(acts))
	}
	acts[0].Attempt = 2 // a retry
	acts = append(acts, simulate.PlannedAction{PlanID: "PL-test", ActionID: "A-local", HostID: "not-simulated", Package: "bash", TargetVersion: "5.2"})
	at := cfg.Start.Add(3 * 24 * time.Hour) // before the last day: rescans must still follow its scans
	res, err := f.Automate(context.Background(), acts, at)
	if err != nil {
		t.Fatal(err)
	}
	if res.Foreign != 1 {
		t.Errorf("foreign actions = %d, want 1", res.Foreign)
	}
	if len(res.Outcomes) != len(acts)-1 {
		t.Fatalf("%d outcomes for %d actions", len(res.Outcomes), len(acts)-1)
	}

	// Same plan, actions in another order: the same outcomes and rescans.
	shuffled := append([]simulate.PlannedAction(nil), acts...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	again, err := f.Automate(context.Background(), shuffled, at)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, again) {
		t.Error("the same plan in another order gave other outcomes")
	}

	byAction := map[string]simulate.PlannedAction{}
	for _, a := range acts {
		byAction[a.ActionID] = a
	}
	before := map[string]map[string]string{} // host -> package -> version on the last day
	for i, e := range f.Endpoints {
		before[e.HostID] = map[string]string{}
		for _, p := range f.PackagesOn(i, days-1) {
			before[e.HostID][p.Name] = p.Version
		}
	}
	hostStatus := map[string]outcome.Status{}
	lastFinish := map[string]time.Time{}
	for _, o := range res.Outcomes {
		if err := o.Validate(); err != nil {
			t.Fatalf("outcome %s: %v", o.ActionID, err)
		}
		if prev, ok := hostStatus[o.HostID]; ok && prev != o.Status {
			t.Errorf("host %s: statuses %s and %s in one deployment", o.HostID, prev, o.Status)
		}
		hostStatus[o.HostID] = o.Status
		if !o.StartedAt.After(lastScan[o.HostID]) || o.StartedAt.Before(at) {
			t.Errorf("outcome %s starts %s: before the host's last scan %s or the automation's start %s", o.ActionID, o.StartedAt, lastScan[o.HostID], at)
		}
		if o.FinishedAt.After(lastFinish[o.HostID]) {
			lastFinish[o.HostID] = o.FinishedAt
		}
		if a := byAction[o.ActionID]; o.FromVersion != before[o.HostID][o.Package] || o.ToVersion != a.TargetVersion || o.Attempt != max(a.Attempt, 1) {
			t.Errorf("outcome %+v does not carry its action %+v", o, a)
		}
	}
	counts := map[outcome.Status]int{}
	for _, s := range hostStatus {
		counts[s]++
	}
	if counts[outcome.Skipped] != 0 {
		t.Errorf("%d hosts skipped: the plan's installed versions are the fleet's", counts[outcome.Skipped])
	}
	hosts := float64(len(hostStatus))
	failed := float64(counts[outcome.Failed] + counts[outcome.RolledBack])
	// Binomial: 3 standard deviations at n hosts.
	if rate, sd := failed/hosts, math.Sqrt(0.3*0.7/hosts); math.Abs(rate-0.3) > 3*sd {
		t.Errorf("failure rate %.3f over %v hosts, want 0.3 ± %.3f", rate, hosts, 3*sd)
	}
	if share, sd := float64(counts[outcome.RolledBack])/failed, math.Sqrt(0.25/failed); math.Abs(share-0.5) > 3*sd {
		t.Errorf("rollback share %.3f of %v failures, want 0.5 ± %.3f", share, failed, 3*sd)
	}

	if len(res.Rescans) != len(hostStatus) {
		t.Fatalf("%d rescans for %d hosts", len(res.Rescans), len(hostStatus))
	}
	for _, s := range res.Rescans {
		if !s.ScannedAt.After(lastFinish[s.HostID]) || s.Heartbeat || s.InventoryHash != inventory.HashPackages(s.Packages) {
			t.Errorf("rescan of %s at %s: not a full scan after its outcomes (last finished %s)", s.HostID, s.ScannedAt, lastFinish[s.HostID])
		}
		installed := map[string]string{}
		for _, p := range s.Packages {
			installed[p.Name] = p.Version
		}
		for _, o := range res.Outcomes {
			if o.HostID != s.HostID {
				continue
			}
			want := o.FromVersion
			if o.Status == outcome.Succeeded {
				want = o.ToVersion
			}
			if installed[o.Package] != want {
				t.Errorf("host %s after %s: %s is at %s, want %s", s.HostID, o.Status, o.Package, installed[o.Package], want)
			}
		}
	}
}

// TestAutomatorRounds: a second round retries the failed hosts (attempt 2,
// a draw of its own) and redeploys one succeeded action, whose host keeps
// what the first round installed.
func TestAutomatorRounds(t *testing.T) {
	bases, ups := loadInputs(t)
	cfg := simulate.Config{Endpoints: 300, Days: 5, Seed: 3, FailureRate: 0.5, RollbackShare: 0.5, Waves: 1}
	f, err := simulate.NewFleet(cfg, bases, ups)
	if err != nil {
		t.Fatal(err)
	}
	acts := dueActions(f, cfg.Days)
	am := &simulate.Automator{Fleet: f}
	at := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	r1, err := am.Automate(context.Background(), acts, at)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]simulate.PlannedAction{}
	for _, a := range acts {
		byID[a.ActionID] = a
	}
	var again []simulate.PlannedAction
	var redeployed string
	for _, o := range r1.Outcomes {
		if o.Status != outcome.Succeeded {
			a := byID[o.ActionID]
			a.Attempt = 2
			again = append(again, a)
		} else if redeployed == "" {
			redeployed = o.ActionID
			again = append(again, byID[o.ActionID])
		}
	}
	r2, err := am.Automate(context.Background(), again, at.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	retried, succeeded := 0, 0
	for _, o := range r2.Outcomes {
		if o.ActionID == redeployed {
			if o.FromVersion != o.ToVersion {
				t.Errorf("redeployed %s: from %s, want the version round 1 installed (%s)", o.ActionID, o.FromVersion, o.ToVersion)
			}
			continue
		}
		if o.Attempt != 2 {
			t.Errorf("retry of %s: attempt %d", o.ActionID, o.Attempt)
		}
		retried++
		if o.Status == outcome.Succeeded {
			succeeded++
		}
	}
	// With a failure rate of 0.5 some retries succeed: the draw is not the
	// first attempt's again.
	if retried == 0 || succeeded == 0 {
		t.Errorf("%d retries, %d succeeded", retried, succeeded)
	}
	ids := map[string]bool{}
	for _, s := range append(r1.Rescans, r2.Rescans...) {
		if ids[s.ScanID] {
			t.Errorf("scan id %s used twice", s.ScanID)
		}
		ids[s.ScanID] = true
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
