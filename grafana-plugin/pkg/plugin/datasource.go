// Package plugin is patchgrid's Grafana data source backend. It answers
// panel queries (KPIs, findings, hosts, the daily trend) by calling
// analytics/kpi and analytics/risk — the functions behind the HTTP API and
// the CLI — so a panel shows the same numbers as the API.
package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/resource/httpadapter"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/severity"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// ID is the plugin id of plugin.json.
const ID = "patchgrid-datasource"

// Instances creates the data source instances Grafana asks for and keeps
// track of them, so that main closes every store when Grafana stops the
// plugin: the SDK's instance manager only disposes an instance it replaces,
// and chDB must be closed before the process exits.
type Instances struct {
	log     *slog.Logger
	open    func(context.Context, store.Config) (store.Store, error)
	chdbLib string // from the process environment: see CHDBLibFromEnv

	mu  sync.Mutex
	all map[*Datasource]struct{}
}

// NewInstances returns an empty set that opens stores with store.Open,
// loading chDB (for chdb data sources) from chdbLib, the administrator's
// choice (CHDBLibFromEnv).
func NewInstances(log *slog.Logger, chdbLib string) *Instances {
	return &Instances{log: log, open: store.Open, chdbLib: chdbLib, all: map[*Datasource]struct{}{}}
}

// New is the SDK's instance factory. It never fails: bad settings or an
// unreachable store are reported by each query and by the health check,
// where the user sees them, and the store is opened on first use (and
// again after a failure), so a ClickHouse server that starts after Grafana
// is picked up.
func (in *Instances) New(_ context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	settings, err := LoadSettings(s, in.chdbLib)
	d := &Datasource{
		settings:    settings,
		settingsErr: err,
		log:         in.log.With("datasource", s.Name, "uid", s.UID),
		open:        in.open,
		instances:   in,
		ownsStore:   true,
	}
	d.resources = httpadapter.New(d.routes())
	in.mu.Lock()
	in.all[d] = struct{}{}
	in.mu.Unlock()
	if err != nil {
		d.log.Warn("invalid data source settings", "err", err)
	}
	if settings.IgnoredCHDBLib != "" {
		d.log.Warn("jsonData.chdbLib is ignored: the library path is set by Grafana's administrator (GF_PLUGIN_CHDB_LIB or PATCHGRID_CHDB_LIB)", "chdbLib", settings.IgnoredCHDBLib)
	}
	return d, nil
}

// Close closes the stores of all instances.
func (in *Instances) Close() {
	in.mu.Lock()
	all := make([]*Datasource, 0, len(in.all))
	for d := range in.all {
		all = append(all, d)
	}
	in.mu.Unlock()
	for _, d := range all {
		d.Dispose()
	}
}

// Datasource is one configured patchgrid data source.
type Datasource struct {
	settings    Settings
	settingsErr error
	log         *slog.Logger
	open        func(context.Context, store.Config) (store.Store, error)
	instances   *Instances // nil for NewWithStore
	resources   backend.CallResourceHandler
	ownsStore   bool // Dispose closes the store

	mu       sync.Mutex
	st       store.Store
	disposed bool
}

// NewWithStore returns a data source reading st, for embedding and tests;
// Dispose does not close st.
func NewWithStore(st store.Store, log *slog.Logger) *Datasource {
	d := &Datasource{settings: Settings{Backend: st.Backend()}, log: log, st: st}
	d.resources = httpadapter.New(d.routes())
	return d
}

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

var errDisposed = errors.New("data source instance was replaced or the plugin is stopping")

// store returns the open store, opening it when needed. Failures to open
// are the store's (downstream) failures, except invalid settings.
func (d *Datasource) store(ctx context.Context) (store.Store, error) {
	if d.settingsErr != nil {
		return nil, d.settingsErr
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.disposed {
		return nil, errDisposed
	}
	if d.st != nil {
		return d.st, nil
	}
	st, err := d.open(ctx, d.settings.StoreConfig())
	if err != nil {
		return nil, backend.DownstreamError(fmt.Errorf("open %s store: %w", d.settings.Backend, err))
	}
	d.log.Info("store opened", "backend", st.Backend())
	d.st = st
	return st, nil
}

// Dispose closes the store. The SDK calls it when the instance is replaced
// (settings changed); Instances.Close when the plugin stops.
func (d *Datasource) Dispose() {
	d.mu.Lock()
	st := d.st
	d.st, d.disposed = nil, true
	d.mu.Unlock()
	if d.instances != nil {
		d.instances.mu.Lock()
		delete(d.instances.all, d)
		d.instances.mu.Unlock()
	}
	if st != nil && d.ownsStore {
		if err := st.Close(); err != nil {
			d.log.Error("close store", "err", err)
		} else {
			d.log.Info("store closed")
		}
	}
}

// QueryData answers each query on its own: one bad query is an error
// response for its refId, never a failed request.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	for _, q := range req.Queries {
		resp.Responses[q.RefID] = d.query(ctx, q)
	}
	return resp, nil
}

