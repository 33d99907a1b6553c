package deploy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// fixturePolicy: three rings with gates, windows for group prod only, two
// attempts, a 26-hour verification window.
const fixturePolicy = `name: deploy-test
sla:
  days: {critical: 15, high: 30, medium: 90, low: 180}
groups:
  - name: prod
    select: {ring: prod}
    windows:
      - {days: [sat], start: "01:00", duration: 6h, timezone: UTC}
  - name: rest
    select: {}
rings:
  - name: test
    gate: {min_soak: 24h, max_failure_rate: 0.5, min_successes: 2}
  - name: pilot
    gate: {min_soak: 48h, max_failure_rate: 0.1, min_successes: 1}
  - name: prod
deployment: {verification_window: 26h, max_attempts: 2}
`

const eco = "Debian:12"

// fixture is a store with the fixture policy applied and helpers to add
// plans, actions, outcomes and scans at times relative to now.
type fixture struct {
	t     *testing.T
	st    store.Store
	ctx   context.Context
	now   time.Time
	audit *audit.Log
	pol   *policy.Policy
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	f := &fixture{t: t, st: st, ctx: context.Background(), now: time.Now().UTC().Truncate(time.Second), audit: audit.New(st)}
	if _, err := policy.Apply(f.ctx, st, f.audit, "deploy-test.yaml", []byte(fixturePolicy), "alice", f.now.Add(-30*24*time.Hour)); err != nil {
		t.Fatalf("apply policy: %v", err)
	}
	var err error
	if f.pol, err = policy.Parse("deploy-test.yaml", []byte(fixturePolicy)); err != nil {
		t.Fatal(err)
	}
	// Advisories: ADV-1 on openssl (fixed 3.0.15-1), ADV-2 on the kernel
	// (source linux, fixed 6.1.112-1).
	f.ins("advisories", []string{"source", "advisory_id", "record_hash", "withdrawn", "severity", "loaded_at"}, [][]any{
		{"osv", "ADV-1", "r1", uint8(0), "high", f.now},
		{"osv", "ADV-2", "r2", uint8(0), "critical", f.now},
	})
	f.ins("affected_ranges", []string{"source", "advisory_id", "record_hash", "ecosystem", "package", "range_idx", "status",
		"comparator", "introduced", "introduced_key", "fixed", "fixed_key"}, [][]any{
		{"osv", "ADV-1", "r1", eco, "openssl", uint16(0), "affected", "dpkg", "0", f.key("0"), "3.0.15-1", f.key("3.0.15-1")},
		{"osv", "ADV-2", "r2", eco, "linux", uint16(0), "affected", "dpkg", "0", f.key("0"), "6.1.112-1", f.key("6.1.112-1")},
	})
	// Inventories: vuln (openssl 3.0.11-1, ADV-1 open), fixed (openssl
	// 3.0.15-1), kern (the old kernel image with ADV-2 and the new one).
	pkg := func(inv, name, ver, src, srcVer string) []any {
		return []any{inv, eco, name, ver, "amd64", src, srcVer, src, srcVer, f.key(srcVer), "", ""}
	}
	f.ins("inventory_packages", []string{"inventory_hash", "ecosystem", "name", "version", "arch", "source_name", "source_version",
		"match_name", "match_version", "v_key", "purl", "location"}, [][]any{
		pkg("inv-vuln", "openssl", "3.0.11-1", "openssl", "3.0.11-1"),
		pkg("inv-fixed", "openssl", "3.0.15-1", "openssl", "3.0.15-1"),
		pkg("inv-kern", "linux-image-6.1.0-25-amd64", "6.1.106-3", "linux", "6.1.106-3"),
		pkg("inv-kern", "linux-image-6.1.0-26-amd64", "6.1.112-1", "linux", "6.1.112-1"),
	})
	finding := func(inv, name, ver, src, srcVer, adv, rec, fixed string) []any {
		return []any{inv, eco, name, ver, "amd64", "", src, srcVer, f.key(srcVer), "osv", adv, rec, uint16(0), "ECOSYSTEM",
			"affected", "dpkg", "0", fixed, "", f.now, f.now, "run-1"}
	}
	f.ins("match_inventory_findings", []string{"inventory_hash", "ecosystem", "name", "version", "arch", "location", "match_name",
		"match_version", "v_key", "source", "advisory_id", "record_hash", "range_idx", "range_type", "status", "comparator",
		"introduced", "fixed", "last_affected", "fix_published", "matched_at", "run_id"}, [][]any{
		finding("inv-vuln", "openssl", "3.0.11-1", "openssl", "3.0.11-1", "ADV-1", "r1", "3.0.15-1"),
		finding("inv-kern", "linux-image-6.1.0-25-amd64", "6.1.106-3", "linux", "6.1.106-3", "ADV-2", "r2", "6.1.112-1"),
	})
	return f
}

