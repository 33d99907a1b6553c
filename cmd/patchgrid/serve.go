package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/patchgrid/patchgrid/analytics/api"
	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// runServe serves the HTTP API until ctx ends (SIGINT/SIGTERM), then drains
// requests in flight for up to --shutdown-timeout. Every request needs a
// token (`patchgrid token create`); SECURITY.md explains the flags.
func runServe(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve HTTP on")
	maxPage := fs.Int("max-page", 10000, "largest page of findings or hosts one request may ask for (limit=max)")
	shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "how long to let requests in flight finish on shutdown")
	tlsCert := fs.String("tls-cert", "", "PEM certificate (chain) to serve HTTPS with; needs --tls-key")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	allowedHosts := fs.String("allowed-hosts", "", "comma-separated host names clients may reach the API by (Host header), besides IP addresses and localhost; * allows any")
	corsOrigins := fs.String("cors-origins", "", "comma-separated browser origins allowed to call the API (e.g. https://grafana.example.com); empty: CORS off")
	publicHealthz := fs.Bool("public-healthz", true, "serve /healthz without a token")
	publicMetrics := fs.Bool("public-metrics", false, "serve /metrics without a token")
	reqTimeout := fs.Duration("request-timeout", 2*time.Minute, "longest a request (an export included) may run")
	maxConcurrent := fs.Int("max-concurrent", max(2, 2*runtime.GOMAXPROCS(0)), "requests running store queries at once; more wait --queue-wait, then get 503 with Retry-After")
	queueWait := fs.Duration("queue-wait", 2*time.Second, "how long a request waits for a free slot before 503")
	memBudget := fs.Int("memory-budget-mb", 512, "embedded store: the most memory all queries may use together, in MiB (one query gets half); 0: the engine's default")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(env.stderr, "patchgrid serve: "+format+"\n", a...)
		return code
	}
	if fs.NArg() != 0 {
		return fail(exitUsage, "takes no arguments")
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return fail(exitUsage, "--tls-cert and --tls-key go together")
	}
	if *maxConcurrent < 1 || *memBudget < 0 {
		return fail(exitUsage, "--max-concurrent must be at least 1 and --memory-budget-mb not negative")
	}
	var tlsCfg *tls.Config
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fail(exitUsage, "--tls-cert %s / --tls-key %s: %v", *tlsCert, *tlsKey, err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	log := env.logger(nil)
	cfg, err := sf.config()
	if err != nil {
		return fail(exitFailure, "open %s store: %v", sf.backend, err)
	}
	// The pool leaves room beyond the request cap for /healthz and token
	// checks, which bypass the cap.
	cfg.MaxConns = *maxConcurrent + 4
	cfg.MemoryBudget = int64(*memBudget) << 20
	if err := sf.checkDataDir(); err != nil {
		return fail(exitFailure, "%v", err)
	}
	st, err := store.Open(ctx, cfg)
	if err != nil {
		return fail(exitFailure, "open %s store: %v", sf.backend, err)
	}
	defer st.Close()
	if err := schemas.RequireAnalytics(ctx, st); err != nil {
		return fail(exitFailure, "%v", err)
	}
	// One audit log for the process: token and exception changes append
	// through it, so their entries never race for the same sequence number.
	auditLog := audit.New(st)
	tokens := auth.New(st, auth.Options{Audit: auditLog})
	// Every request needs a token: say so now rather than answer every
	// request 401 (or 500 on a store migrated before tokens existed).
	list, err := tokens.List(ctx)
	if err != nil {
		return fail(exitFailure, "%v (run 'patchgrid migrate', then 'patchgrid token create')", err)
	}
	active := 0
	for _, t := range list {
		if t.State(time.Now()) == "active" {
			active++
		}
	}
	if active == 0 {
		log.Warn("no active API token: every request except /healthz will be refused; create one with 'patchgrid token create --role viewer --name NAME'")
	}
	h, err := api.New(api.Config{
		Store: st, Logger: log, Metrics: metrics.NewSet(), MaxPage: *maxPage,
		Tokens: tokens, Audit: auditLog,
		PublicHealthz: *publicHealthz, PublicMetrics: *publicMetrics,
		AllowedHosts: splitList(*allowedHosts), CORSOrigins: splitList(*corsOrigins),
		RequestTimeout: *reqTimeout, MaxConcurrent: *maxConcurrent, QueueWait: *queueWait,
	})
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// The handler's own timeout ends a slow request first; this one
		// catches a client that stops reading.
		WriteTimeout:   *reqTimeout + 30*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsCfg)
	}
	log.Info("serving", "addr", ln.Addr().String(), "scheme", scheme, "store", st.Backend())
	// The embedded store admits one process: tell `patchgrid sql` (and
	// anyone else) where this one answers, for as long as it holds it.
	if st.Backend() == "chdb" {
		urlFile := filepath.Join(sf.dataDir, serveURLFile)
		if err := os.WriteFile(urlFile, []byte(scheme+"://"+ln.Addr().String()+"\n"), 0o644); err != nil {
			log.Warn("cannot advertise the API for patchgrid sql", "file", urlFile, "err", err)
		} else {
			defer os.Remove(urlFile)
		}
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fail(exitFailure, "%v", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), *shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fail(exitFailure, "shutdown: %v", err)
	}
	log.Info("stopped")
	return exitOK
}