func (d *Datasource) query(ctx context.Context, dq backend.DataQuery) backend.DataResponse {
	// Bad settings and bad queries are the user's to fix: 400, and not
	// counted against the plugin.
	if d.settingsErr != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, d.settingsErr.Error())
	}
	q, err := ParseQuery(dq.QueryType, dq.JSON)
	if err != nil {
		return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream,
			fmt.Sprintf("query %s: %v", dq.RefID, err))
	}
	st, err := d.store(ctx)
	if err != nil {
		return errorResponse(err)
	}
	frame, err := d.run(ctx, st, q, dq.JSON, dq.TimeRange)
	if err != nil {
		d.log.Error("query failed", "refId", dq.RefID, "queryType", q.Type, "err", err)
		return errorResponse(fmt.Errorf("query %s (%s): %w", dq.RefID, q.Type, err))
	}
	return backend.DataResponse{Frames: data.Frames{frame}}
}

// errorResponse keeps the error's source: store failures were tagged
// downstream where they happened; anything else is the plugin's.
func errorResponse(err error) backend.DataResponse {
	r := backend.ErrorResponseWithErrorSource(err)
	r.Status = backend.StatusInternal
	if backend.IsDownstreamError(err) {
		r.Status = backend.StatusBadGateway
	}
	return r
}

// run executes a parsed query with its type's handler.
func (d *Datasource) run(ctx context.Context, st store.Store, q Query, raw []byte, tr backend.TimeRange) (*data.Frame, error) {
	h, ok := handlers[q.Type]
	if !ok {
		return nil, fmt.Errorf("unknown query type %q", q.Type) // ParseQuery let it through: a bug here
	}
	return h.run(ctx, st, q, raw, tr)
}

func runKPI(ctx context.Context, st store.Store, q Query, _ []byte, _ backend.TimeRange) (*data.Frame, error) {
	k, _ := kpi.Lookup(q.KPI)
	sql, _, _ := k.SQL(q.kpiQuery())
	t, err := kpi.Run(ctx, st, q.KPI, q.kpiQuery())
	if err != nil {
		return nil, backend.DownstreamError(err)
	}
	f, err := tableFrame(q.KPI, t)
	if err != nil {
		return nil, err
	}
	f.Meta.ExecutedQueryString = sql
	return f, nil
}

func runTrend(ctx context.Context, st store.Store, q Query, _ []byte, tr backend.TimeRange) (*data.Frame, error) {
	t, err := kpi.Run(ctx, st, "daily_trend", q.kpiQuery())
	if err != nil {
		return nil, backend.DownstreamError(err)
	}
	return trendFrame(t, q.Metric, tr)
}

func runFindings(ctx context.Context, st store.Store, q Query, _ []byte, _ backend.TimeRange) (*data.Frame, error) {
	f, _ := q.findingsFilter()
	page := &risk.Page{Limit: q.Limit}
	sql, _, _ := risk.FindingsSQL(f, page)
	rows, err := risk.Findings(ctx, st, f, page)
	if err != nil {
		return nil, backend.DownstreamError(err)
	}
	t, err := export.ReadTable(rows, 0)
	if err != nil {
		return nil, backend.DownstreamError(fmt.Errorf("findings: %w", err))
	}
	fr, err := tableFrame("findings", t)
	if err != nil {
		return nil, err
	}
	fr.Meta.ExecutedQueryString = sql
	return fr, nil
}

// runCount answers one number, the open findings the filters select: a
// frame alert rules reduce and compare (the provisioned rule: overdue KEV
// exposures > 0).
func runCount(ctx context.Context, st store.Store, q Query, _ []byte, _ backend.TimeRange) (*data.Frame, error) {
	f, _ := q.findingsFilter()
	n, err := risk.CountFindings(ctx, st, f, q.SLAState)
	if err != nil {
		return nil, backend.DownstreamError(err)
	}
	fr := data.NewFrame("count", data.NewField("findings", nil, []int64{int64(n)}))
	fr.Meta = &data.FrameMeta{Type: data.FrameTypeNumericWide, TypeVersion: data.FrameTypeVersion{0, 1}}
	return fr, nil
}

