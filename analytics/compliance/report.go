// Package compliance writes the compliance report a compliance officer hands
// an auditor: one self-contained HTML file (inline CSS and SVG charts, no
// external assets) covering a period.
//
// Every figure is read through the code the HTTP API uses (analytics/kpi,
// analytics/risk, analytics/exception), so the report, the API, the
// plugin and SQL on the documented views show the same numbers. Each number
// in the HTML carries a data-figure attribute naming it, so that tests (and
// auditors) can check it against SQL.
package compliance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/patchgrid/patchgrid/analytics/compliance/frameworks"
	"github.com/patchgrid/patchgrid/analytics/exception"
	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas/severity"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Options select what the report covers. Zero values are defaults.
type Options struct {
	// Period is how far back the trend goes. Default 30 days.
	Period time.Duration
	// Policy is the SLA policy the SLA figures use. Default "default".
	Policy string
	// ExpiringWithin is what "expiring soon" means for exceptions. Default 14 days.
	ExpiringWithin time.Duration
	// Top is the length of the top-risk lists. Default 10.
	Top int
	// Now is the clock (the report's date). Default time.Now.
	Now func() time.Time
	// Title names the organisation or scope on the cover. Default "patchgrid fleet".
	Title string
}

func (o Options) withDefaults() Options {
	if o.Period <= 0 {
		o.Period = 30 * 24 * time.Hour
	}
	if o.Policy == "" {
		o.Policy = "default"
	}
	if o.ExpiringWithin <= 0 {
		o.ExpiringWithin = 14 * 24 * time.Hour
	}
	if o.Top <= 0 {
		o.Top = 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Title == "" {
		o.Title = "patchgrid fleet"
	}
	return o
}

// Data is everything the report shows, gathered before rendering.
type Data struct {
	Options     Options
	GeneratedAt time.Time
	AsOf        time.Time // the last refresh the KPI tables come from (zero: never)

	OpenBySeverity map[string]uint64
	OpenTotal      uint64
	OpenKEV        uint64
	Hosts          uint64

	SLA        SLARow   // policy, whole fleet, all severities
	SLAByRing  []SLARow // by ring
	SLAByOwner []SLARow // by owner (the group a team answers for)
	Coverage   CoverageRow
	Durations  []DurationRow // MTTR and time to patch by severity, whole fleet
	Trend      []TrendPoint  // open exposures at the end of each day of the period, by severity

	TopHosts    *export.Table
	TopFindings *export.Table

	ExceptionsByStatus map[exception.Status]int
	ExpiringSoon       []exception.Exception

	// Compliance posture per framework (posture.go).
	Frameworks     []frameworks.Loaded
	Posture        []PostureRow   // per framework, whole fleet
	PostureByOwner []PostureRow   // per framework and owner
	PostureTrend   []PosturePoint // non-compliant hosts at the end of each day of the period

	// Top fixes of the current plan (nil Plan: no plan yet).
	Plan     *plan.Summary
	TopFixes []plan.Fix

	// Deployment failures and rollbacks over the period's weeks.
	Deploy DeployFigures
}

// SLARow is one row of kpi_sla_compliance.
type SLARow struct {
	Group                                      string
	Exposures, Met, Missed, Overdue, OpenInSLA uint64
	CompliancePct                              float64 // NaN when nothing was due
}

// CoverageRow is kpi_patch_coverage for the whole fleet.
type CoverageRow struct {
	Hosts, HostsOverdue uint64
	CoveragePct         float64
}

// DurationRow is kpi_mttr and kpi_time_to_patch for one severity.
type DurationRow struct {
	Severity                       string
	Resolved                       uint64
	MeanDays, Median               float64 // kpi_mttr
	FromPublicationAvg, FromFixAvg float64 // kpi_time_to_patch
}

// TrendPoint is kpi_daily_trend's open_at_end for one day and severity.
type TrendPoint struct {
	Day      time.Time
	Severity string
	Open     int64
}

// Gather reads the report's figures from st.
func Gather(ctx context.Context, st store.Store, opt Options) (*Data, error) {
	opt = opt.withDefaults()
	d := &Data{Options: opt, GeneratedAt: opt.Now().UTC().Truncate(time.Second), OpenBySeverity: map[string]uint64{}}
	run := func(name string, q kpi.Query) (*export.Table, error) {
		t, err := kpi.Run(ctx, st, name, q)
		if err != nil {
			return nil, fmt.Errorf("compliance report: KPI %s: %w", name, err)
		}
		return t, nil
	}
	if err := d.readAsOf(ctx, st); err != nil {
		return nil, err
	}
	// A mistyped policy would give SLA figures of "n/a" that read as
	// "nothing was due": an unknown policy is an error.
	if err := checkPolicy(ctx, st, opt.Policy); err != nil {
		return nil, err
	}

	t, err := run("open_exposure", kpi.Query{Dimension: "all"})
	if err != nil {
		return nil, err
	}
	for _, r := range t.Records() {
		n := u64(r["open_exposures"])
		d.OpenBySeverity[str(r["severity"])] += n
		d.OpenTotal += n
		if truthy(r["kev"]) {
			d.OpenKEV += n
		}
	}

	if t, err = run("sla_compliance", kpi.Query{Dimension: "all", Policy: opt.Policy, Severity: "all"}); err != nil {
		return nil, err
	}
	if rows := slaRows(t); len(rows) > 0 {
		d.SLA = rows[0]
	} else {
		d.SLA.CompliancePct = math.NaN()
	}
	if t, err = run("sla_compliance", kpi.Query{Dimension: "ring", Policy: opt.Policy, Severity: "all"}); err != nil {
		return nil, err
	}
	d.SLAByRing = slaRows(t)
	if t, err = run("sla_compliance", kpi.Query{Dimension: "owner", Policy: opt.Policy, Severity: "all"}); err != nil {
		return nil, err
	}
	d.SLAByOwner = slaRows(t)

	if t, err = run("patch_coverage", kpi.Query{Dimension: "all", Policy: opt.Policy}); err != nil {
		return nil, err
	}
	d.Coverage.CoveragePct = math.NaN()
	for _, r := range t.Records() {
		d.Coverage = CoverageRow{Hosts: u64(r["hosts"]), HostsOverdue: u64(r["hosts_overdue"]), CoveragePct: f64(r["coverage_pct"])}
	}
	d.Hosts = d.Coverage.Hosts
	if d.Hosts == 0 {
		return nil, ErrNoData
	}

	if t, err = run("mttr", kpi.Query{Dimension: "all"}); err != nil {
		return nil, err
	}
	bySev := map[string]*DurationRow{}
	row := func(sev string) *DurationRow {
		if bySev[sev] == nil {
			bySev[sev] = &DurationRow{Severity: sev, MeanDays: math.NaN(), Median: math.NaN(), FromPublicationAvg: math.NaN(), FromFixAvg: math.NaN()}
		}
		return bySev[sev]
	}
	for _, r := range t.Records() {
		dr := row(str(r["severity"]))
		dr.Resolved, dr.MeanDays, dr.Median = u64(r["resolved"]), f64(r["mttr_days"]), f64(r["median_days"])
	}
	if t, err = run("time_to_patch", kpi.Query{Dimension: "all"}); err != nil {
		return nil, err
	}
	for _, r := range t.Records() {
		dr := row(str(r["severity"]))
		dr.FromPublicationAvg, dr.FromFixAvg = f64(r["from_publication_avg_days"]), f64(r["from_fix_avg_days"])
	}
	for _, dr := range bySev {
		d.Durations = append(d.Durations, *dr)
	}
	sortBySeverity(d.Durations, func(r DurationRow) string { return r.Severity })

	if t, err = run("daily_trend", kpi.Query{Dimension: "all"}); err != nil {
		return nil, err
	}
	d.Trend = trend(t, d.GeneratedAt, opt.Period)

	if d.TopHosts, err = risk.Hosts(ctx, st, risk.HostFilter{}, risk.Page{Limit: opt.Top}); err != nil {
		return nil, fmt.Errorf("compliance report: %w", err)
	}
	rows, err := risk.Findings(ctx, st, risk.Filter{}, &risk.Page{Limit: opt.Top})
	if err != nil {
		return nil, fmt.Errorf("compliance report: findings: %w", err)
	}
	if d.TopFindings, err = export.ReadTable(rows, opt.Top); err != nil {
		return nil, fmt.Errorf("compliance report: findings: %w", err)
	}

	book := exception.New(st, nil, exception.Config{Now: opt.Now})
	all, err := book.List(ctx, exception.Filter{})
	if err != nil {
		return nil, fmt.Errorf("compliance report: %w", err)
	}
	d.ExceptionsByStatus = map[exception.Status]int{}
	for _, e := range all {
		d.ExceptionsByStatus[e.Status]++
		if e.Status == exception.Approved && !e.ExpiresAt.After(d.GeneratedAt.Add(opt.ExpiringWithin)) {
			d.ExpiringSoon = append(d.ExpiringSoon, e)
		}
	}
	sort.Slice(d.ExpiringSoon, func(i, j int) bool { return d.ExpiringSoon[i].ExpiresAt.Before(d.ExpiringSoon[j].ExpiresAt) })

	if err := d.gatherPosture(ctx, st); err != nil {
		return nil, err
	}
	if err := d.gatherFixes(ctx, st); err != nil {
		return nil, err
	}
	if err := d.gatherDeploy(ctx, st); err != nil {
		return nil, err
	}
	return d, nil
}

// readAsOf reads when the KPI tables were last refreshed: their "now" (a
// refresh that left them for the next one does not count).
func (d *Data) readAsOf(ctx context.Context, st store.Store) error {
	rows, err := st.Query(ctx, "SELECT max(finished_at) FROM refresh_runs WHERE error = '' AND snapshots = 1")
	if err != nil {
		return fmt.Errorf("compliance report: last refresh: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&d.AsOf); err != nil {
			return fmt.Errorf("compliance report: last refresh: %w", err)
		}
	}
	if d.AsOf.Unix() <= 0 {
		d.AsOf = time.Time{}
	}
	return rows.Err()
}

func checkPolicy(ctx context.Context, st store.Store, policy string) error {
	rows, err := st.Query(ctx, "SELECT count() FROM sla_policy FINAL WHERE policy = ?", policy)
	if err != nil {
		return fmt.Errorf("compliance report: SLA policy %q: %w", policy, err)
	}
	defer rows.Close()
	var n uint64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return fmt.Errorf("compliance report: SLA policy %q: %w", policy, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("compliance report: SLA policy %q: %w", policy, err)
	}
	if n == 0 {
		return fmt.Errorf("compliance report: unknown SLA policy %q (table sla_policy names the policies; 'default' is the active one)", policy)
	}
	return nil
}

func slaRows(t *export.Table) []SLARow {
	var out []SLARow
	for _, r := range t.Records() {
		out = append(out, SLARow{Group: str(r["dim_value"]), Exposures: u64(r["exposures"]), Met: u64(r["met"]),
			Missed: u64(r["missed"]), Overdue: u64(r["overdue"]), OpenInSLA: u64(r["open_in_sla"]), CompliancePct: f64(r["compliance_pct"])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// trend keeps the period's days of kpi_daily_trend and carries each
// severity's open count over the days without events (the view has a row
// only for days on which something opened or resolved).
func trend(t *export.Table, now time.Time, period time.Duration) []TrendPoint {
	type key struct {
		sev string
		day time.Time
	}
	open := map[key]int64{}
	days := map[string][]time.Time{}
	for _, r := range t.Records() {
		sev := str(r["severity"])
		if sev == "all" {
			continue
		}
		day, _ := r["day"].(time.Time)
		day = time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
		open[key{sev, day}] = i64(r["open_at_end"])
		days[sev] = append(days[sev], day)
	}
	first := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).Add(-period)
	var out []TrendPoint
	for _, sev := range severity.All {
		ds := days[sev]
		if len(ds) == 0 {
			continue
		}
		slices.SortFunc(ds, func(a, b time.Time) int { return a.Compare(b) })
		var cur int64
		i := 0
		for day := ds[0]; !day.After(now); day = day.Add(24 * time.Hour) {
			for i < len(ds) && !ds[i].After(day) {
				cur = open[key{sev, ds[i]}]
				i++
			}
			if !day.Before(first) {
				out = append(out, TrendPoint{Day: day, Severity: sev, Open: cur})
			}
		}
	}
	return out
}

func sortBySeverity[T any](rows []T, sev func(T) string) {
	rank := func(s string) int {
		if severity.Valid(s) {
			return severity.Index(s)
		}
		if s == "all" {
			return len(severity.All)
		}
		return len(severity.All) + 1
	}
	sort.SliceStable(rows, func(i, j int) bool { return rank(sev(rows[i])) < rank(sev(rows[j])) })
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func u64(v any) uint64 {
	switch x := v.(type) {
	case uint64:
		return x
	case uint32:
		return uint64(x)
	case uint16:
		return uint64(x)
	case uint8:
		return uint64(x)
	case int64:
		if x > 0 {
			return uint64(x)
		}
	case int32:
		if x > 0 {
			return uint64(x)
		}
	case float64:
		if x > 0 {
			return uint64(x)
		}
	}
	return 0
}

func i64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case uint64:
		return int64(x)
	case int32:
		return int64(x)
	case float64:
		return int64(x)
	}
	return 0
}

func f64(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case uint64:
		return float64(x)
	case int64:
		return float64(x)
	case nil:
		return math.NaN()
	}
	if f, err := strconv.ParseFloat(fmt.Sprint(v), 64); err == nil {
		return f
	}
	return math.NaN()
}

func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case uint8:
		return x != 0
	case uint64:
		return x != 0
	case int64:
		return x != 0
	}
	return false
}

// ErrNoData is returned when the store holds no scans at all: a report of
// zeros would read as a clean fleet.
var ErrNoData = errors.New("no hosts in the store: ingest scans, match and refresh first (patchgrid run, or ingest + match --fleet)")
