package kpi

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// DeployKPI describes one deployment KPI view of
// schemas/migrations/0015_deploy_kpis.sql (defined in schemas/VIEWS.md,
// "Deployment KPIs"). Their breakdowns differ from the compliance KPIs':
// each says which column DeployQuery.Value selects on.
type DeployKPI struct {
	Name    string // API name: /api/v1/kpis/deployments/{Name}
	View    string
	Summary string
	// Dimensions are the values of the view's dimension column; nil when
	// it has none.
	Dimensions []string
	// ValueColumn is the column DeployQuery.Value selects: dim_value for
	// views with dimensions, else the view's key (ring, stage, plan_id).
	ValueColumn string
	OrderBy     []string
}

// DeployKPIs lists the deployment KPIs.
func DeployKPIs() []DeployKPI {
	return []DeployKPI{
		{"failures", "kpi_deploy_failures", "patch failure rate and rollback frequency per week, overall, by ring and by package",
			[]string{"all", "ring", "package"}, "dim_value", []string{"week", "dimension", "dim_value"}},
		{"stage_success", "kpi_deploy_stage_success", "deployment success rate in staging (rings before the last) against production",
			nil, "stage", []string{"stage"}},
		{"test_pass", "kpi_deploy_test_pass", "test pass rate per ring: verified share of actions whose result is known",
			nil, "ring", []string{"ring_order", "ring"}},
		{"time_to_verify", "kpi_deploy_time_to_verify", "hours from plan to verified (avg, median, p90), overall, by stage and by ring",
			[]string{"all", "stage", "ring"}, "dim_value", []string{"dimension", "dim_value"}},
		{"still_exposed", "kpi_deploy_still_exposed", "actions still exposed at the rescan after a reported success, overall, by ring and by package",
			[]string{"all", "ring", "package"}, "dim_value", []string{"dimension", "dim_value"}},
		{"regressions", "kpi_deploy_regressions", "reopened exposures (regressions) per week of their last sighting, by the KPI breakdowns",
			Dimensions, "dim_value", []string{"week", "dimension", "dim_value"}},
		{"plans", "kpi_deploy_plans", "the patch loop per plan: actions by state, attempts, failure and rollback rates",
			nil, "plan_id", []string{"planned_at", "plan_id"}},
	}
}

// LookupDeploy finds a deployment KPI by name.
func LookupDeploy(name string) (DeployKPI, error) {
	var names []string
	for _, k := range DeployKPIs() {
		if k.Name == name {
			return k, nil
		}
		names = append(names, k.Name)
	}
	return DeployKPI{}, fmt.Errorf("unknown deployment KPI %q (want one of %s)", name, strings.Join(names, ", "))
}

// DeployQuery selects rows of a deployment KPI. Zero values select every
// row.
type DeployQuery struct {
	// Dimension keeps one breakdown (views with dimensions only).
	Dimension string
	// Value keeps the rows whose ValueColumn is Value.
	Value string
}

// SQL returns the statement RunDeploy executes for k and q, with its
// arguments.
func (k DeployKPI) SQL(q DeployQuery) (string, []any, error) {
	var where []string
	var args []any
	if q.Dimension != "" {
		if k.Dimensions == nil {
			return "", nil, fmt.Errorf("deployment KPI %s has no dimension column", k.Name)
		}
		if !slices.Contains(k.Dimensions, q.Dimension) {
			return "", nil, fmt.Errorf("deployment KPI %s: unknown dimension %q (want one of %s)", k.Name, q.Dimension, strings.Join(k.Dimensions, ", "))
		}
		where, args = append(where, "dimension = ?"), append(args, q.Dimension)
	}
	if q.Value != "" {
		where, args = append(where, k.ValueColumn+" = ?"), append(args, q.Value)
	}
	sql := "SELECT * FROM " + k.View
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	return sql + " ORDER BY " + strings.Join(k.OrderBy, ", "), args, nil
}

// RunDeploy reads deployment KPI name for q.
func RunDeploy(ctx context.Context, st store.Store, name string, q DeployQuery) (*export.Table, error) {
	k, err := LookupDeploy(name)
	if err != nil {
		return nil, err
	}
	query, args, err := k.SQL(q)
	if err != nil {
		return nil, err
	}
	return readTable(ctx, st, "deployment KPI "+name, query, args)
}
