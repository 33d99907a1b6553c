package deploy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/deploy"
)

func (f *fixture) cfg(at time.Duration) deploy.Config {
	return deploy.Config{Store: f.st, Audit: f.audit, Actor: "patchgrid test", Now: f.now.Add(at)}
}

func (f *fixture) count(q string, args ...any) uint64 {
	f.t.Helper()
	rows, err := f.st.Query(f.ctx, q, args...)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var n uint64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			f.t.Fatal(err)
		}
	}
	return n
}

func gateOf(t *testing.T, r *deploy.Report, ring string) deploy.RingReport {
	t.Helper()
	for _, g := range r.Rings {
		if g.Ring == ring {
			return g
		}
	}
	t.Fatalf("no ring %s in %+v", ring, r.Rings)
	return deploy.RingReport{}
}

func dueIDs(r *deploy.Report) []string {
	var ids []string
	for _, a := range r.Due.Actions {
		ids = append(ids, a.ActionID)
	}
	return ids
}

// Gates open as the rings' outcomes arrive, each change recorded once
// (gate_decisions and the audit trail); a failed action is due again with
// attempts left, then failed for good; a rollback holds its fix for the
// group until approved, and a later rollback holds it again.
func TestGatesRetriesHoldsOnCHDB(t *testing.T) {
	f := newFixture(t)
	f.writePlan("PL-gates", []act{
		{id: "t1", host: "t1", ring: "test", windowStart: -1 * h},
		{id: "t2", host: "t2", ring: "test", windowStart: -1 * h},
		{id: "t3", host: "t3", ring: "test", windowStart: -1 * h},
		{id: "p1", host: "p1", ring: "pilot", windowStart: -1 * h},
		{id: "p2", host: "p2", ring: "pilot", windowStart: 5 * h},
		{id: "q1", host: "q1", ring: "prod", group: "prod", windowStart: -1 * h},
		{id: "u1", host: "u1", ring: "test", unscheduled: true},
	})

	// 1. Nothing has run: only the first ring is open.
	r, err := deploy.Status(f.ctx, f.cfg(0), "PL-gates", true)
	if err != nil {
		t.Fatal(err)
	}
	if g := gateOf(t, r, "test"); !g.Open || !g.Changed {
		t.Errorf("test gate: %+v", g.Gate)
	}
	if g := gateOf(t, r, "pilot"); g.Open || !strings.Contains(g.Reason, "0 successes in ring test, 2 required") {
		t.Errorf("pilot gate: %+v", g.Gate)
	}
	if g := gateOf(t, r, "prod"); g.Open || !strings.Contains(g.Reason, "ring pilot itself is not open") {
		t.Errorf("prod gate: %+v", g.Gate)
	}
	if ids := strings.Join(dueIDs(r), ","); ids != "t1,t2,t3" {
		t.Errorf("due %s, want t1,t2,t3", ids)
	}
	if r.Due.NotDue[deploy.NotDueGate] != 3 || r.Due.NotDue[deploy.NotDueUnsched] != 1 {
		t.Errorf("not due: %v; want 3 behind the gate, 1 unscheduled", r.Due.NotDue)
	}
	if n := f.count("SELECT count() FROM gate_decisions WHERE plan_id = 'PL-gates'"); n != 3 {
		t.Errorf("%d gate decisions, want 3 (one per ring)", n)
	}
	// 2. Evaluating again with nothing new records nothing.
	if r, err = deploy.Status(f.ctx, f.cfg(time.Minute), "PL-gates", false); err != nil {
		t.Fatal(err)
	}
	if n := f.count("SELECT count() FROM gate_decisions WHERE plan_id = 'PL-gates'"); n != 3 {
		t.Errorf("%d gate decisions after an unchanged evaluation, want 3", n)
	}
	// 3. Test ring: two successes (last 25h ago), one failure: rate 1/3 <=
	// 0.5, soak 25h >= 24h: pilot opens. t3 is due again (attempt 2 of 2).
	f.outcome("PL-gates", "t1", "t1", 1, "succeeded", 30*h, false, "")
	f.outcome("PL-gates", "t2", "t2", 1, "succeeded", 25*h, false, "")
	f.outcome("PL-gates", "t3", "t3", 1, "failed", 26*h, false, "dpkg lock held")
	if r, err = deploy.Status(f.ctx, f.cfg(2*time.Minute), "PL-gates", true); err != nil {
		t.Fatal(err)
	}
	g := gateOf(t, r, "pilot")
	if !g.Open || !g.Changed || g.Prev.Successes != 2 || g.Prev.Failures != 1 || g.Soak < 25*h || !g.Prev.LastSuccess.Equal(f.ago(25*h)) {
		t.Errorf("pilot gate after test's outcomes: %+v", g.Gate)
	}
	if g := gateOf(t, r, "prod"); g.Open || g.Changed {
		t.Errorf("prod gate: %+v (still closed, unchanged)", g.Gate)
	}
	if ids := strings.Join(dueIDs(r), ","); ids != "t3,p1" {
		t.Errorf("due %s, want t3 (retry), p1", ids)
	}
	for _, a := range r.Due.Actions {
		if a.ActionID == "t3" && (a.Attempt != 2 || a.MaxAttempts != 2 || !strings.HasPrefix(a.Why, "retry 2 of 2")) {
			t.Errorf("t3 retry: %+v", a)
		}
	}
	if r.Due.NotDue[deploy.NotDueWindow] != 1 || r.Due.NotDue[deploy.NotDueGate] != 1 {
		t.Errorf("not due: %v; want p2 before its window, q1 behind prod's gate", r.Due.NotDue)
	}
	if n := f.count("SELECT count() FROM gate_decisions WHERE plan_id = 'PL-gates'"); n != 4 {
		t.Errorf("%d gate decisions, want 4 (pilot opened)", n)
	}
	// 4. p1 rolls back: openssl 3.0.15-1 is held for group rest, so t3's
	// retry and p2 wait.
	f.outcome("PL-gates", "p1", "p1", 1, "rolled_back", 1*h, false, "service did not start")
	if r, err = deploy.Status(f.ctx, f.cfg(3*time.Minute), "PL-gates", true); err != nil {
		t.Fatal(err)
	}
	if len(r.Holds) != 1 || r.Holds[0].Fix != (deploy.Fix{Group: "rest", Ecosystem: eco, Package: "openssl", TargetVersion: "3.0.15-1"}) ||
		r.Holds[0].ActionID != "p1" || r.Holds[0].Rollbacks != 1 || !strings.Contains(r.Holds[0].Reason, "service did not start") {
		t.Fatalf("holds: %+v", r.Holds)
	}
	if len(r.Due.Actions) != 0 || r.Due.NotDue[deploy.NotDueHeld] != 3 {
		t.Errorf("due %v, not due %v; want nothing due, t3, p2 and u1 held", dueIDs(r), r.Due.NotDue)
	}
	// Evaluating again records no second hold.
	if _, err = deploy.Status(f.ctx, f.cfg(4*time.Minute), "PL-gates", false); err != nil {
		t.Fatal(err)
	}
	if n := f.count("SELECT count() FROM fix_holds FINAL WHERE event = 'hold'"); n != 1 {
		t.Errorf("%d hold rows, want 1", n)
	}
	// 5. Approval: an approver is required, it must name a held fix.
	approve := deploy.ApproveRequest{Package: "openssl", Version: "3.0.15-1", Approver: "carol", Reason: "unit file fixed"}
	if _, err := deploy.Approve(f.ctx, f.cfg(5*time.Minute), deploy.ApproveRequest{Package: "openssl", Version: "3.0.15-1"}); err == nil {
		t.Error("approval without an approver accepted")
	}
	wrong := approve
	wrong.Version = "3.0.16-1"
	if _, err := deploy.Approve(f.ctx, f.cfg(5*time.Minute), wrong); !errors.Is(err, deploy.ErrNoHold) {
		t.Errorf("approving a fix that is not held: %v", err)
	}
	wrong = approve
	wrong.Group = "prod"
	if _, err := deploy.Approve(f.ctx, f.cfg(5*time.Minute), wrong); !errors.Is(err, deploy.ErrNoHold) {
		t.Errorf("approving for a group that holds nothing: %v", err)
	}
	done, err := deploy.Approve(f.ctx, f.cfg(5*time.Minute), approve)
	if err != nil || len(done) != 1 {
		t.Fatalf("approve: %v %+v", done, err)
	}
	f.outcome("PL-gates", "t3", "t3", 2, "failed", 0, false, "dpkg lock held again")
	if r, err = deploy.Status(f.ctx, f.cfg(6*time.Minute), "PL-gates", true); err != nil {
		t.Fatal(err)
	}
	if len(r.Holds) != 0 {
		t.Errorf("holds after approval: %+v", r.Holds)
	}
	if len(r.Due.Actions) != 0 || r.Due.NotDue[deploy.NotDueExhausted] != 1 {
		t.Errorf("due %v, not due %v; want t3 failed for good", dueIDs(r), r.Due.NotDue)
	}
	// 6. A rollback after the approval holds the fix again.
	f.outcome("PL-gates", "p2", "p2", 1, "rolled_back", -6*time.Minute, false, "crash loop")
	if r, err = deploy.Status(f.ctx, f.cfg(7*time.Minute), "PL-gates", false); err != nil {
		t.Fatal(err)
	}
	if len(r.Holds) != 1 || r.Holds[0].ActionID != "p2" || r.Holds[0].Rollbacks != 2 {
		t.Errorf("holds after a second rollback: %+v", r.Holds)
	}
	// The trail has every decision: 3 first gate decisions, pilot's
	// opening, two holds and one approval.
	for action, want := range map[string]uint64{"gate.open": 2, "gate.close": 2, "fix.hold": 2, "fix.approve": 1} {
		if n := f.count("SELECT count() FROM audit_log WHERE action = ?", action); n != want {
			t.Errorf("%d audit entries %s, want %d", n, action, want)
		}
	}
	if n := f.count("SELECT count() FROM audit_log WHERE action = 'fix.approve' AND actor = 'carol'"); n != 1 {
		t.Error("the approval's audit entry does not name the approver")
	}
	if _, err := deploy.Status(f.ctx, f.cfg(0), "PL-nope", false); !errors.Is(err, deploy.ErrNotFound) {
		t.Errorf("unknown plan: %v", err)
	}
}
