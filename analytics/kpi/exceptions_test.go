package kpi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// exc is one version of an exceptions row (0011).
type exc struct {
	id, advisory, scope, host, pkg, selRing string
	status                                  string
	version                                 uint32
	expires                                 time.Time
}

func insertExceptions(t *testing.T, st store.Store, now time.Time, xs ...exc) {
	t.Helper()
	var rows [][]any
	for _, x := range xs {
		selCrit, selInet := int16(-1), int8(-1)
		rows = append(rows, []any{x.id, x.version, x.advisory, x.scope, x.host, x.pkg, x.selRing, selCrit, selInet,
			"owner-" + x.id, "accepted for the test", "alice", "bob", x.status, now.Add(-time.Hour), now.Add(-time.Minute), x.expires, now})
	}
	if err := st.Insert(context.Background(), "exceptions", []string{"exception_id", "version", "advisory", "scope", "host", "package",
		"sel_ring", "sel_criticality", "sel_internet_facing", "owner", "reason", "requester", "approver", "status",
		"requested_at", "decided_at", "expires_at", "updated_at"}, rows); err != nil {
		t.Fatal(err)
	}
}

// findingRows reads finding_risk keyed by host/advisory/package.
func findingRows(t *testing.T, st store.Store) map[string]map[string]any {
	t.Helper()
	r, err := st.Query(context.Background(), "SELECT * FROM finding_risk")
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := export.ReadTable(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, m := range tbl.Records() {
		out[fmt.Sprint(m["host_id"], "/", m["advisory_id"], "/", m["package"])] = m
	}
	return out
}

func hostRow(t *testing.T, st store.Store, host string) map[string]any {
	t.Helper()
	tbl, ok, err := risk.Host(context.Background(), st, host)
	if err != nil || !ok {
		t.Fatalf("host %s: ok %v, %v", host, ok, err)
	}
	return tbl.Records()[0]
}

func both(t *testing.T, st store.Store, name string, q Query) (honoured, ignored *export.Table) {
	t.Helper()
	q.Exceptions = risk.ExceptionsHonoured
	honoured = run(t, st, name, q)
	q.Exceptions = risk.ExceptionsIgnored
	return honoured, run(t, st, name, q)
}

// TestKPIsWithAndWithoutExceptions works every KPI out by hand on the known
// fleet (kpitest.Seed) with two approved exceptions, h2/A2 (host scope, by
// CVE) and A1 on package pkga (package scope), which cover both open
// exposures of h2, both overdue, and three that must not count: a group
// selector of another ring, a package exception naming another package,
// and a request nobody approved. Read honoured, h2's exposures are
// accepted; read ignored, the figures are those without exceptions. Then
// the host exception expires: h2/A2 comes back overdue with its original
// first_seen and deadline.
func TestKPIsWithAndWithoutExceptions(t *testing.T) {
	st, fleet := seeded(t)
	nan := math.NaN()
	ctx := context.Background()
	before := findingRows(t, st)["h2/A2/pkgb"]
	if before == nil {
		t.Fatal("no finding h2/A2/pkgb")
	}
	insertExceptions(t, st, fleet.Now,
		exc{id: "EX-000000000001", advisory: "CVE-2024-0002", scope: "host", host: "h2", status: "approved", version: 2, expires: fleet.Day(-10)},
		exc{id: "EX-000000000002", advisory: "A1", scope: "package", pkg: "pkga", status: "approved", version: 2, expires: fleet.Day(-20)},
		exc{id: "EX-000000000003", advisory: "CVE-2024-0004", scope: "group", selRing: "prod", status: "approved", version: 2, expires: fleet.Day(-10)},
		exc{id: "EX-000000000004", advisory: "A4", scope: "package", pkg: "pkgz", status: "approved", version: 2, expires: fleet.Day(-10)},
		exc{id: "EX-000000000005", advisory: "A4", scope: "host", host: "h3.example", status: "requested", version: 1, expires: fleet.Day(-10)},
	)
	kpitest.Refresh(t, st)

	t.Run("sla_compliance", func(t *testing.T) {
		h, i := both(t, st, "sla_compliance", Query{Severity: "all"})
		check(t, row(t, h, map[string]any{}), map[string]float64{"exposures": 6, "met": 3, "overdue": 0, "open_in_sla": 1, "accepted": 2, "stale": 0, "compliance_pct": 100})
		check(t, row(t, i, map[string]any{}), map[string]float64{"exposures": 6, "met": 3, "overdue": 2, "open_in_sla": 1, "accepted": 0, "stale": 0, "compliance_pct": 60})
		h, _ = both(t, st, "sla_compliance", Query{Severity: "critical"})
		check(t, row(t, h, map[string]any{}), map[string]float64{"met": 1, "overdue": 0, "accepted": 1, "compliance_pct": 100})
	})
	t.Run("patch_coverage", func(t *testing.T) {
		h, i := both(t, st, "patch_coverage", Query{})
		check(t, row(t, h, map[string]any{}), map[string]float64{"hosts": 4, "hosts_overdue": 0, "hosts_accepted": 1, "stale_hosts": 0, "coverage_pct": 100})
		check(t, row(t, i, map[string]any{}), map[string]float64{"hosts": 4, "hosts_overdue": 1, "hosts_accepted": 0, "coverage_pct": 75})
	})
	t.Run("open_exposure", func(t *testing.T) {
		h, i := both(t, st, "open_exposure", Query{})
		check(t, row(t, h, map[string]any{"severity": "critical"}), map[string]float64{"open_exposures": 0, "hosts": 0, "advisories": 0, "accepted": 1})
		check(t, row(t, h, map[string]any{"severity": "high"}), map[string]float64{"open_exposures": 0, "accepted": 1})
		check(t, row(t, h, map[string]any{"severity": "low"}), map[string]float64{"open_exposures": 1, "accepted": 0})
		check(t, row(t, i, map[string]any{"severity": "critical"}), map[string]float64{"open_exposures": 1, "hosts": 1, "accepted": 0})
	})
	t.Run("mttr_and_time_to_patch", func(t *testing.T) {
		// Over resolved exposures: both readings agree; accepted counts
		// the open ones an exception covers.
		h, i := both(t, st, "mttr", Query{Severity: "all"})
		check(t, row(t, h, map[string]any{}), map[string]float64{"resolved": 3, "mttr_days": 33, "median_days": 35, "accepted": 2})
		check(t, row(t, i, map[string]any{}), map[string]float64{"resolved": 3, "mttr_days": 33, "median_days": 35, "accepted": 0})
		h, i = both(t, st, "time_to_patch", Query{Severity: "all"})
		check(t, row(t, h, map[string]any{}), map[string]float64{"resolved": 3, "from_publication_avg_days": 53, "accepted": 2})
		check(t, row(t, i, map[string]any{}), map[string]float64{"resolved": 3, "from_publication_avg_days": 53, "accepted": 0})
	})
	t.Run("remediation_rate", func(t *testing.T) {
		h, i := both(t, st, "remediation_rate", Query{})
		check(t, row(t, h, map[string]any{"risk_level": "critical"}), map[string]float64{"exposures": 1, "resolved": 1, "open": 0, "accepted": 1, "remediation_rate_pct": 100, "remediation_rate_30d_pct": nan})
		check(t, row(t, i, map[string]any{"risk_level": "critical"}), map[string]float64{"exposures": 2, "resolved": 1, "open": 1, "accepted": 0, "remediation_rate_pct": 50, "remediation_rate_30d_pct": 0})
		check(t, row(t, h, map[string]any{"risk_level": "medium"}), map[string]float64{"exposures": 1, "open": 0, "accepted": 1, "remediation_rate_30d_pct": 100})
	})
	t.Run("exposure_window", func(t *testing.T) {
		h, i := both(t, st, "exposure_window", Query{Severity: "all"})
		check(t, row(t, h, map[string]any{"state": "all"}), map[string]float64{"exposures": 6, "accepted": 2, "p50_days": 45})
		check(t, row(t, h, map[string]any{"state": "open"}), map[string]float64{"exposures": 1, "p50_days": 150})
		check(t, row(t, h, map[string]any{"state": "accepted"}), map[string]float64{"exposures": 2, "accepted": 2, "p50_days": 45})
		check(t, row(t, i, map[string]any{"state": "open"}), map[string]float64{"exposures": 3, "p50_days": 45, "accepted": 0})
	})
	t.Run("daily_trend", func(t *testing.T) {
		d := fleet.Day(45)
		day := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
		h, i := both(t, st, "daily_trend", Query{Severity: "all"})
		check(t, row(t, h, map[string]any{"day": day}), map[string]float64{"opened": 4, "open_at_end": 5, "accepted": 2})
		check(t, row(t, i, map[string]any{"day": day}), map[string]float64{"opened": 4, "open_at_end": 5, "accepted": 0})
	})
	t.Run("findings_marked_never_hidden", func(t *testing.T) {
		f := findingRows(t, st)
		if len(f) != 3 {
			t.Fatalf("%d findings, want 3 (accepted ones included): %v", len(f), f)
		}
		for key, want := range map[string]string{"h2/A1/pkga": "EX-000000000002", "h2/A2/pkgb": "EX-000000000001", "h3/A4/pkgd": ""} {
			if got := f[key]["exception_id"]; got != want {
				t.Errorf("%s: exception_id %v, want %q", key, got, want)
			}
			if acc := fmt.Sprint(f[key]["accepted"]); acc != map[bool]string{true: "1", false: "0"}[want != ""] {
				t.Errorf("%s: accepted %s", key, acc)
			}
		}
		// Ranking: accepted findings after every unaccepted one when
		// honoured; by risk alone when ignored.
		first := func(exc string) string {
			rows, err := risk.Findings(ctx, st, risk.Filter{Exceptions: exc}, &risk.Page{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			tbl, err := export.ReadTable(rows, 0)
			if err != nil {
				t.Fatal(err)
			}
			r := tbl.Records()[0]
			return fmt.Sprint(r["host_id"], "/", r["advisory_id"])
		}
		if got := first(""); got != "h3/A4" {
			t.Errorf("honoured: first finding %s, want the only unaccepted one h3/A4", got)
		}
		if got := first(risk.ExceptionsIgnored); got != "h2/A1" {
			t.Errorf("ignored: first finding %s, want the riskiest h2/A1", got)
		}
		h2 := hostRow(t, st, "h2")
		check(t, h2, map[string]float64{"open_exposures": 2, "overdue": 2, "accepted_exposures": 2, "host_risk_unaccepted": 0})
		if num(t, h2, "host_risk") <= 0 {
			t.Errorf("h2 host_risk %v: the reading without exceptions keeps the risk", h2["host_risk"])
		}
		n, err := risk.CountFindings(ctx, st, risk.Filter{}, "overdue")
		if err != nil || n != 0 {
			t.Errorf("overdue findings honoured: %d, %v; want 0", n, err)
		}
		n, err = risk.CountFindings(ctx, st, risk.Filter{Exceptions: risk.ExceptionsIgnored}, "overdue")
		if err != nil || n != 2 {
			t.Errorf("overdue findings ignored: %d, %v; want 2", n, err)
		}
		n, err = risk.CountFindings(ctx, st, risk.Filter{}, "accepted")
		if err != nil || n != 2 {
			t.Errorf("accepted findings: %d, %v; want 2", n, err)
		}
	})
	t.Run("finding_exceptions", func(t *testing.T) {
		r, err := st.Query(ctx, "SELECT host_id, advisory_id, package, exception_id FROM finding_exceptions ORDER BY exception_id")
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := export.ReadTable(r, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(tbl.Rows); got != "[[h2 A2 pkgb EX-000000000001] [h2 A1 pkga EX-000000000002]]" {
			t.Errorf("finding_exceptions: %s", got)
		}
	})

	// The host exception expires (approved, expires_at passed): after the
	// next refresh h2/A2 is overdue again, with its original clock.
	insertExceptions(t, st, fleet.Now.Add(time.Second),
		exc{id: "EX-000000000001", advisory: "CVE-2024-0002", scope: "host", host: "h2", status: "approved", version: 3, expires: time.Now().UTC().Add(-time.Hour).Truncate(time.Second)})
	kpitest.Refresh(t, st)
	t.Run("expiry_restores_history", func(t *testing.T) {
		after := findingRows(t, st)["h2/A2/pkgb"]
		for _, col := range []string{"first_seen", "clock_start", "sla_deadline", "sla_state"} {
			if fmt.Sprint(after[col]) != fmt.Sprint(before[col]) {
				t.Errorf("%s after expiry %v, before the exception %v", col, after[col], before[col])
			}
		}
		if after["sla_state"] != "overdue" || after["exception_id"] != "" || fmt.Sprint(after["accepted"]) != "0" {
			t.Errorf("h2/A2 after expiry: state %v, exception %q, accepted %v", after["sla_state"], after["exception_id"], after["accepted"])
		}
		if d := math.Abs(num(t, after, "days_past_sla") - num(t, before, "days_past_sla")); d > tol {
			t.Errorf("days_past_sla after expiry %v, before %v", after["days_past_sla"], before["days_past_sla"])
		}
		h, i := both(t, st, "sla_compliance", Query{Severity: "all"})
		check(t, row(t, h, map[string]any{}), map[string]float64{"overdue": 1, "accepted": 1, "compliance_pct": 75})
		check(t, row(t, i, map[string]any{}), map[string]float64{"overdue": 2, "accepted": 0, "compliance_pct": 60})
	})
}

// TestStaleAndEndOfLife adds h5 to the known fleet: Debian 10 (past its end
// of life, 2024-06-30), scanned -20 and -10 days with inventory inv-a, so
// stale (10 days > 72 hours), with A1 (KEV: overdue), A2 (due in 10 days)
// and its end-of-life exposure (high: due 30 days after -20, in 10 days).
func TestStaleAndEndOfLife(t *testing.T) {
	st, fleet := seeded(t)
	ctx := context.Background()
	var scans [][]any
	for _, d := range []int{20, 10} {
		at := fleet.Day(d)
		scans = append(scans, []any{"h5", fmt.Sprintf("h5-%d", d), at, at, "h5.example", "debian", "10", "Debian:10", "inv-a", "carol", "prod", uint8(1), uint8(0)})
	}
	if err := st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_id", "os_version", "os_ecosystem",
		"inventory_hash", "owner", "ring", "criticality", "internet_facing"}, scans); err != nil {
		t.Fatal(err)
	}
	kpitest.Refresh(t, st)

	for _, exc := range risk.Exceptions {
		q := Query{Severity: "all", Exceptions: exc}
		check(t, row(t, run(t, st, "sla_compliance", q), map[string]any{}), map[string]float64{
			"exposures": 9, "met": 3, "overdue": 2, "open_in_sla": 1, "stale": 3, "stale_hosts": 1, "compliance_pct": 37.5})
		q.Severity = "high" // h1/A2 met, h2/A2 overdue, h5/A2 and h5's end of life stale
		check(t, row(t, run(t, st, "sla_compliance", q), map[string]any{}), map[string]float64{
			"exposures": 4, "met": 1, "overdue": 1, "open_in_sla": 0, "stale": 2, "stale_hosts": 1, "compliance_pct": 25})
		cov := run(t, st, "patch_coverage", Query{Exceptions: exc})
		check(t, row(t, cov, map[string]any{}), map[string]float64{"hosts": 5, "hosts_overdue": 1, "stale_hosts": 1, "coverage_pct": 60})
		prod := run(t, st, "patch_coverage", Query{Dimension: "ring", Value: "prod", Exceptions: exc})
		check(t, row(t, prod, map[string]any{}), map[string]float64{"hosts": 3, "hosts_overdue": 1, "stale_hosts": 1, "coverage_pct": 100.0 / 3})
		open := run(t, st, "open_exposure", Query{Exceptions: exc})
		check(t, row(t, open, map[string]any{"severity": "high", "epss_band": "none"}), map[string]float64{"open_exposures": 1, "stale": 1, "stale_hosts": 1})
		check(t, row(t, open, map[string]any{"severity": "critical"}), map[string]float64{"open_exposures": 2, "hosts": 2, "stale": 1})
	}

	f := findingRows(t, st)
	eol := f["h5/EOL-Debian:10/Debian:10"]
	if eol == nil {
		t.Fatalf("no end-of-life finding for h5: %v", f)
	}
	want := map[string]string{"source": "endoflife.date", "severity": "high", "severity_source": "endoflife.date:https://endoflife.date/debian",
		"ecosystem": "Debian:10", "status": "end_of_life", "installed_version": "", "fixed_version": "", "stale": "1", "accepted": "0",
		"published": "2024-06-30T00:00:00Z", "first_seen": fleet.Day(20).Format(time.RFC3339), "sla_state": "open"}
	for col, w := range want {
		if got := fmt.Sprint(eol[col]); got != w {
			t.Errorf("end-of-life finding %s = %q, want %q", col, got, w)
		}
	}
	if fmt.Sprint(f["h5/A1/pkga"]["stale"]) != "1" {
		t.Errorf("h5/A1 stale = %v", f["h5/A1/pkga"]["stale"])
	}
	check(t, hostRow(t, st, "h5"), map[string]float64{"stale": 1, "open_exposures": 3})

	// The export carries it, stale, with the new columns last.
	var buf bytes.Buffer
	if _, err := risk.Export(ctx, st, risk.Filter{HostID: "h5"}, "json", &buf, 0); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if m["advisory_id"] == "EOL-Debian:10" {
			found = true
			if m["stale"] != true || m["accepted"] != false || m["exception_id"] != "" || m["status"] != "end_of_life" || m["severity"] != "high" {
				t.Errorf("exported end-of-life finding %v", m)
			}
		}
	}
	if !found {
		t.Errorf("export of h5 has no end-of-life finding: %s", buf.String())
	}

	// A longer stale limit (30 days) makes h5 current: its exposures count
	// as overdue (A1) and open in SLA (A2, end of life), the host as
	// overdue.
	if err := SetStaleAfter(ctx, st, 30*24*time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	kpitest.Refresh(t, st)
	check(t, row(t, run(t, st, "sla_compliance", Query{Severity: "all"}), map[string]any{}), map[string]float64{
		"exposures": 9, "met": 3, "overdue": 3, "open_in_sla": 3, "stale": 0, "stale_hosts": 0, "compliance_pct": 50})
	check(t, row(t, run(t, st, "patch_coverage", Query{}), map[string]any{}), map[string]float64{"hosts": 5, "hosts_overdue": 2, "stale_hosts": 0, "coverage_pct": 60})
	if err := SetStaleAfter(ctx, st, 0, time.Now()); err == nil {
		t.Error("a zero stale limit: want an error")
	}
}

// The views' default stale limit is the summary's and the API's.
func TestDefaultStaleAfter(t *testing.T) {
	if DefaultStaleAfter != match.DefaultStaleAfter {
		t.Errorf("kpi.DefaultStaleAfter %s, match.DefaultStaleAfter %s", DefaultStaleAfter, match.DefaultStaleAfter)
	}
	st, _ := seeded(t)
	var hours float64
	r, err := st.Query(context.Background(), "SELECT stale_after_hours FROM kpi_stale_limit")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatal("kpi_stale_limit has no row")
	}
	if err := r.Scan(&hours); err != nil {
		t.Fatal(err)
	}
	if time.Duration(hours*float64(time.Hour)) != DefaultStaleAfter {
		t.Errorf("kpi_settings stale_after_hours %v, want %s", hours, DefaultStaleAfter)
	}
}
