package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Query types (DataQuery.QueryType, "queryType" in the panel's JSON).
const (
	TypeKPI      = "kpi"
	TypeFindings = "findings"
	TypeHosts    = "hosts"
	TypeTrend    = "trend"
	TypeCount    = "count"
)

// QueryTypes lists the query types, in the order the editor shows them;
// each has its handler in handlers.
var QueryTypes = []string{TypeKPI, TypeFindings, TypeHosts, TypeTrend, TypeCount}

// queryHandler is one query type. check validates the parsed query (and
// fills its defaults) without the store; run executes it. Both get the
// query's raw JSON too, so a type can read fields of its own. Errors of
// store calls in run are tagged backend.DownstreamError.
type queryHandler struct {
	check func(q *Query, raw []byte) error
	run   func(ctx context.Context, st store.Store, q Query, raw []byte, tr backend.TimeRange) (*data.Frame, error)
}

// handlers maps each of QueryTypes to its handler. A new query type lives
// in a file of its own that calls registerQueryType from an init function.
var handlers = map[string]queryHandler{
	TypeKPI:      {check: checkKPI, run: runKPI},
	TypeFindings: {check: checkFindings, run: runFindings},
	TypeHosts:    {check: checkHosts, run: runHosts},
	TypeTrend:    {check: checkTrend, run: runTrend},
	TypeCount:    {check: checkCount, run: runCount},
}

// registerQueryType adds a query type (at init time only: the tables are
// read without locks afterwards).
func registerQueryType(name string, h queryHandler) {
	if _, dup := handlers[name]; dup {
		panic("plugin: query type " + name + " registered twice")
	}
	handlers[name] = h
	QueryTypes = append(QueryTypes, name)
}

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

	// count: the findings filters above plus the SLA state ("" = any,
	// or one of risk.SLAStates)
	SLAState string `json:"slaState"`

	// kpi, trend, findings, hosts and count: how exceptions are read,
	// "honoured" ("" too: accepted exposures counted apart, accepted
	// findings ranked last) or "ignored" (risk.Exceptions).
	Exceptions string `json:"exceptions"`
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
	h, ok := handlers[q.Type]
	if !ok {
		return q, fmt.Errorf("unknown query type %q (want one of %s)", q.Type, strings.Join(QueryTypes, ", "))
	}
	if err := h.check(&q, raw); err != nil {
		return q, err
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

func checkKPI(q *Query, _ []byte) error {
	k, err := kpi.Lookup(q.KPI)
	if err != nil {
		return err
	}
	_, _, err = k.SQL(q.kpiQuery())
	return err
}

func checkTrend(q *Query, _ []byte) error {
	if q.Metric == "" {
		q.Metric = TrendMetrics[0]
	}
	if !slices.Contains(TrendMetrics, q.Metric) {
		return fmt.Errorf("unknown trend metric %q (want one of %s)", q.Metric, strings.Join(TrendMetrics, ", "))
	}
	k, _ := kpi.Lookup("daily_trend")
	_, _, err := k.SQL(q.kpiQuery())
	return err
}

func checkFindings(q *Query, _ []byte) error {
	_, err := q.findingsFilter()
	return err
}

func checkCount(q *Query, _ []byte) error {
	if q.SLAState != "" && !slices.Contains(risk.SLAStates, q.SLAState) {
		return fmt.Errorf("unknown SLA state %q (want %s)", q.SLAState, strings.Join(risk.SLAStates, " or "))
	}
	_, err := q.findingsFilter()
	return err
}

func checkHosts(q *Query, _ []byte) error {
	if _, err := risk.ParseExceptions(q.Exceptions); err != nil {
		return err
	}
	if !(q.MinRisk >= 0 && q.MinRisk <= 100) {
		return fmt.Errorf("min risk %v out of range 0..100", q.MinRisk)
	}
	return nil
}

func (q Query) kpiQuery() kpi.Query {
	return kpi.Query{Dimension: q.Dimension, Value: q.Value, Policy: q.Policy, Severity: q.Severity, Exceptions: q.Exceptions}
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
	f, err := risk.ParseFilter(func(name string) string { return params[name] })
	if err != nil {
		return f, err
	}
	f.Exceptions = q.Exceptions
	return f, f.Validate()
}

func (q Query) hostFilter() risk.HostFilter {
	return risk.HostFilter{Ring: q.Ring, Owner: q.Owner, OS: q.OS, MinRisk: q.MinRisk, Exceptions: q.Exceptions}
}
