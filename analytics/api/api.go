// Package api serves patchgrid's HTTP API: KPIs, findings, hosts, risk
// breakdowns and exports as JSON (exports also as Arrow IPC, Parquet, CSV),
// plus /metrics and /healthz. Handlers only call analytics/kpi,
// analytics/risk and analytics/export, the functions the CLI and the Grafana
// plugin call, so every client sees the same numbers.
//
// Every request is authenticated with a bearer token (analytics/auth) and
// checked against the role its route declares (routes.go); guard.go holds
// the checks and limits every request passes, in order: request id, Host
// allow-list, CORS, authentication and role, the concurrency cap, the
// request timeout. SECURITY.md at the repository root is the operator's
// view of the same.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/sqlaccess"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Config configures the API. Store, Logger and Tokens are required.
type Config struct {
	Store  store.Store
	Logger *slog.Logger
	// Tokens authenticates requests (Authorization: Bearer <token>).
	Tokens *auth.Tokens
	// Audit is the store's audit trail, shared with Tokens: one process
	// appends through one Log. Default: a new one on Store.
	Audit *audit.Log
	// ExceptionMaxDuration caps an exception's lifetime (default 90 days).
	ExceptionMaxDuration time.Duration
	// SQL bounds POST /api/v1/sql statements (sqlaccess defaults).
	SQL sqlaccess.Options
	// Metrics receives the API's own metrics and is what /metrics serves.
	// Default: a new set.
	Metrics *metrics.Set
	// DefaultPage and MaxPage bound findings and hosts pages. Defaults 100
	// and 10000. limit=max asks for MaxPage.
	DefaultPage, MaxPage int
	// HealthTimeout bounds the store check of /healthz. Default 5s.
	HealthTimeout time.Duration

	// PublicHealthz and PublicMetrics serve /healthz and /metrics without
	// a token (load balancers, Prometheus); otherwise they need a viewer.
	PublicHealthz, PublicMetrics bool
	// AllowedHosts are the host names a request's Host header may name,
	// besides IP literals and "localhost" (which DNS rebinding cannot
	// forge). "*" allows any name. A request naming another host is
	// refused with 403 before anything else runs.
	AllowedHosts []string
	// CORSOrigins are the browser origins allowed to call the API
	// ("https://grafana.example.com"; "*" any). Empty: CORS is off, no
	// Access-Control-* header is ever sent.
	CORSOrigins []string

	// RequestTimeout bounds each request, streaming exports included.
	// Default 2m.
	RequestTimeout time.Duration
	// MaxConcurrent caps requests that run store queries at once;
	// QueueWait is how long one more waits for a slot before it is
	// answered 503 with Retry-After. Defaults 8 and 2s.
	MaxConcurrent int
	QueueWait     time.Duration

	// Heavy requests run in a lane of their own, so that a burst of them
	// never holds the slots quick reads need (issue 15: 20 concurrent
	// limit=max pages held every slot, and half of 2,000 quick reads
	// were refused). Heavy are findings pages of more than HeavyPage
	// rows (limit=max among them) and exports that run. MaxHeavy of them
	// run at once, besides MaxConcurrent quick ones; the others queue,
	// at most MaxHeavyQueued, each up to HeavyQueueWait, then get 503
	// with Retry-After. A heavy page is worth waiting for: it is
	// refused only past those bounds (a waiting request costs a
	// goroutine and a socket, nothing in the engine). Defaults 1000 rows,
	// max(1, MaxConcurrent/4), 8*MaxConcurrent waiting, and twice
	// RequestTimeout. A store's connection pool should hold
	// MaxConcurrent+MaxHeavy connections and one for /healthz.
	HeavyPage, MaxHeavy, MaxHeavyQueued int
	HeavyQueueWait                      time.Duration
}

type server struct {
	cfg Config
	// quick and heavy are the concurrency caps of the two lanes (see
	// Config.MaxHeavy).
	quick, heavy *lane
}

// New returns the API's handler.
func New(cfg Config) (http.Handler, error) {
	if cfg.Store == nil || cfg.Logger == nil || cfg.Tokens == nil {
		return nil, errors.New("api: Config.Store, Config.Logger and Config.Tokens are required")
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
	if cfg.DefaultPage > cfg.MaxPage {
		cfg.DefaultPage = cfg.MaxPage
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 5 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 2 * time.Minute
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 8
	}
	if cfg.QueueWait <= 0 {
		cfg.QueueWait = 2 * time.Second
	}
	if cfg.HeavyPage <= 0 {
		cfg.HeavyPage = 1000
	}
	if cfg.MaxHeavy <= 0 {
		cfg.MaxHeavy = max(1, cfg.MaxConcurrent/4)
	}
	if cfg.MaxHeavyQueued <= 0 {
		cfg.MaxHeavyQueued = 8 * cfg.MaxConcurrent
	}
	if cfg.HeavyQueueWait <= 0 {
		cfg.HeavyQueueWait = 2 * cfg.RequestTimeout
	}
	s := &server{cfg: cfg,
		quick: &lane{slots: make(chan struct{}, cfg.MaxConcurrent), wait: cfg.QueueWait},
		heavy: &lane{slots: make(chan struct{}, cfg.MaxHeavy), wait: cfg.HeavyQueueWait, maxQueued: int64(cfg.MaxHeavyQueued)}}
	s.registerMetrics()
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.Pattern, s.guard(rt))
	}
	// Unknown paths and methods are answered by the mux behind the same
	// outer checks (request id, Host, CORS), never with a stack or a path
	// echo beyond the mux's plain 404/405.
	return s.outer(mux), nil
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
		// The store's error (addresses, engine text) goes to the log only.
		s.cfg.Logger.Warn("health check failed", "request_id", RequestID(r), "err", truncate(err.Error(), maxLogError))
		return writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "backend": s.cfg.Store.Backend(), "request_id": RequestID(r)})
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "backend": s.cfg.Store.Backend(), "version": v.Text})
}