func runHosts(ctx context.Context, st store.Store, q Query, _ []byte, _ backend.TimeRange) (*data.Frame, error) {
	t, err := risk.Hosts(ctx, st, q.hostFilter(), risk.Page{Limit: q.Limit})
	if err != nil {
		return nil, backend.DownstreamError(err)
	}
	return tableFrame("hosts", t)
}

// CheckHealth is Grafana's "Save & test": the settings, a round trip to
// the store, a ClickHouse new enough for the analytics views, and the views
// themselves (the migrations were applied), read through the same KPI code
// the panels use.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	fail := func(format string, args ...any) (*backend.CheckHealthResult, error) {
		msg := fmt.Sprintf(format, args...)
		d.log.Warn("health check failed", "message", msg)
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: msg}, nil
	}
	st, err := d.store(ctx)
	if err != nil {
		return fail("%v", err)
	}
	ver, err := st.ServerVersion(ctx)
	if err != nil {
		return fail("%s store does not answer: %v", st.Backend(), err)
	}
	if err := schemas.RequireAnalytics(ctx, st); err != nil {
		return fail("%v", err)
	}
	t, err := kpi.Run(ctx, st, "open_exposure", kpi.Query{Dimension: "all"})
	if err != nil {
		return fail("patchgrid schema missing or incomplete (run `patchgrid migrate` against this store): %v", err)
	}
	open := 0.0
	if i := t.Column("open_exposures"); i >= 0 {
		for _, row := range t.Rows {
			open += toFloat(deref(row[i]))
		}
	}
	details, _ := json.Marshal(map[string]any{"backend": st.Backend(), "version": ver.Text})
	msg := fmt.Sprintf("patchgrid on %s %s: schema present, %.0f open exposures", st.Backend(), ver.Text, open)
	if d.settings.IgnoredCHDBLib != "" {
		msg += "; jsonData.chdbLib is ignored (Grafana's administrator sets the library: GF_PLUGIN_CHDB_LIB or PATCHGRID_CHDB_LIB)"
	}
	return &backend.CheckHealthResult{
		Status:      backend.HealthStatusOk,
		Message:     msg,
		JSONDetails: details,
	}, nil
}

// CallResource serves the query editor's lookups (routes).
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	return d.resources.CallResource(ctx, req, sender)
}

// KPIInfo is one entry of the /kpis resource.
type KPIInfo struct {
	Name      string   `json:"name"`
	Summary   string   `json:"summary"`
	PerPolicy bool     `json:"per_policy"`
	Breakdown []string `json:"breakdown"` // columns the rows are keyed by
}

// Catalog is the /kpis resource: what the query editor offers.
type Catalog struct {
	KPIs         []KPIInfo `json:"kpis"`
	Dimensions   []string  `json:"dimensions"`
	QueryTypes   []string  `json:"query_types"`
	TrendMetrics []string  `json:"trend_metrics"`
	Severities   []string  `json:"severities"`
}

func (d *Datasource) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /kpis", func(w http.ResponseWriter, _ *http.Request) {
		c := Catalog{
			Dimensions:   kpi.Dimensions,
			QueryTypes:   QueryTypes,
			TrendMetrics: TrendMetrics,
			Severities:   severity.All,
		}
		for _, k := range kpi.All() {
			c.KPIs = append(c.KPIs, KPIInfo{k.Name, k.Summary, k.Policy, k.OrderBy})
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(c); err != nil {
			d.log.Error("write /kpis", "err", err)
		}
	})
	// Template variable values (the frontend's metricFindQuery):
	// ?field=ring|owner|os|severity|advisory, &prefix= for advisories,
	// &limit= (default and most risk.MaxValues). Answers a JSON array of
	// strings.
	mux.HandleFunc("GET /values", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit := risk.MaxValues
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil {
				http.Error(w, fmt.Sprintf("limit %q is not a number", l), http.StatusBadRequest)
				return
			}
			limit = n
		}
		field := q.Get("field")
		if !slices.Contains(risk.ValueFields, field) {
			http.Error(w, fmt.Sprintf("unknown field %q (want one of %s)", field, strings.Join(risk.ValueFields, ", ")), http.StatusBadRequest)
			return
		}
		st, err := d.store(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		vals, err := risk.Values(r.Context(), st, field, q.Get("prefix"), limit)
		if err != nil {
			d.log.Error("template variable values", "field", field, "err", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if vals == nil {
			vals = []string{}
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(vals); err != nil {
			d.log.Error("write /values", "err", err)
		}
	})
	return mux
}
