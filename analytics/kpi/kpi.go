// Package kpi reads the compliance KPIs. Every KPI is a view of
// schemas/migrations/0004_kpis.sql (documented in schemas/VIEWS.md); this
// package only selects from them, so the API, the CLI and the Grafana
// plugin show the numbers the views define, and nothing else.
package kpi

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Dimensions are the breakdowns every KPI view carries (column dimension).
var Dimensions = []string{"all", "ring", "owner", "os", "criticality"}

// KPI describes one KPI view.
type KPI struct {
	Name    string   // API name: /api/v1/kpis/{Name}
	View    string   // the view in 0004_kpis.sql
	Summary string   // one line; the definition is in schemas/VIEWS.md
	Policy  bool     // the view has a policy column (SLA-based KPIs)
	OrderBy []string // row order of results
}

// All lists the KPIs.
func All() []KPI {
	return []KPI{
		{"mttr", "kpi_mttr", "mean/median days from first detection to resolution, by severity", false, []string{"dim_value", "severity"}},
		{"time_to_patch", "kpi_time_to_patch", "days from advisory publication and from fix availability to resolution, by severity", false, []string{"dim_value", "severity"}},
		{"sla_compliance", "kpi_sla_compliance", "share of exposures remediated within their SLA deadline, per policy and severity", true, []string{"policy", "dim_value", "severity"}},
		{"patch_coverage", "kpi_patch_coverage", "share of hosts with no open exposure past its SLA deadline, per policy", true, []string{"policy", "dim_value"}},
		{"open_exposure", "kpi_open_exposure", "open exposures now by severity, KEV and EPSS band", false, []string{"dim_value", "severity", "kev", "epss_band"}},
		{"remediation_rate", "kpi_remediation_rate", "resolved share of exposures (all time and last 30 days) by risk level", false, []string{"dim_value", "risk_level"}},
		{"exposure_window", "kpi_exposure_window", "exposure window percentiles (days) by severity and state", false, []string{"dim_value", "severity", "state"}},
		{"daily_trend", "kpi_daily_trend", "exposures opened, resolved and open at the end of each day", false, []string{"dim_value", "severity", "day"}},
	}
}

// Lookup finds a KPI by name.
func Lookup(name string) (KPI, error) {
	for _, k := range All() {
		if k.Name == name {
			return k, nil
		}
	}
	names := make([]string, 0, 8)
	for _, k := range All() {
		names = append(names, k.Name)
	}
	return KPI{}, fmt.Errorf("unknown KPI %q (want one of %s)", name, strings.Join(names, ", "))
}

// Query selects rows of a KPI. Zero values: dimension "all", every value,
// policy "default" for SLA-based KPIs, exceptions honoured.
type Query struct {
	Dimension  string // all, ring, owner, os, criticality
	Value      string // one ring / owner / os / criticality; "" = every one
	Policy     string // SLA policy (sla_policy.policy)
	Severity   string // one severity, or "all" for the rollup; "" = every row
	Exceptions string // risk.ExceptionsHonoured (default) or risk.ExceptionsIgnored
}

// SQL returns the statement Run executes for k and q, with its arguments.
func (k KPI) SQL(q Query) (string, []any, error) {
	if q.Dimension == "" {
		q.Dimension = "all"
	}
	if !slices.Contains(Dimensions, q.Dimension) {
		return "", nil, fmt.Errorf("unknown dimension %q (want one of %s)", q.Dimension, strings.Join(Dimensions, ", "))
	}
	where := []string{"dimension = ?"}
	args := []any{q.Dimension}
	if q.Value != "" {
		where, args = append(where, "dim_value = ?"), append(args, q.Value)
	}
	if k.Policy {
		if q.Policy == "" {
			q.Policy = "default"
		}
		where, args = append(where, "policy = ?"), append(args, q.Policy)
	}
	exc, err := risk.ParseExceptions(q.Exceptions)
	if err != nil {
		return "", nil, err
	}
	where, args = append(where, "exceptions = ?"), append(args, exc)
	if q.Severity != "" {
		if !slices.Contains(k.OrderBy, "severity") {
			return "", nil, fmt.Errorf("KPI %s has no severity breakdown", k.Name)
		}
		where, args = append(where, "severity = ?"), append(args, q.Severity)
	}
	return "SELECT * FROM " + k.View + " WHERE " + strings.Join(where, " AND ") + " ORDER BY " + strings.Join(k.OrderBy, ", "), args, nil
}

// Run reads KPI name for q.
func Run(ctx context.Context, st store.Store, name string, q Query) (*export.Table, error) {
	k, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	query, args, err := k.SQL(q)
	if err != nil {
		return nil, err
	}
	return readTable(ctx, st, "KPI "+name, query, args)
}

// readTable runs query and reads its whole result; what names the KPI in
// errors.
func readTable(ctx context.Context, st store.Store, what, query string, args []any) (*export.Table, error) {
	rows, err := st.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	t, err := export.ReadTable(rows, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return t, nil
}

// DefaultStaleAfter is the stale limit of migration 0016's kpi_settings row:
// a host whose latest scan is older than this at a refresh is stale in the
// KPIs. It is the run summary's and the API's default, so that all three
// call the same hosts stale.
const DefaultStaleAfter = match.DefaultStaleAfter

// SetStaleAfter records the stale limit the KPI and risk views apply from
// the next refresh on (kpi_settings 'stale_after_hours'; the latest row
// wins). after must be positive.
func SetStaleAfter(ctx context.Context, st store.Store, after time.Duration, now time.Time) error {
	if after <= 0 {
		return fmt.Errorf("stale limit %s: want a positive duration", after)
	}
	if err := st.Insert(ctx, "kpi_settings", []string{"name", "value", "updated_at"},
		[][]any{{"stale_after_hours", after.Hours(), now.UTC().Truncate(time.Second)}}); err != nil {
		return fmt.Errorf("setting the KPI stale limit to %s: %w", after, err)
	}
	return nil
}
