// Package api serves patchgrid's HTTP API: KPIs, findings, hosts, risk
// breakdowns and exports as JSON (exports also as Arrow IPC, Parquet, CSV),
// plus /metrics and /healthz. Handlers only call analytics/kpi,
// analytics/risk and analytics/export, the functions the CLI and the Grafana
// plugin call, so every client sees the same numbers.
package api

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
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Config configures the API. Store and Logger are required.
type Config struct {
	Store  store.Store
	Logger *slog.Logger
	// Metrics receives the API's own metrics and is what /metrics serves.
	// Default: a new set.
	Metrics *metrics.Set
	// DefaultPage and MaxPage bound findings and hosts pages. Defaults 100
	// and 10000.
	DefaultPage, MaxPage int
	// HealthTimeout bounds the store check of /healthz. Default 5s.
	HealthTimeout time.Duration
}

type server struct {
	cfg Config
}

// New returns the API's handler.
func New(cfg Config) (http.Handler, error) {
	if cfg.Store == nil || cfg.Logger == nil {
		return nil, errors.New("api: Config.Store and Config.Logger are required")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.NewSet()
	}
	if cfg.DefaultPage <= 0 {
		cfg.DefaultPage = 100
	}
	if cfg.MaxPage <= 0 {
		cfg.MaxPage = 10000
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 5 * time.Second
	}
	s := &server{cfg: cfg}
	mux := http.NewServeMux()
	route := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, s.instrument(pattern, h))
	}
	route("GET /healthz", s.healthz)
	route("GET /metrics", s.metrics)
	route("GET /api/v1/kpis", s.kpiList)
	route("GET /api/v1/kpis/{name}", s.kpi)
	route("GET /api/v1/findings", s.findings)
	route("GET /api/v1/hosts", s.hosts)
	route("GET /api/v1/hosts/{id}", s.host)
	route("GET /api/v1/risk", s.risk)
	route("GET /api/v1/export", s.export)
	return mux, nil
}

// httpError is an error with the status it answers with.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }

func badRequest(err error) error { return &httpError{http.StatusBadRequest, err} }
func notFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, fmt.Errorf(format, args...)}
}

// statusWriter remembers the status and size of a response for the log
// and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// instrument runs h, turns its error into a JSON error answer (when nothing
// was written yet), logs the request and counts it in the metrics.
func (s *server) instrument(pattern string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	route := pattern[strings.IndexByte(pattern, ' ')+1:]
	dur := s.cfg.Metrics.GetOrCreateSummary(fmt.Sprintf(`patchgrid_http_request_duration_seconds{route=%q}`, route))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		err := h(sw, r)
		if err != nil {
			status := http.StatusInternalServerError
			var he *httpError
			if errors.As(err, &he) {
				status = he.status
			}
			if sw.status == 0 {
				writeJSON(sw, status, map[string]string{"error": err.Error()})
			} else {
				// Streaming had begun: the status is sent, the body is cut.
				status = sw.status
			}
			s.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		}
		dur.UpdateDuration(start)
		s.cfg.Metrics.GetOrCreateCounter(fmt.Sprintf(`patchgrid_http_requests_total{route=%q,code="%d"}`, route, sw.status)).Inc()
		s.cfg.Logger.Info("http request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
			"status", sw.status, "bytes", sw.bytes, "duration", time.Since(start))
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	return enc.Encode(v)
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.HealthTimeout)
	defer cancel()
	v, err := s.cfg.Store.ServerVersion(ctx)
	if err == nil {
		var rows store.Rows
		if rows, err = s.cfg.Store.Query(ctx, "SELECT 1"); err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
	}
	if err != nil {
		return writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "backend": s.cfg.Store.Backend(), "error": err.Error()})
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "backend": s.cfg.Store.Backend(), "version": v.Text})
}

func (s *server) metrics(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	s.cfg.Metrics.WritePrometheus(w)
	return nil
}

func (s *server) kpiList(w http.ResponseWriter, _ *http.Request) error {
	type item struct {
		Name    string `json:"name"`
		View    string `json:"view"`
		Summary string `json:"summary"`
		Policy  bool   `json:"per_policy"`
	}
	var out []item
	for _, k := range kpi.All() {
		out = append(out, item{k.Name, k.View, k.Summary, k.Policy})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"kpis": out, "dimensions": kpi.Dimensions})
}

func (s *server) kpi(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	k, err := kpi.Lookup(name)
	if err != nil {
		return &httpError{http.StatusNotFound, err}
	}
	q := r.URL.Query()
	query := kpi.Query{Dimension: q.Get("dimension"), Value: q.Get("value"), Policy: q.Get("policy"), Severity: q.Get("severity")}
	if _, _, err := k.SQL(query); err != nil {
		return badRequest(err)
	}
	t, err := kpi.Run(r.Context(), s.cfg.Store, name, query)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"kpi": name, "view": k.View, "rows": t.Records()})
}

