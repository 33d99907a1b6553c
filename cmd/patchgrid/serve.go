package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/patchgrid/patchgrid/analytics/api"
	"github.com/patchgrid/patchgrid/schemas"
)

// runServe serves the HTTP API until ctx ends (SIGINT/SIGTERM), then drains
// requests in flight for up to --shutdown-timeout.
func runServe(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve HTTP on")
	maxPage := fs.Int("max-page", 10000, "largest page of findings or hosts one request may ask for")
	shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "how long to let requests in flight finish on shutdown")
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
	log := slog.New(slog.NewJSONHandler(env.stderr, nil))
	st, err := sf.open(ctx)
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	defer st.Close()
	if err := schemas.RequireAnalytics(ctx, st); err != nil {
		return fail(exitFailure, "%v", err)
	}
	h, err := api.New(api.Config{Store: st, Logger: log, Metrics: metrics.NewSet(), MaxPage: *maxPage})
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Info("serving", "addr", ln.Addr().String(), "store", st.Backend())
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
