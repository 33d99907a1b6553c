package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// TypeDeployments reads a deployment KPI (kpi.DeployKPIs, views of
// 0015_deploy_kpis.sql), as the API's /api/v1/kpis/deployments/{name}
// does. Its own fields:
//
//	deployKpi  failures, stage_success, test_pass, time_to_verify,
//	           still_exposed, regressions or plans (default failures)
//	metric     weekly KPIs only (failures, regressions): a numeric column
//	           to draw as one time series per dim_value over the weeks of
//	           the panel's range; "" gives the rows as a table
//
// dimension and value filter as DeployQuery does.
const TypeDeployments = "deployments"

// weeklyDeployKPIs are the deployment KPIs with a week column.
var weeklyDeployKPIs = []string{"failures", "regressions"}

type deployQuery struct {
	KPI    string `json:"deployKpi"`
	Metric string `json:"metric"`
}

func init() {
	registerQueryType(TypeDeployments, queryHandler{check: checkDeployments, run: runDeployments})
}

func parseDeployQuery(q *Query, raw []byte) (deployQuery, kpi.DeployKPI, error) {
	var dq deployQuery
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &dq); err != nil {
			return dq, kpi.DeployKPI{}, fmt.Errorf("query JSON: %w", err)
		}
	}
	if dq.KPI == "" {
		dq.KPI = "failures"
	}
	k, err := kpi.LookupDeploy(dq.KPI)
	if err != nil {
		return dq, k, err
	}
	if _, _, err := k.SQL(kpi.DeployQuery{Dimension: q.Dimension, Value: q.Value}); err != nil {
		return dq, k, err
	}
	if dq.Metric != "" {
		if !slices.Contains(weeklyDeployKPIs, dq.KPI) {
			return dq, k, fmt.Errorf("deployment KPI %s has no weeks to draw %s over (metric needs one of %s)", dq.KPI, dq.Metric, strings.Join(weeklyDeployKPIs, ", "))
		}
		if dq.Metric == "week" || dq.Metric == "dimension" || dq.Metric == "dim_value" {
			return dq, k, fmt.Errorf("metric %q is not a numeric column of %s", dq.Metric, k.View)
		}
	}
	return dq, k, nil
}

func checkDeployments(q *Query, raw []byte) error {
	_, _, err := parseDeployQuery(q, raw)
	return err
}

func runDeployments(ctx context.Context, st store.Store, q Query, raw []byte, tr backend.TimeRange) (*data.Frame, error) {
	dq, k, _ := parseDeployQuery(&q, raw) // checked by checkDeployments
	query := kpi.DeployQuery{Dimension: q.Dimension, Value: q.Value}
	sql, _, _ := k.SQL(query)
	t, err := kpi.RunDeploy(ctx, st, dq.KPI, query)
	if err != nil {
		return nil, backend.DownstreamError(err)
	}
	var f *data.Frame
	if dq.Metric == "" {
		f, err = tableFrame(dq.KPI, t)
	} else {
		f, err = weeklyFrame(dq.KPI, t, dq.Metric, tr)
	}
	if err != nil {
		return nil, err
	}
	f.Meta.ExecutedQueryString = sql
	return f, nil
}

// weeklyFrame turns a weekly deployment KPI into a wide time series: the
// time field (the week's Monday) and one field of metric per dim_value,
// over the weeks that overlap tr. A week without a row for a series is
// null there (no deployments: no rate), never 0.
func weeklyFrame(name string, t *export.Table, metric string, tr backend.TimeRange) (*data.Frame, error) {
	iWeek, iDim, iVal := t.Column("week"), t.Column("dim_value"), t.Column(metric)
	if iWeek < 0 || iDim < 0 || iVal < 0 {
		return nil, fmt.Errorf("deployment KPI %s: columns week, dim_value and %s expected, got %v", name, metric, t.Columns)
	}
	type point struct {
		week time.Time
		dim  string
		val  *float64
	}
	from := tr.From.UTC().Add(-7 * 24 * time.Hour)
	var pts []point
	for r, row := range t.Rows {
		week, ok := row[iWeek].(time.Time)
		if !ok {
			return nil, fmt.Errorf("deployment KPI %s row %d: week is %T, not a time", name, r+1, row[iWeek])
		}
		if (!tr.From.IsZero() && !week.After(from)) || (!tr.To.IsZero() && week.After(tr.To)) {
			continue
		}
		v := deref(row[iVal])
		if k := kindOf(v); k != kInt && k != kUint && k != kFloat && k != kNone {
			return nil, fmt.Errorf("deployment KPI %s row %d: %s is %T, not a number", name, r+1, metric, v)
		}
		p := point{week: week.UTC()}
		p.dim, _ = row[iDim].(string)
		if !none(v) {
			f := toFloat(v)
			p.val = &f
		}
		pts = append(pts, p)
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].week.Before(pts[j].week) })
	out := data.NewFrame(name, data.NewField("time", nil, []time.Time{}))
	out.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesWide, TypeVersion: data.FrameTypeVersion{0, 1}}
	if len(pts) == 0 {
		out.Fields = append(out.Fields, data.NewField(metric, nil, []*float64{}))
		return out, nil
	}
	weeks, dims, vals := make([]time.Time, len(pts)), make([]string, len(pts)), make([]*float64, len(pts))
	for i, p := range pts {
		weeks[i], dims[i], vals[i] = p.week, p.dim, p.val
	}
	long := data.NewFrame(name, data.NewField("time", nil, weeks), data.NewField(metric, nil, vals), data.NewField("dim_value", nil, dims))
	wide, err := data.LongToWideWithLimit(long, nil, maxTrendCells)
	if err != nil {
		return nil, fmt.Errorf("deployment KPI %s to wide frame: %w", name, err)
	}
	out.Fields = wide.Fields
	for _, f := range out.Fields[1:] {
		f.Config = &data.FieldConfig{DisplayNameFromDS: seriesName(metric, f.Labels)}
	}
	return out, nil
}
