package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patchgrid/patchgrid/analytics/api"
	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// API load test (issue 15): the HTTP API as `patchgrid serve` configures
// it (tokens, concurrency cap, bounded pool, memory budget) on the export
// fleet, served and loaded on 127.0.0.1 in this process: apiRequests mixed
// requests from apiWorkers workers while apiHeavy clients each ask for
// findings?limit=max at once. Goals: no error apart from deliberate 503s
// (the cap), peak RSS of the process at most 1 GB during the load, and the
// mixed requests' p99 beside /healthz's p99 of the same run.
const (
	apiRequests     = 2000
	apiQuickRequest = 200
	apiWorkers      = 20
	apiHeavy        = 20
	apiRSSGoalMB    = 1024
	// apiMemoryBudget is serve's default --memory-budget-mb.
	apiMemoryBudget = 512 << 20
)

func stepAPI(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	if err := ensureFixture(ctx, cfg, log, out); err != nil {
		return err
	}
	maxConcurrent := max(2, 2*runtime.GOMAXPROCS(0)) // serve's default
	st, err := store.Open(ctx, store.Config{Backend: "chdb", DataDir: fixtureDir(cfg), CHDBLib: cfg.CHDBLib, Database: "patchgrid",
		MaxConns: maxConcurrent + 4, MemoryBudget: apiMemoryBudget})
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := schemas.Migrate(ctx, st, quiet(log)); err != nil {
		return err
	}
	tokens := auth.New(st, auth.Options{})
	secret, _, err := tokens.Create(ctx, auth.CreateRequest{Name: "pgbench", Role: auth.Viewer, TTL: time.Hour, CreatedBy: "pgbench"})
	if err != nil {
		return err
	}
	targets, err := apiTargets(ctx, st)
	if err != nil {
		return err
	}
	h, err := api.New(api.Config{Store: st, Logger: quiet(log), Tokens: tokens, PublicHealthz: true,
		MaxConcurrent: maxConcurrent, QueueWait: 2 * time.Second, RequestTimeout: 2 * time.Minute})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	// The fixture was built (and maybe exported) in this process: reset
	// the peak so it measures the load alone.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		log.Warn("cannot reset the peak RSS; it includes the setup", "err", err)
	}
	runtime.GC()

	n := apiRequests
	if cfg.Quick {
		n = apiQuickRequest
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: apiWorkers + apiHeavy}, Timeout: 5 * time.Minute}
	res := &apiResults{byKind: map[string][]time.Duration{}, overByKind: map[string]int{}, failedByKind: map[string]int{}}
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := range apiHeavy {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.do(ctx, hc, base, secret, apiCall{"findings_max", "/api/v1/findings?limit=max", "GET"}, i)
		}()
	}
	var next atomic.Int64
	for range apiWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				res.do(ctx, hc, base, secret, targets[i%len(targets)], i)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(t0)
	peak := peakRSSMB(os.Getpid())

	var mixed []time.Duration
	for kind, d := range res.byKind {
		if kind != "healthz" && kind != "findings_max" {
			mixed = append(mixed, d...)
		}
	}
	health, heavy := res.byKind["healthz"], res.byKind["findings_max"]
	log.Info("api load", "requests", n+apiHeavy, "ok", res.ok.Load(), "503", res.overloaded.Load(), "errors", res.errors.Load(),
		"p99", percentile(mixed, 0.99), "healthz_p99", percentile(health, 0.99), "peak_rss_mb", peak, "took", wall.Round(time.Millisecond))
	out.Info["api_requests"], out.Info["api_ok"], out.Info["api_503"], out.Info["api_errors"] = n+apiHeavy, res.ok.Load(), res.overloaded.Load(), res.errors.Load()
	out.Info["api_max_concurrent"], out.Info["api_memory_budget_mb"] = maxConcurrent, apiMemoryBudget>>20
	out.Info["api_max_heavy"] = max(1, maxConcurrent/4) // api.Config's default
	out.Info["api_503_by_kind"] = res.overByKind
	// Latencies of the answered requests of each kind, to tell which
	// endpoint a slow p99 comes from.
	byKind := map[string]string{}
	for kind, d := range res.byKind {
		byKind[kind] = fmt.Sprintf("n=%d p50=%.0fms p99=%.0fms", len(d), ms(percentile(d, 0.5)), ms(percentile(d, 0.99)))
	}
	out.Info["api_latency_by_kind"] = byKind
	if e := res.firstError.Load(); e != nil {
		out.Info["api_first_error"] = *e
		out.Info["api_errors_by_kind"] = res.failedByKind
	}
	note := fmt.Sprintf("%d mixed requests, %d workers, plus %d concurrent findings?limit=max; %d answered 503 (cap %d)",
		n, apiWorkers, apiHeavy, res.overloaded.Load(), maxConcurrent)
	out.Metrics = append(out.Metrics,
		ratio(Metric{Name: "API p99, mixed requests", Value: ms(percentile(mixed, 0.99)), Unit: "ms", Better: "lower", Note: note},
			"/healthz p99, same run", ms(percentile(health, 0.99))),
		Metric{Name: "API p50, mixed requests", Value: ms(percentile(mixed, 0.5)), Unit: "ms", Better: "lower"},
		Metric{Name: "API p99, findings?limit=max", Value: ms(percentile(heavy, 0.99)), Unit: "ms", Better: "lower",
			Note: fmt.Sprintf("%d of %d answered, %d 503, %d failed", len(heavy), apiHeavy, res.overByKind["findings_max"], res.failedByKind["findings_max"])},
		ratio(Metric{Name: "API peak RSS under load", Value: peak, Unit: "MB", Better: "lower"}, "goal: 1 GB", apiRSSGoalMB),
		Metric{Name: "API errors (not 503)", Value: float64(res.errors.Load()), Unit: "requests", Better: "lower"},
		Metric{Name: "API throughput", Value: float64(n+apiHeavy) / wall.Seconds(), Unit: "requests/s", Better: "higher"},
	)
	if e := res.errors.Load(); e > 0 {
		return fmt.Errorf("%d API requests failed (first: %s)", e, *res.firstError.Load())
	}
	if len(heavy) == 0 {
		return errors.New("no findings?limit=max request was answered")
	}
	return nil
}

