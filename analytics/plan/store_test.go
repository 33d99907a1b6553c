package plan_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/exception"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func slaDays(t *testing.T, st store.Store, sev string) uint32 {
	t.Helper()
	rows, err := st.Query(context.Background(), "SELECT sla_days FROM sla_policy FINAL WHERE policy = 'default' AND severity = ?", sev)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var d uint32
	if !rows.Next() {
		t.Fatalf("no sla_policy row for %s", sev)
	}
	if err := rows.Scan(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// Policies and plans on the embedded engine (a current ClickHouse): the
// policy's SLA reaches sla_policy, a bad policy changes nothing, plans are
// immutable with history, and every export format works.
func TestPolicyAndPlanOnCHDB(t *testing.T) {
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	kpitest.Migrate(t, st)
	fleet := kpitest.Seed(t, st)
	now := fleet.Now
	auditLog := audit.New(st)

	res, err := policy.Apply(ctx, st, auditLog, "sample.yaml", policy.SampleYAML, "alice", now)
	if err != nil || !res.New || res.Version != 1 || !res.SLAWritten {
		t.Fatalf("apply sample: %+v %v", res, err)
	}
	v2 := bytes.Replace(policy.SampleYAML, []byte("critical: 15"), []byte("critical: 7"), 1)
	if res, err = policy.Apply(ctx, st, auditLog, "v2.yaml", v2, "bob", now.Add(time.Second)); err != nil || res.Version != 2 {
		t.Fatalf("apply v2: %+v %v", res, err)
	}
	if d := slaDays(t, st, "critical"); d != 7 {
		t.Errorf("sla_policy critical = %d, want the active policy's 7", d)
	}
	// A bad file: rejected with file, line and field; nothing changes.
	bad := bytes.Replace(v2, []byte("timezone: Europe/Berlin"), []byte("timezone: Mars/Olympus"), 1)
	_, err = policy.Apply(ctx, st, auditLog, "bad.yaml", bad, "eve", now.Add(2*time.Second))
	var perr *policy.Error
	if !errors.As(err, &perr) || perr.File != "bad.yaml" || perr.Line != 25 || perr.Field != "groups[1].windows[0].timezone" {
		t.Fatalf("bad policy: %v", err)
	}
	act, err := policy.Active(ctx, st)
	if err != nil || act.Version != 2 || act.ActivatedBy != "bob" {
		t.Fatalf("active after a rejected apply: %+v %v", act, err)
	}
	if d := slaDays(t, st, "critical"); d != 7 {
		t.Errorf("sla_policy critical = %d after a rejected apply", d)
	}
	// Re-applying v1's content re-activates version 1, adds no version.
	if res, err = policy.Apply(ctx, st, auditLog, "sample.yaml", policy.SampleYAML, "carol", now.Add(3*time.Second)); err != nil || res.New || res.Version != 1 {
		t.Fatalf("re-apply: %+v %v", res, err)
	}
	if hist, _ := policy.History(ctx, st); len(hist) != 3 || hist[2].ActivatedBy != "carol" {
		t.Errorf("history %+v", hist)
	}
	kpitest.Refresh(t, st) // the snapshot's deadlines follow sla_policy

	// Open findings: h2 pkga (A1 critical, KEV), h2 pkgb (A2 high), h3
	// pkgd (A4 low), all fixed in 2.0.
	p, err := plan.Create(ctx, st, plan.CreateOptions{At: now, Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Actions != 3 || p.PolicyVersion != 1 || p.Findings != 3 {
		t.Fatalf("plan: %d actions, policy %d, findings %d", p.Actions, p.PolicyVersion, p.Findings)
	}
	first := firstAction(t, st, p.ID)
	if first.HostID != "h2" || first.Package != "pkga" || !first.Emergency || !first.ApprovalRequired ||
		first.TargetVersion != "2.0" || first.Wave != 1 || first.Status == plan.Unscheduled {
		t.Errorf("first action: %+v", first)
	}
	// A tag selector makes the planner read the hosts' tags (none here:
	// every host falls to the implicit default group).
	tagged, err := policy.Parse("tags.yaml", []byte("sla:\n  days: {critical: 15, high: 30, medium: 90, low: 180}\ngroups:\n  - {name: pci, select: {tags: [pci]}, windows: [{days: [mon], start: \"01:00\", duration: 1h}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := plan.Create(ctx, st, plan.CreateOptions{At: now, Actor: "alice", Policy: tagged})
	if err != nil || pt.Actions != 3 || firstAction(t, st, pt.ID).Group != "default" {
		t.Fatalf("plan with a tag selector: %v %+v", err, pt)
	}
	p2, err := plan.Create(ctx, st, plan.CreateOptions{At: now.Add(time.Hour), Actor: "bob", Scope: risk.Filter{Ring: "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := plan.List(ctx, st, 10, 0)
	if err != nil || len(list) != 3 || list[0].ID != p2.ID || !list[0].Current || list[1].Current || list[0].Actions != 2 {
		t.Fatalf("plans: %+v %v", list, err)
	}
	cur, err := plan.Get(ctx, st, "")
	if err != nil || cur.ID != p2.ID {
		t.Fatalf("current plan %+v %v", cur, err)
	}
	// The documented views agree with the plan.
	rows, err := st.Query(ctx, "SELECT count(), sum(emergency) FROM plan_actions_current")
	if err != nil {
		t.Fatal(err)
	}
	var n, em uint64
	if !rows.Next() || rows.Scan(&n, &em) != nil || n != 2 || em != 1 {
		t.Errorf("plan_actions_current: %d actions, %d emergency", n, em)
	}
	rows.Close()
	fixes, err := plan.Fixes(ctx, st, p.ID, 10)
	if err != nil || len(fixes) != 3 || fixes[0].Package != "pkga" || fixes[0].KEVAdvisories != 1 {
		t.Errorf("fixes %+v %v", fixes, err)
	}

	var buf bytes.Buffer
	if n, err := plan.Export(ctx, st, p.ID, risk.Filter{}, "json", &buf); err != nil || n != 3 {
		t.Fatalf("json export: %d %v", n, err)
	}
	line, _, _ := strings.Cut(buf.String(), "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"plan_id", "action_id", "host_id", "hostname", "ecosystem", "package", "installed_version", "target_version",
		"advisories", "ring", "wave", "window_start", "window_end", "emergency", "deadline", "risk_reduction"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("json export lacks %s: %s", k, line)
		}
	}
	if rec["action_id"] != first.ActionID || rec["emergency"] != true {
		t.Errorf("first json line %s", line)
	}
	buf.Reset()
	if _, err := plan.Export(ctx, st, p.ID, risk.Filter{}, "ansible", &buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "wave_1:") || !strings.Contains(buf.String(), `"h2.example":`) || !strings.Contains(buf.String(), `"pkga=2.0"`) {
		t.Errorf("ansible inventory:\n%s", buf.String())
	}
	// Every activation is in the audit trail, which still verifies.
	rep, err := auditLog.Verify(ctx, audit.VerifyOptions{})
	if err != nil || rep.Broken != nil || rep.Entries != 3 {
		t.Errorf("audit trail after three activations: %+v %v", rep, err)
	}
	for _, f := range []string{"csv", "parquet", "arrow"} {
		buf.Reset()
		if n, err := plan.Export(ctx, st, p.ID, risk.Filter{KEV: ptr(true)}, f, &buf); err != nil || n != 1 || buf.Len() == 0 {
			t.Errorf("%s export: %d rows, %d bytes, %v", f, n, buf.Len(), err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// firstAction reads the action ranked first of plan id.
func firstAction(t *testing.T, st store.Store, id string) plan.Action {
	t.Helper()
	rows, err := st.Query(context.Background(), `SELECT action_id, host_id, package, emergency, approval_required, target_version, wave, status, group_name
		FROM plan_actions WHERE plan_id = ? ORDER BY rank LIMIT 1`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var a plan.Action
	var em, appr uint8
	if !rows.Next() {
		t.Fatalf("plan %s has no action", id)
	}
	if err := rows.Scan(&a.ActionID, &a.HostID, &a.Package, &em, &appr, &a.TargetVersion, &a.Wave, &a.Status, &a.Group); err != nil {
		t.Fatal(err)
	}
	a.Emergency, a.ApprovalRequired = em != 0, appr != 0
	return a
}

// The 2018 server stores policies; plans refuse with its version.
func TestPolicyOnOldServer(t *testing.T) {
	st := testenv.ServerStore(t)
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	res, err := policy.Apply(ctx, st, audit.New(st), "sample.yaml", policy.SampleYAML, "alice", time.Now())
	if err != nil || res.Version != 1 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	if schemas.RequireAnalytics(ctx, st) == nil {
		t.Skip("this server runs the analytics: nothing old to check")
	}
	act, err := policy.Active(ctx, st)
	if err != nil || act.Version != 1 || act.ActivatedBy != "alice" {
		t.Fatalf("active: %+v %v", act, err)
	}
	if res.SLAWritten {
		t.Errorf("SLA written on a server without sla_policy")
	}
	_, err = plan.Create(ctx, st, plan.CreateOptions{Actor: "alice"})
	if err == nil || !strings.Contains(err.Error(), "older than") {
		t.Fatalf("plan create on the old server: %v", err)
	}
}

// Exceptions in plans (issue 14): a finding an approved exception covers
// gets no action and is listed; once the exception has expired at the
// plan's time, the next plan acts on it again.
func TestExceptionsInPlansOnCHDB(t *testing.T) {
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	kpitest.Migrate(t, st)
	fleet := kpitest.Seed(t, st)
	kpitest.Refresh(t, st)
	log := audit.New(st)
	book := exception.New(st, log, exception.Config{})
	ex, err := book.Request(ctx, exception.Request{Advisory: "CVE-2024-0002", Host: "h2", Owner: "bob", Reason: "vendor patch breaks the app",
		Requester: "bob", ExpiresIn: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Requested only: not honoured.
	p, err := plan.Create(ctx, st, plan.CreateOptions{At: fleet.Now, Actor: "alice"})
	if err != nil || p.Actions != 3 || p.Excepted != 0 {
		t.Fatalf("plan with a requested exception: %+v %v", p, err)
	}
	if _, err := book.Approve(ctx, ex.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	p, err = plan.Create(ctx, st, plan.CreateOptions{At: fleet.Now, Actor: "alice"})
	if err != nil || p.Actions != 2 || p.Excepted != 1 || p.Findings != 3 {
		t.Fatalf("plan with an approved exception: %+v %v", p, err)
	}
	rows, err := st.Query(ctx, "SELECT host_id, package, advisory, exception_id FROM plan_excepted WHERE plan_id = ?", p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var host, pkg, adv, id string
	if !rows.Next() || rows.Scan(&host, &pkg, &adv, &id) != nil || host != "h2" || pkg != "pkgb" || adv != "osv/A2" || id != ex.ID {
		t.Errorf("plan_excepted: %s %s %s %s", host, pkg, adv, id)
	}
	rows.Close()
	if s, err := plan.Get(ctx, st, p.ID); err != nil || s.Excepted != 1 {
		t.Errorf("summary: %+v %v", s, err)
	}
	n, err := plan.Export(ctx, st, p.ID, risk.Filter{}, "json", io.Discard)
	if err != nil || n != 2 {
		t.Errorf("export: %d %v", n, err)
	}
	// Past the exception's expiry, the plan acts on the finding again.
	p, err = plan.Create(ctx, st, plan.CreateOptions{At: fleet.Now.Add(31 * 24 * time.Hour), Actor: "alice"})
	if err != nil || p.Actions != 3 || p.Excepted != 0 {
		t.Fatalf("plan after the exception expired: %+v %v", p, err)
	}
}
