package kpi

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// row finds the one row of t whose columns equal want (compared as text).
func row(t *testing.T, tbl *export.Table, want map[string]any) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, r := range tbl.Records() {
		ok := true
		for k, v := range want {
			if fmt.Sprint(r[k]) != fmt.Sprint(v) {
				ok = false
				break
			}
		}
		if ok {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d rows match %v in %v", len(found), want, tbl.Records())
	}
	return found[0]
}

// num reads a numeric column; a JSON-null (NaN) reads as NaN.
func num(t *testing.T, r map[string]any, col string) float64 {
	t.Helper()
	switch v := r[col].(type) {
	case nil:
		return math.NaN()
	case float64:
		return v
	case float32:
		return float64(v)
	case uint64:
		return float64(v)
	case int64:
		return float64(v)
	case uint8:
		return float64(v)
	}
	t.Fatalf("column %s: %T %v is not a number", col, r[col], r[col])
	return 0
}

// Open exposures are measured against the query's now(), a few seconds after
// the fixture's clock: durations in days match to within 0.01.
const tol = 0.01

func check(t *testing.T, r map[string]any, want map[string]float64) {
	t.Helper()
	for col, w := range want {
		got := num(t, r, col)
		if math.IsNaN(w) != math.IsNaN(got) || !math.IsNaN(w) && math.Abs(got-w) > tol {
			t.Errorf("%v: %s = %v, want %v", r, col, got, w)
		}
	}
}

func seeded(t *testing.T) (store.Store, kpitest.Fleet) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	return st, kpitest.Seed(t, st)
}