type apiCall struct{ kind, path, method string }

// apiTargets is the mix: reads of every kind the API serves, on real ids
// of the fixture, and a HEAD on an export.
func apiTargets(ctx context.Context, st store.Store) ([]apiCall, error) {
	var host, source, adv string
	if err := queryCount(ctx, st, "SELECT host_id, source, advisory_id FROM finding_risk ORDER BY risk_score DESC LIMIT 1", &host, &source, &adv); err != nil {
		return nil, err
	}
	if host == "" {
		return nil, errors.New("the export fleet has no findings")
	}
	q := url.Values{"host": {host}, "source": {source}, "advisory": {adv}}.Encode()
	return []apiCall{
		{"healthz", "/healthz", "GET"},
		{"findings", "/api/v1/findings", "GET"},
		{"kpis", "/api/v1/kpis", "GET"},
		{"kpi", "/api/v1/kpis/patch_coverage?dimension=ring", "GET"},
		{"findings", "/api/v1/findings?severity=critical,high&limit=500", "GET"},
		{"healthz", "/healthz", "GET"},
		{"hosts", "/api/v1/hosts?limit=50", "GET"},
		{"host", "/api/v1/hosts/" + url.PathEscape(host) + "?limit=50", "GET"},
		{"kpi", "/api/v1/kpis/mttr?dimension=owner", "GET"},
		{"risk", "/api/v1/risk?" + q, "GET"},
		{"healthz", "/healthz", "GET"},
		{"findings", "/api/v1/findings?kev=true&offset=100", "GET"},
		{"export_head", "/api/v1/export?format=parquet", "HEAD"},
		{"kpi", "/api/v1/kpis/sla_compliance", "GET"},
	}, nil
}

type apiResults struct {
	mu     sync.Mutex
	byKind map[string][]time.Duration
	// overByKind and failedByKind count the 503s and the failures of
	// each kind, so a note never calls a failure a 503.
	overByKind, failedByKind map[string]int
	ok, overloaded, errors   atomic.Int64
	firstError               atomic.Pointer[string]
}

func (r *apiResults) do(ctx context.Context, hc *http.Client, base, token string, c apiCall, i int) {
	req, err := http.NewRequestWithContext(ctx, c.method, base+c.path, nil)
	if err != nil {
		r.fail(c, err.Error())
		return
	}
	req.Header.Set("Authorization", "Bearer "+token)
	t0 := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		r.fail(c, err.Error())
		return
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	switch {
	case err != nil:
		r.fail(c, "read body: "+err.Error())
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
		r.overloaded.Add(1)
		r.mu.Lock()
		r.overByKind[c.kind]++
		r.mu.Unlock()
	case resp.StatusCode/100 != 2:
		r.fail(c, "status "+strconv.Itoa(resp.StatusCode))
	default:
		r.ok.Add(1)
		r.mu.Lock()
		r.byKind[c.kind] = append(r.byKind[c.kind], d)
		r.mu.Unlock()
	}
}

func (r *apiResults) fail(c apiCall, msg string) {
	r.errors.Add(1)
	r.mu.Lock()
	r.failedByKind[c.kind]++
	r.mu.Unlock()
	s := c.method + " " + c.path + ": " + msg
	r.firstError.CompareAndSwap(nil, &s)
}