func (f *fixture) key(v string) string {
	k, err := version.Key(eco, v)
	if err != nil {
		f.t.Fatalf("key %s: %v", v, err)
	}
	return k
}

func (f *fixture) ins(table string, cols []string, rows [][]any) {
	f.t.Helper()
	if err := f.st.Insert(f.ctx, table, cols, rows); err != nil {
		f.t.Fatalf("insert %s: %v", table, err)
	}
}

// ago is now minus d.
func (f *fixture) ago(d time.Duration) time.Time { return f.now.Add(-d) }

const h = time.Hour

// act is one action of a fixture plan.
type act struct {
	id, host, ring, group, pkg, target string
	windowStart                        time.Duration // from now (negative: started)
	unscheduled, emergency             bool
	advisories                         []string
}

// writePlan stores plan id (policy version 1, created 10 days ago) with
// the actions, as the planner writes them (0008's columns); defaults:
// openssl to 3.0.15-1 closing ADV-1, group rest, ring test, a 4-hour
// window.
func (f *fixture) writePlan(id string, acts []act) {
	f.t.Helper()
	f.writePlanVersion(id, 1, acts)
}

func (f *fixture) writePlanVersion(id string, policyVersion uint32, acts []act) {
	f.t.Helper()
	created := f.ago(240 * h)
	var rows [][]any
	for i, a := range acts {
		group, ring, pkg, target, advs := a.group, a.ring, a.pkg, a.target, a.advisories
		if group == "" {
			group = "rest"
		}
		if ring == "" {
			ring = "test"
		}
		if pkg == "" {
			pkg, target = "openssl", "3.0.15-1"
		}
		if advs == nil {
			advs = []string{"osv/ADV-1"}
		}
		status, reason := plan.Scheduled, "fixture"
		ws, we := f.now.Add(a.windowStart), f.now.Add(a.windowStart+4*h)
		if a.unscheduled {
			status, reason, ws, we = plan.Unscheduled, "change freeze year-end covers every window", time.Unix(0, 0).UTC(), time.Unix(0, 0).UTC()
		}
		em := uint8(0)
		if a.emergency {
			em = 1
		}
		rows = append(rows, []any{id, a.id, uint32(i + 1), a.host, a.host, "ops", "debian", group, eco, pkg, "3.0.11-1", target,
			advs, uint32(0), []string{}, 10.0, f.now.Add(100 * h), ring, uint32(1), ws, we, em, uint8(0), status, reason, "high"})
	}
	if len(rows) > 0 {
		f.ins("plan_actions", []string{"plan_id", "action_id", "rank", "host_id", "hostname", "owner", "os", "group_name",
			"ecosystem", "package", "installed_version", "target_version", "advisories", "kev_advisories", "kev_ids", "risk_reduction",
			"deadline", "ring", "wave", "window_start", "window_end", "emergency", "approval_required", "status", "reason", "severity"}, rows)
	}
	f.ins("plans", []string{"plan_id", "created_at", "created_by", "plan_at", "horizon_end", "policy_version", "hosts", "actions",
		"scheduled", "late", "unscheduled", "emergency", "waves", "findings", "no_fix", "risk_reduction"},
		[][]any{{id, created, "alice", created, f.now.Add(240 * h), policyVersion, uint64(len(acts)), uint64(len(acts)),
			uint64(len(acts)), uint64(0), uint64(0), uint64(0), uint32(1), uint64(0), uint64(0), 0.0}})
}

// outcome records attempt n of action id on host with status, finished
// `finished` ago.
func (f *fixture) outcome(planID, id, host string, n uint32, status string, finished time.Duration, reboot bool, errText string) {
	f.t.Helper()
	rb := uint8(0)
	if reboot {
		rb = 1
	}
	f.ins("outcomes", []string{"plan_id", "action_id", "attempt", "host_id", "package", "from_version", "to_version", "status",
		"started_at", "finished_at", "error", "reboot_required", "received_at"}, [][]any{
		{planID, id, n, host, "openssl", "3.0.11-1", "3.0.15-1", status, f.ago(finished + 10*time.Minute), f.ago(finished), errText, rb, f.ago(finished)},
	})
}

// scan records a scan of host `at` ago with inventory inv and running
// kernel.
func (f *fixture) scan(host string, at time.Duration, inv, kernel string) {
	f.t.Helper()
	f.ins("scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_ecosystem", "kernel_running",
		"inventory_hash", "ring"}, [][]any{
		{host, fmt.Sprintf("%s-%d", host, int(at.Seconds())), f.ago(at), f.ago(at), host, eco, kernel, inv, "test"},
	})
}
