package compliance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/compliance/frameworks"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// PostureRow is one row of compliance_posture.
type PostureRow struct {
	Framework, Group                                     string
	Hosts, Compliant, CompliantStrict, OpenInScope       uint64
	Overdue, OverdueAccepted, OpenExceptions, StaleHosts uint64
	CompliantPct                                         float64 // NaN without hosts
}

// PosturePoint is compliance_posture_trend at the end of one day of the
// period, carried over days without change.
type PosturePoint struct {
	Day               time.Time
	Framework         string
	NonCompliantHosts int64
	Overdue           int64
}

// DeployFigures sums kpi_deploy_failures over the weeks of the period.
type DeployFigures struct {
	// Since is the Monday of the first week counted (the week of the
	// period's first day).
	Since                                      time.Time
	Deployments, Succeeded, Failed, RolledBack uint64
	FailureRatePct, RollbackRatePct            float64 // NaN without deployments
	ByRing                                     []DeployRow
}

// DeployRow is one ring's sums.
type DeployRow struct {
	Ring                            string
	Deployments, Failed, RolledBack uint64
	FailureRatePct, RollbackRatePct float64
}

// gatherPosture reads the frameworks and their posture (the reads of GET
// /api/v1/posture).
func (d *Data) gatherPosture(ctx context.Context, st store.Store) error {
	var err error
	if d.Frameworks, err = frameworks.List(ctx, st); err != nil {
		return fmt.Errorf("compliance report: %w", err)
	}
	for _, dim := range []string{"all", "owner"} {
		t, err := frameworks.Posture(ctx, st, frameworks.Query{Dimension: dim})
		if err != nil {
			return fmt.Errorf("compliance report: %w", err)
		}
		var rows []PostureRow
		for _, r := range t.Records() {
			rows = append(rows, PostureRow{Framework: str(r["framework"]), Group: str(r["dim_value"]),
				Hosts: u64(r["hosts"]), Compliant: u64(r["compliant_hosts"]), CompliantStrict: u64(r["compliant_hosts_strict"]),
				OpenInScope: u64(r["open_in_scope"]), Overdue: u64(r["overdue"]), OverdueAccepted: u64(r["overdue_accepted"]),
				OpenExceptions: u64(r["open_exceptions"]), StaleHosts: u64(r["stale_hosts"]), CompliantPct: f64(r["compliant_pct"])})
		}
		if dim == "all" {
			d.Posture = rows
		} else {
			d.PostureByOwner = rows
		}
	}
	t, err := frameworks.Trend(ctx, st, frameworks.Query{})
	if err != nil {
		return fmt.Errorf("compliance report: %w", err)
	}
	type state struct{ hosts, overdue int64 }
	byFW := map[string]map[time.Time]state{}
	for _, r := range t.Records() {
		fw := str(r["framework"])
		if byFW[fw] == nil {
			byFW[fw] = map[time.Time]state{}
		}
		byFW[fw][asDay(r["day"])] = state{i64(r["noncompliant_hosts_at_end"]), i64(r["overdue_at_end"])}
	}
	today := time.Date(d.GeneratedAt.Year(), d.GeneratedAt.Month(), d.GeneratedAt.Day(), 0, 0, 0, 0, time.UTC)
	first := today.Add(-d.Options.Period)
	for _, p := range d.Posture {
		days := byFW[p.Framework]
		var ds []time.Time
		for day := range days {
			ds = append(ds, day)
		}
		slices.SortFunc(ds, func(a, b time.Time) int { return a.Compare(b) })
		// Every framework gets a line over the whole period (zero before
		// its first overdue exposure), so the chart compares them.
		var cur state
		i := 0
		for day := first; !day.After(today); day = day.Add(24 * time.Hour) {
			for i < len(ds) && !ds[i].After(day) {
				cur = days[ds[i]]
				i++
			}
			d.PostureTrend = append(d.PostureTrend, PosturePoint{Day: day, Framework: p.Framework, NonCompliantHosts: cur.hosts, Overdue: cur.overdue})
		}
	}
	return nil
}

// asDay reads a Date column's value as midnight UTC.
func asDay(v any) time.Time {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case string:
		if p, err := time.Parse(time.RFC3339, x); err == nil {
			t = p
		} else if p, err := time.Parse(time.DateOnly, x); err == nil {
			t = p
		}
	}
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// gatherFixes reads the current plan's top fixes (the API's plan.Fixes,
// which groups as plan_fixes_current does).
func (d *Data) gatherFixes(ctx context.Context, st store.Store) error {
	cur, err := plan.Get(ctx, st, "")
	if errors.Is(err, plan.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("compliance report: current plan: %w", err)
	}
	d.Plan = &cur
	if d.TopFixes, err = plan.Fixes(ctx, st, cur.ID, d.Options.Top); err != nil {
		return fmt.Errorf("compliance report: %w", err)
	}
	return nil
}

// gatherDeploy sums kpi_deploy_failures (the API's kpi.RunDeploy) over the
// weeks that overlap the period.
func (d *Data) gatherDeploy(ctx context.Context, st store.Store) error {
	first := d.GeneratedAt.Add(-d.Options.Period).UTC()
	first = time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, time.UTC)
	// Weeks start on Monday (toMonday).
	d.Deploy.Since = first.AddDate(0, 0, -((int(first.Weekday()) + 6) % 7))
	byRing := map[string]*DeployRow{}
	for _, dim := range []string{"all", "ring"} {
		t, err := kpi.RunDeploy(ctx, st, "failures", kpi.DeployQuery{Dimension: dim})
		if err != nil {
			return fmt.Errorf("compliance report: %w", err)
		}
		for _, r := range t.Records() {
			if asDay(r["week"]).Before(d.Deploy.Since) {
				continue
			}
			n, failed, rb := u64(r["deployments"]), u64(r["failed"]), u64(r["rolled_back"])
			if dim == "all" {
				d.Deploy.Deployments += n
				d.Deploy.Succeeded += u64(r["succeeded"])
				d.Deploy.Failed += failed
				d.Deploy.RolledBack += rb
				continue
			}
			ring := str(r["dim_value"])
			if byRing[ring] == nil {
				byRing[ring] = &DeployRow{Ring: ring}
			}
			byRing[ring].Deployments += n
			byRing[ring].Failed += failed
			byRing[ring].RolledBack += rb
		}
	}
	d.Deploy.FailureRatePct, d.Deploy.RollbackRatePct = rates(d.Deploy.Deployments, d.Deploy.Failed, d.Deploy.RolledBack)
	for _, r := range byRing {
		r.FailureRatePct, r.RollbackRatePct = rates(r.Deployments, r.Failed, r.RolledBack)
		d.Deploy.ByRing = append(d.Deploy.ByRing, *r)
	}
	sort.Slice(d.Deploy.ByRing, func(i, j int) bool { return d.Deploy.ByRing[i].Ring < d.Deploy.ByRing[j].Ring })
	return nil
}

// rates are kpi_deploy_failures' rates over summed weeks: a rollback is a
// failed deployment that had installed, so failures include rollbacks.
func rates(deployments, failed, rolledBack uint64) (failure, rollback float64) {
	if deployments == 0 {
		return math.NaN(), math.NaN()
	}
	return 100 * float64(failed+rolledBack) / float64(deployments), 100 * float64(rolledBack) / float64(deployments)
}

// figureKey makes a framework id or group usable in a data-figure name.
func figureKey(s string) string {
	return strings.NewReplacer(".", "_", "-", "_", " ", "_").Replace(s)
}