// param reads a query parameter by its CLI spelling (min-risk) or with
// an underscore (min_risk).
func param(r *http.Request) func(string) string {
	q := r.URL.Query()
	return func(name string) string {
		if v := q.Get(name); v != "" {
			return v
		}
		return q.Get(strings.ReplaceAll(name, "-", "_"))
	}
}

func (s *server) page(r *http.Request) (risk.Page, error) {
	p := risk.Page{Limit: s.cfg.DefaultPage}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"limit", &p.Limit}, {"offset", &p.Offset}} {
		if v := r.URL.Query().Get(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return p, badRequest(fmt.Errorf("%s %q: want a non-negative integer", f.name, v))
			}
			*f.dst = n
		}
	}
	if p.Limit == 0 || p.Limit > s.cfg.MaxPage {
		return p, badRequest(fmt.Errorf("limit must be 1..%d", s.cfg.MaxPage))
	}
	return p, nil
}

func (s *server) findings(w http.ResponseWriter, r *http.Request) error {
	f, err := risk.ParseFilter(param(r))
	if err != nil {
		return badRequest(err)
	}
	p, err := s.page(r)
	if err != nil {
		return err
	}
	return s.findingsPage(w, r, f, p, nil)
}

// findingsPage answers one page of findings; extra adds fields (host detail).
func (s *server) findingsPage(w http.ResponseWriter, r *http.Request, f risk.Filter, p risk.Page, extra map[string]any) error {
	// One row more than the page tells whether a next page exists.
	rows, err := risk.Findings(r.Context(), s.cfg.Store, f, &risk.Page{Limit: p.Limit + 1, Offset: p.Offset})
	if err != nil {
		return err
	}
	t, err := export.ReadTable(rows, 0)
	if err != nil {
		return err
	}
	out := map[string]any{"limit": p.Limit, "offset": p.Offset}
	for k, v := range extra {
		out[k] = v
	}
	if len(t.Rows) > p.Limit {
		t.Rows = t.Rows[:p.Limit]
		out["next_offset"] = p.Offset + p.Limit
	}
	out["findings"] = t.Records()
	return writeJSON(w, http.StatusOK, out)
}

func (s *server) hosts(w http.ResponseWriter, r *http.Request) error {
	get := param(r)
	f := risk.HostFilter{Ring: get("ring"), Owner: get("owner"), OS: get("os")}
	if v := get("min-risk"); v != "" {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return badRequest(fmt.Errorf("min-risk %q: not a number", v))
		}
		f.MinRisk = x
	}
	p, err := s.page(r)
	if err != nil {
		return err
	}
	t, err := risk.Hosts(r.Context(), s.cfg.Store, f, risk.Page{Limit: p.Limit + 1, Offset: p.Offset})
	if err != nil {
		return err
	}
	out := map[string]any{"limit": p.Limit, "offset": p.Offset}
	if len(t.Rows) > p.Limit {
		t.Rows = t.Rows[:p.Limit]
		out["next_offset"] = p.Offset + p.Limit
	}
	out["hosts"] = t.Records()
	return writeJSON(w, http.StatusOK, out)
}

func (s *server) host(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	t, ok, err := risk.Host(r.Context(), s.cfg.Store, id)
	if err != nil {
		return err
	}
	if !ok {
		return notFound("host %q not found", id)
	}
	p, err := s.page(r)
	if err != nil {
		return err
	}
	return s.findingsPage(w, r, risk.Filter{HostID: id}, p, map[string]any{"host": t.Records()[0]})
}

func (s *server) risk(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	host, source, adv := q.Get("host"), q.Get("source"), q.Get("advisory")
	if host == "" || source == "" || adv == "" {
		return badRequest(errors.New("host, source and advisory are required"))
	}
	b, ok, err := risk.Explain(r.Context(), s.cfg.Store, host, source, adv)
	if err != nil {
		return err
	}
	if !ok {
		return notFound("host %q has no exposure to %s %s", host, source, adv)
	}
	return writeJSON(w, http.StatusOK, b)
}

func (s *server) export(w http.ResponseWriter, r *http.Request) error {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	f, err := risk.ParseFilter(param(r))
	if err != nil {
		return badRequest(err)
	}
	if !slices.Contains(export.Formats, format) {
		return badRequest(fmt.Errorf("unknown export format %q (want one of %v)", format, export.Formats))
	}
	w.Header().Set("Content-Type", export.ContentType(format))
	if format == "parquet" || format == "arrow" {
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="findings.%s"`, format))
	}
	// Errors before the first batch still answer with a status and JSON:
	// the headers go out only with the first write.
	n, err := risk.Export(r.Context(), s.cfg.Store, f, format, w, 0)
	s.cfg.Metrics.GetOrCreateCounter(fmt.Sprintf(`patchgrid_export_rows_total{format=%q}`, format)).Add(int(n))
	return err
}