func run(t *testing.T, st store.Store, name string, q Query) *export.Table {
	t.Helper()
	tbl, err := Run(context.Background(), st, name, q)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// TestKPIsOnKnownFleet checks every KPI against values worked out by hand
// from the timeline in kpitest.Seed.
func TestKPIsOnKnownFleet(t *testing.T) {
	st, fleet := seeded(t)
	nan := math.NaN()

	t.Run("mttr", func(t *testing.T) {
		all := run(t, st, "mttr", Query{})
		// Resolved windows: h1/A1 14d, h1/A2 35d, h3/A3 50d.
		check(t, row(t, all, map[string]any{"severity": "all"}), map[string]float64{"resolved": 3, "mttr_days": 33, "median_days": 35})
		check(t, row(t, all, map[string]any{"severity": "critical"}), map[string]float64{"resolved": 1, "mttr_days": 14})
		check(t, row(t, all, map[string]any{"severity": "low"}), map[string]float64{"resolved": 0, "mttr_days": nan})
		ring := run(t, st, "mttr", Query{Dimension: "ring", Value: "prod", Severity: "all"})
		check(t, row(t, ring, map[string]any{}), map[string]float64{"resolved": 2, "mttr_days": 24.5})
	})

	t.Run("time_to_patch", func(t *testing.T) {
		all := run(t, st, "time_to_patch", Query{Severity: "all"})
		// From publication: A1 60-31=29, A2 40-10=30, A3 200-100=100.
		// From fix: A1 50-31=19, A2 35-10=25; A3 has no fix date.
		check(t, row(t, all, map[string]any{}), map[string]float64{
			"resolved": 3, "with_fix_date": 2,
			"from_publication_avg_days": 53, "from_publication_median_days": 30,
			"from_fix_avg_days": 22,
		})
	})

	t.Run("sla_compliance", func(t *testing.T) {
		tbl := run(t, st, "sla_compliance", Query{})
		// Clocks start at the latest of first_seen, publication and fix
		// (0006). met: h1/A1 (KEV due -20d, fixed -31d), h1/A2 (seen -45d
		// before its fix of -35d: due -5d, fixed -10d), h3/A3 (seen -150d,
		// 90d: due -60d, fixed -100d); overdue: h2/A1 (KEV), h2/A2 (due
		// -5d); open within SLA: h3/A4 (180d from -150d: due in 30d).
		check(t, row(t, tbl, map[string]any{"severity": "all"}), map[string]float64{
			"exposures": 6, "met": 3, "missed": 0, "overdue": 2, "open_in_sla": 1, "no_fix": 0, "compliance_pct": 60})
		check(t, row(t, tbl, map[string]any{"severity": "critical"}), map[string]float64{"met": 1, "overdue": 1, "compliance_pct": 50})
		check(t, row(t, tbl, map[string]any{"severity": "low"}), map[string]float64{"open_in_sla": 1, "compliance_pct": nan})
		owner := run(t, st, "sla_compliance", Query{Dimension: "owner", Value: "alice", Severity: "all"})
		check(t, row(t, owner, map[string]any{}), map[string]float64{"met": 3, "missed": 0, "compliance_pct": 100})
	})

	t.Run("patch_coverage", func(t *testing.T) {
		check(t, row(t, run(t, st, "patch_coverage", Query{}), map[string]any{}), map[string]float64{"hosts": 4, "hosts_overdue": 1, "coverage_pct": 75})
		rings := run(t, st, "patch_coverage", Query{Dimension: "ring"})
		check(t, row(t, rings, map[string]any{"dim_value": "prod"}), map[string]float64{"hosts": 2, "hosts_overdue": 1, "coverage_pct": 50})
		check(t, row(t, rings, map[string]any{"dim_value": "pilot"}), map[string]float64{"hosts": 1, "coverage_pct": 100})
		crit := run(t, st, "patch_coverage", Query{Dimension: "criticality", Value: "2"})
		check(t, row(t, crit, map[string]any{}), map[string]float64{"hosts": 1, "coverage_pct": 0})
	})

	t.Run("sla_policy_is_data", func(t *testing.T) {
		// A stricter policy: high findings due in 10 days. h1/A2 (fixed after
		// 35 days) is missed, h2/A2 overdue; the policy covers high only.
		strict := [][]any{{"strict", "high", uint32(10), uint8(0), time.Now().UTC()}}
		if err := st.Insert(context.Background(), "sla_policy", []string{"policy", "severity", "sla_days", "kev_due_date", "updated_at"}, strict); err != nil {
			t.Fatal(err)
		}
		// Policies apply from the next refresh of the KPI tables.
		kpitest.Refresh(t, st)
		tbl := run(t, st, "sla_compliance", Query{Policy: "strict", Severity: "all"})
		check(t, row(t, tbl, map[string]any{}), map[string]float64{"exposures": 2, "missed": 1, "overdue": 1, "compliance_pct": 0})
		cov := run(t, st, "patch_coverage", Query{Policy: "strict"})
		check(t, row(t, cov, map[string]any{}), map[string]float64{"hosts": 4, "hosts_overdue": 1})
	})

	t.Run("open_exposure", func(t *testing.T) {
		tbl := run(t, st, "open_exposure", Query{})
		if len(tbl.Rows) != 3 {
			t.Fatalf("%d rows, want 3: %v", len(tbl.Rows), tbl.Records())
		}
		check(t, row(t, tbl, map[string]any{"severity": "critical", "kev": 1, "epss_band": ">=50%"}), map[string]float64{"open_exposures": 1, "hosts": 1})
		check(t, row(t, tbl, map[string]any{"severity": "high", "kev": 0, "epss_band": "1-10%"}), map[string]float64{"open_exposures": 1})
		check(t, row(t, tbl, map[string]any{"severity": "low", "kev": 0, "epss_band": "<1%"}), map[string]float64{"open_exposures": 1})
	})

	t.Run("remediation_rate", func(t *testing.T) {
		tbl := run(t, st, "remediation_rate", Query{})
		// Risk levels (see analytics/risk tests): critical h1/A1 (resolved
		// -31d), h2/A1 (open); medium h1/A2 (resolved -10d, met: 49.75),
		// h2/A2 (open); low h3/A3 (resolved -100d), h3/A4 (open).
		check(t, row(t, tbl, map[string]any{"risk_level": "critical"}), map[string]float64{"exposures": 2, "resolved": 1, "open": 1, "resolved_30d": 0, "remediation_rate_pct": 50, "remediation_rate_30d_pct": 0})
		check(t, row(t, tbl, map[string]any{"risk_level": "medium"}), map[string]float64{"exposures": 2, "open": 1, "resolved_30d": 1, "remediation_rate_pct": 50, "remediation_rate_30d_pct": 50})
		check(t, row(t, tbl, map[string]any{"risk_level": "low"}), map[string]float64{"exposures": 2, "resolved": 1, "remediation_rate_pct": 50})
	})

	t.Run("exposure_window", func(t *testing.T) {
		tbl := run(t, st, "exposure_window", Query{Severity: "all"})
		// Windows: 14, 35, 50 resolved; 45, 45, 150 open. quantileExact takes
		// the element at floor(level * n) of the sorted values.
		check(t, row(t, tbl, map[string]any{"state": "all"}), map[string]float64{"exposures": 6, "p50_days": 45, "p90_days": 150, "max_days": 150})
		check(t, row(t, tbl, map[string]any{"state": "resolved"}), map[string]float64{"exposures": 3, "p50_days": 35, "p99_days": 50})
		check(t, row(t, tbl, map[string]any{"state": "open"}), map[string]float64{"exposures": 3, "p50_days": 45})
	})

	t.Run("daily_trend", func(t *testing.T) {
		tbl := run(t, st, "daily_trend", Query{Severity: "all"})
		day := func(d int) string {
			x := fleet.Day(d)
			return time.Date(x.Year(), x.Month(), x.Day(), 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
		}
		want := []struct {
			day                   int
			opened, resolved, end float64
		}{{150, 2, 0, 2}, {100, 0, 1, 1}, {45, 4, 0, 5}, {31, 0, 1, 4}, {10, 0, 1, 3}}
		if len(tbl.Rows) != len(want) {
			t.Fatalf("%d trend rows, want %d: %v", len(tbl.Rows), len(want), tbl.Records())
		}
		for _, w := range want {
			check(t, row(t, tbl, map[string]any{"day": day(w.day)}), map[string]float64{"opened": w.opened, "resolved": w.resolved, "open_at_end": w.end})
		}
	})
}

// TestSeverityNormalized: a severity outside the schema's set counts as
// unknown, so SLA policies (keyed by severity) never lose an exposure.
func TestSeverityNormalized(t *testing.T) {
	st, fleet := seeded(t)
	rows := [][]any{
		{"osv", "A5", "h-A5", fleet.Now, fleet.Now, uint8(0), "Moderate"},
		{"osv", "A6", "h-A6", fleet.Now, fleet.Now, uint8(0), "HIGH"},
	}
	if err := st.Insert(context.Background(), "advisories", []string{"source", "advisory_id", "record_hash", "modified", "published", "withdrawn", "severity"}, rows); err != nil {
		t.Fatal(err)
	}
	r, err := st.Query(context.Background(), "SELECT advisory_id, severity FROM kpi_advisories WHERE advisory_id IN ('A5', 'A6') ORDER BY advisory_id")
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := export.ReadTable(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(tbl.Rows); got != "[[A5 unknown] [A6 high]]" {
		t.Errorf("severities: %s", got)
	}
}

func TestEveryKPIHasEveryDimension(t *testing.T) {
	st, _ := seeded(t)
	for _, k := range All() {
		for _, d := range Dimensions {
			tbl := run(t, st, k.Name, Query{Dimension: d})
			if len(tbl.Rows) == 0 {
				t.Errorf("KPI %s has no rows for dimension %s", k.Name, d)
			}
		}
	}
}

func TestQueryValidation(t *testing.T) {
	k, err := Lookup("mttr")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.SQL(Query{Dimension: "team"}); err == nil || !strings.Contains(err.Error(), "team") {
		t.Errorf("unknown dimension: err = %v", err)
	}
	cov, _ := Lookup("patch_coverage")
	if _, _, err := cov.SQL(Query{Severity: "high"}); err == nil {
		t.Error("patch_coverage has no severity column: want error")
	}
	if _, _, err := cov.SQL(Query{Exceptions: "some"}); err == nil || !strings.Contains(err.Error(), "some") {
		t.Errorf("unknown exceptions reading: err = %v", err)
	}
	if _, err := Lookup("nope"); err == nil {
		t.Error("unknown KPI: want error")
	}
	q, args, err := cov.SQL(Query{Dimension: "ring", Value: "prod"})
	if err != nil || q != "SELECT * FROM kpi_patch_coverage WHERE dimension = ? AND dim_value = ? AND policy = ? AND exceptions = ? ORDER BY policy, dim_value" || fmt.Sprint(args) != "[ring prod default honoured]" {
		t.Errorf("SQL = %q %v %v", q, args, err)
	}
}
