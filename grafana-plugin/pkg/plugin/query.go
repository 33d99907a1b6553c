package plugin

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/risk"
)

// Query types (DataQuery.QueryType, "queryType" in the panel's JSON).
const (
	TypeKPI      = "kpi"
	TypeFindings = "findings"
	TypeHosts    = "hosts"
	TypeTrend    = "trend"
)

// QueryTypes lists the query types, in the order the editor shows them.
var QueryTypes = []string{TypeKPI, TypeFindings, TypeHosts, TypeTrend}

// Trend metrics: the numeric columns of kpi_daily_trend.
var TrendMetrics = []string{"open_at_end", "opened", "resolved"}

// Page sizes of findings and hosts: the HTTP API's defaults.
const (
	defaultLimit = 100
	maxLimit     = 10000
)

// Query is a panel query's model (src/types.ts mirrors it). Which fields
// count depends on the type; the others are ignored.
type Query struct {
	Type string `json:"queryType"`

	// kpi and trend
	KPI       string `json:"kpi"`       // kpi only: a name of kpi.All()
	Dimension string `json:"dimension"` // all (default), ring, owner, os, criticality
	Value     string `json:"value"`     // one value of the dimension; "" = every one
	Policy    string `json:"policy"`    // SLA policy of SLA-based KPIs; "" = default

	// Severity: for kpi and trend one severity (or "all", the rollup); for
	// findings a comma-separated list.
	Severity string `json:"severity"`

	// findings and hosts
	KEV     string  `json:"kev"` // findings: "true", "false" or "" (either)
	Ring    string  `json:"ring"`
	Owner   string  `json:"owner"`
	OS      string  `json:"os"`
	Host    string  `json:"host"` // findings only
	MinRisk float64 `json:"minRisk"`
	Limit   int     `json:"limit"` // rows; default 100, at most 10000

	// trend: which series (default open_at_end)
	Metric string `json:"metric"`
}

// ParseQuery reads a query's JSON; queryType is the DataQuery's QueryType,
// which wins over the JSON's own field (Grafana fills both from the same
// property). It checks everything that can be checked without the store.
func ParseQuery(queryType string, raw []byte) (Query, error) {
	var q Query
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &q); err != nil {
			return q, fmt.Errorf("query JSON: %w", err)
		}
	}
	if queryType != "" {
		q.Type = queryType
	}
	if q.Type == "" {
		q.Type = TypeKPI
	}
	switch q.Type {
	case TypeKPI:
		k, err := kpi.Lookup(q.KPI)
		if err != nil {
			return q, err
		}
		if _, _, err := k.SQL(q.kpiQuery()); err != nil {
			return q, err
		}
	case TypeTrend:
		if q.Metric == "" {
			q.Metric = TrendMetrics[0]
		}
		if !slices.Contains(TrendMetrics, q.Metric) {
			return q, fmt.Errorf("unknown trend metric %q (want one of %s)", q.Metric, strings.Join(TrendMetrics, ", "))
		}
		k, _ := kpi.Lookup("daily_trend")
		if _, _, err := k.SQL(q.kpiQuery()); err != nil {
			return q, err
		}
	case TypeFindings:
		if _, err := q.findingsFilter(); err != nil {
			return q, err
		}
	case TypeHosts:
		if !(q.MinRisk >= 0 && q.MinRisk <= 100) {
			return q, fmt.Errorf("min risk %v out of range 0..100", q.MinRisk)
		}
	default:
		return q, fmt.Errorf("unknown query type %q (want one of %s)", q.Type, strings.Join(QueryTypes, ", "))
	}
	if q.Type == TypeFindings || q.Type == TypeHosts {
		if q.Limit == 0 {
			q.Limit = defaultLimit
		}
		if q.Limit < 0 || q.Limit > maxLimit {
			return q, fmt.Errorf("limit %d out of range 1..%d", q.Limit, maxLimit)
		}
	}
	return q, nil
}

func (q Query) kpiQuery() kpi.Query {
	return kpi.Query{Dimension: q.Dimension, Value: q.Value, Policy: q.Policy, Severity: q.Severity}
}

// findingsFilter goes through risk.ParseFilter, the parser of the API's and
// CLI's filter parameters, so the three read filters alike.
func (q Query) findingsFilter() (risk.Filter, error) {
	params := map[string]string{
		"severity": q.Severity,
		"kev":      q.KEV,
		"ring":     q.Ring,
		"owner":    q.Owner,
		"os":       q.OS,
		"host":     q.Host,
	}
	if q.MinRisk != 0 {
		params["min-risk"] = strconv.FormatFloat(q.MinRisk, 'g', -1, 64)
	}
	return risk.ParseFilter(func(name string) string { return params[name] })
}

func (q Query) hostFilter() risk.HostFilter {
	return risk.HostFilter{Ring: q.Ring, Owner: q.Owner, OS: q.OS, MinRisk: q.MinRisk}
}