func (s *server) metrics(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	s.cfg.Metrics.WritePrometheus(w)
	return nil
}

// whoami answers the caller's token: its id, name, role and expiry.
func (s *server) whoami(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, Caller(r))
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
		return &httpError{status: http.StatusNotFound, msg: err.Error()}
	}
	q := r.URL.Query()
	query := kpi.Query{Dimension: q.Get("dimension"), Value: q.Get("value"), Policy: q.Get("policy"), Severity: q.Get("severity"),
		Exceptions: q.Get("exceptions")}
	if _, _, err := k.SQL(query); err != nil {
		return badRequest(err)
	}
	t, err := kpi.Run(r.Context(), s.cfg.Store, name, query)
	if err != nil {
		return err
	}
	exc, _ := risk.ParseExceptions(query.Exceptions) // checked by k.SQL
	return writeJSON(w, http.StatusOK, map[string]any{"kpi": name, "view": k.View, "exceptions": exc, "rows": t.Records()})
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
		if v := r.URL.Query().Get(f.name); v == "max" && f.name == "limit" {
			p.Limit = s.cfg.MaxPage
		} else if v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return p, badRequest(fmt.Errorf("%s %q: want a non-negative integer", f.name, v))
			}
			*f.dst = n
		}
	}
	if p.Limit == 0 || p.Limit > s.cfg.MaxPage {
		return p, badRequest(fmt.Errorf("limit must be 1..%d or max", s.cfg.MaxPage))
	}
	if p.Offset > maxOffset {
		return p, badRequest(fmt.Errorf("offset must be at most %d (use filters, or the export, to reach further)", maxOffset))
	}
	return p, nil
}

// pageCost is the lane of a findings page: heavy past HeavyPage rows. A
// limit that is not a number is left to page() to refuse.
func (s *server) pageCost(r *http.Request) cost {
	n := s.cfg.DefaultPage
	switch v := r.URL.Query().Get("limit"); v {
	case "":
	case "max":
		n = s.cfg.MaxPage
	default:
		n, _ = strconv.Atoi(v)
	}
	if n > s.cfg.HeavyPage {
		return costHeavy
	}
	return costQuick
}

// exportCost: an export is heavy; a HEAD on it runs nothing (see export).
func exportCost(r *http.Request) cost {
	if r.Method == http.MethodHead {
		return costNone
	}
	return costHeavy
}

func (s *server) findings(w http.ResponseWriter, r *http.Request) error {
	f, err := risk.ParseFilter(param(r))
	if err != nil {
		return badRequest(err)
	}
	// Ranking only: exceptions never remove a finding from a page.
	if f.Exceptions = r.URL.Query().Get("exceptions"); f.Validate() != nil {
		return badRequest(f.Validate())
	}
	p, err := s.page(r)
	if err != nil {
		return err
	}
	return s.findingsPage(w, r, f, p, nil)
}

// maxOffset bounds how deep a page may start: the engine sorts
// offset+limit rows to cut a page out, so a deep offset costs as much as
// an export.
const maxOffset = 1_000_000

func (s *server) hosts(w http.ResponseWriter, r *http.Request) error {
	get := param(r)
	f := risk.HostFilter{Ring: get("ring"), Owner: get("owner"), OS: get("os"), Exceptions: get("exceptions")}
	if _, err := risk.ParseExceptions(f.Exceptions); err != nil {
		return badRequest(err)
	}
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
	f := risk.Filter{HostID: id, Exceptions: r.URL.Query().Get("exceptions")}
	if err := f.Validate(); err != nil {
		return badRequest(err)
	}
	return s.findingsPage(w, r, f, p, map[string]any{"host": t.Records()[0]})
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
	if format == "parquet" || format == "arrow" || format == "arrow-stream" {
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="findings.%s"`, strings.TrimSuffix(format, "-stream")))
	}
	if r.Method == http.MethodHead {
		// HEAD checks the parameters and shows the headers; running the
		// export only to discard it would cost a full export per probe.
		w.WriteHeader(http.StatusOK)
		return nil
	}
	// Errors before the first batch still answer with a status and JSON:
	// the headers go out only with the first write.
	n, err := risk.Export(r.Context(), s.cfg.Store, f, format, w, 0)
	s.cfg.Metrics.GetOrCreateCounter(fmt.Sprintf(`patchgrid_export_rows_total{format=%q}`, format)).Add(int(n))
	return err
}
