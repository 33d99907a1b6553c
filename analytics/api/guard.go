package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// httpError is an error with the status it answers with. msg is what the
// client reads; err (optional) is the detail, for the log only.
type httpError struct {
	status int
	msg    string
	err    error
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

// badRequest answers 400 with err's text: it is about the request's own
// parameters (our validation messages), never an engine exception.
func badRequest(err error) error { return &httpError{status: http.StatusBadRequest, msg: err.Error()} }

func notFound(format string, args ...any) error {
	return &httpError{status: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

// Bounds of what the log keeps of a client's input: issue 15 saw one 900 KB
// log line from a long query string.
const (
	maxLogQuery = 256
	maxLogError = 2048
)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("...(%d bytes)", len(s))
}

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyToken
)

// RequestID is the id of r (also in the X-Request-Id response header and
// in every log line of the request).
func RequestID(r *http.Request) string {
	id, _ := r.Context().Value(keyRequestID).(string)
	return id
}

// Caller is the token r was authenticated with (zero on public routes).
// Handlers that record who did something (audit, exceptions, plans) use
// its Name.
func Caller(r *http.Request) auth.Token {
	t, _ := r.Context().Value(keyToken).(auth.Token)
	return t
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// outer runs before routing, for every request: a request id, the Host
// allow-list (DNS rebinding: a hostile page on a name the attacker points
// at 127.0.0.1 sends its own name as Host) and CORS.
func (s *server) outer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		w.Header().Set("X-Request-Id", id)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		r = r.WithContext(context.WithValue(r.Context(), keyRequestID, id))
		if !s.hostAllowed(r.Host) {
			s.fail(w, r, &statusWriter{ResponseWriter: w}, "", &httpError{status: http.StatusForbidden, msg: "host not allowed",
				err: fmt.Errorf("Host %q is not in the allow-list", truncate(r.Host, 100))})
			return
		}
		if s.cors(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed: IP literals and localhost always (rebinding needs a name
// the attacker controls), then the configured names.
func (s *server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil || host == "localhost" {
		return true
	}
	for _, a := range s.cfg.AllowedHosts {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "."), host) {
			return true
		}
	}
	return false
}

// cors sets the CORS headers for an allowed origin and answers preflight
// requests; it reports whether it answered. With no origins configured it
// does nothing: browsers then refuse cross-origin reads.
func (s *server) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(s.cfg.CORSOrigins) == 0 {
		return false
	}
	if !slices.Contains(s.cfg.CORSOrigins, "*") && !slices.Contains(s.cfg.CORSOrigins, origin) {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
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

// errOverloaded is the concurrency cap's answer.
var errOverloaded = &httpError{status: http.StatusServiceUnavailable, msg: "too many requests in flight, retry later"}

// guard wraps a route: authentication and role, the concurrency cap, the
// timeout, then the handler; its error becomes the client's message and
// request id, the detail goes to the log.
func (s *server) guard(rt Route) http.Handler {
	route := rt.Pattern[strings.IndexByte(rt.Pattern, ' ')+1:]
	dur := s.cfg.Metrics.GetOrCreateSummary(fmt.Sprintf(`patchgrid_http_request_duration_seconds{route=%q}`, route))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		tok, err := s.serveRoute(sw, r, rt)
		if err != nil {
			s.fail(w, r, sw, tok.ID, err)
		}
		dur.UpdateDuration(start)
		s.cfg.Metrics.GetOrCreateCounter(fmt.Sprintf(`patchgrid_http_requests_total{route=%q,code="%d"}`, route, sw.status)).Inc()
		if err == nil {
			s.cfg.Logger.Info("http request", "method", r.Method, "path", truncate(r.URL.Path, maxLogQuery),
				"query", truncate(r.URL.RawQuery, maxLogQuery), "status", sw.status, "bytes", sw.bytes,
				"duration", time.Since(start), "request_id", RequestID(r), "token", tok.ID)
		}
	})
}

// serveRoute runs the route's checks and handler; it returns the caller's
// token (zero on public routes) for the log.
func (s *server) serveRoute(w *statusWriter, r *http.Request, rt Route) (auth.Token, error) {
	var tok auth.Token
	if !rt.Public {
		var err error
		if tok, err = s.authenticate(r); err != nil {
			return tok, err
		}
		if !tok.Role.Allows(rt.Role) {
			return tok, &httpError{status: http.StatusForbidden, msg: fmt.Sprintf("this needs the %s role", rt.Role),
				err: fmt.Errorf("token %s (%s) has role %s", tok.ID, tok.Name, tok.RoleName)}
		}
		r = r.WithContext(context.WithValue(r.Context(), keyToken, tok))
	}
	c := costQuick
	if rt.NoStore {
		c = costNone
	}
	if rt.Cost != nil {
		c = rt.Cost(r)
	}
	if c != costNone {
		l := s.quick
		if c == costHeavy {
			l = s.heavy
		}
		release, err := l.admit(r.Context())
		if err != nil {
			return tok, err
		}
		defer release()
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	return tok, rt.Handler(w, r.WithContext(ctx))
}

// authenticate reads the bearer token. Every failure is the same 401 to the
// client; the log says which (malformed, unknown, expired, revoked).
func (s *server) authenticate(r *http.Request) (auth.Token, error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return auth.Token{}, &httpError{status: http.StatusUnauthorized, msg: "authentication required: send Authorization: Bearer <token>"}
	}
	tok, err := s.cfg.Tokens.Verify(r.Context(), strings.TrimSpace(secret))
	switch {
	case err == nil:
		return tok, nil
	case errors.Is(err, auth.ErrMalformed), errors.Is(err, auth.ErrUnknown), errors.Is(err, auth.ErrExpired), errors.Is(err, auth.ErrRevoked):
		return tok, &httpError{status: http.StatusUnauthorized, msg: "invalid token", err: fmt.Errorf("token %s: %w", tok.ID, err)}
	}
	// The store failed: not the client's fault, and not a reason to let
	// the request through (fail closed).
	return auth.Token{}, err
}

// lane is a concurrency cap: one slot per running request. A request
// waits for a slot up to wait, and at most maxQueued wait at once (0: no
// bound but the wait); past either bound it gets errOverloaded.
type lane struct {
	slots     chan struct{}
	wait      time.Duration
	maxQueued int64
	queued    atomic.Int64
}

// admit takes a slot of the lane; the caller runs release when done.
func (l *lane) admit(ctx context.Context) (func(), error) {
	release := func() { <-l.slots }
	select {
	case l.slots <- struct{}{}:
		return release, nil
	default:
	}
	if n := l.queued.Add(1); l.maxQueued > 0 && n > l.maxQueued {
		l.queued.Add(-1)
		return nil, errOverloaded
	}
	defer l.queued.Add(-1)
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, errOverloaded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fail answers err (when nothing was written yet) with a message and the
// request id, and logs it: 5xx at ERROR with the detail, 4xx at INFO,
// truncated.
func (s *server) fail(w http.ResponseWriter, r *http.Request, sw *statusWriter, tokenID string, err error) {
	status, msg := http.StatusInternalServerError, "internal error"
	var he *httpError
	var pe *store.PoolExhaustedError
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.As(err, &pe), store.IsOverloaded(err):
		// The engine refused the query for lack of memory or query slots
		// under the configured budget: back-pressure, like the queue cap.
		status, msg = http.StatusServiceUnavailable, "the store is busy, retry later"
	case errors.Is(err, context.DeadlineExceeded):
		status, msg = http.StatusGatewayTimeout, "request timed out"
	case errors.Is(err, context.Canceled):
		// The client went away; 499 is the log's convention for it.
		status, msg = 499, "request canceled"
	}
	id := RequestID(r)
	if sw.status == 0 {
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(s.cfg.QueueWait.Seconds()))))
		}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="patchgrid"`)
		}
		if status == 499 {
			sw.status = status
		} else {
			_ = writeJSON(sw, status, map[string]string{"error": msg, "request_id": id})
		}
	} else {
		// Streaming had begun: the status is sent, the body is cut.
		status = sw.status
	}
	level := slog.LevelError
	if status < 500 {
		level = slog.LevelInfo
	}
	if errors.Is(err, errOverloaded) {
		// Shedding load is the cap doing its job: counted in the metrics,
		// logged at INFO so that a burst does not flood the log with
		// warnings.
		s.cfg.Metrics.GetOrCreateCounter(`patchgrid_http_overload_rejections_total`).Inc()
		level = slog.LevelInfo
	}
	s.cfg.Logger.Log(r.Context(), level, "request failed", "method", r.Method, "path", truncate(r.URL.Path, maxLogQuery),
		"query", truncate(r.URL.RawQuery, maxLogQuery), "status", status, "request_id", id, "token", tokenID,
		"err", truncate(err.Error(), maxLogError))
}

// registerMetrics adds gauges of the limits: requests holding a slot of the
// cap, and the store's connection pool when it reports one.
func (s *server) registerMetrics() {
	s.cfg.Metrics.GetOrCreateGauge(`patchgrid_http_inflight_queries`, func() float64 { return float64(len(s.quick.slots)) })
	s.cfg.Metrics.GetOrCreateGauge(`patchgrid_http_max_inflight_queries`, func() float64 { return float64(cap(s.quick.slots)) })
	s.cfg.Metrics.GetOrCreateGauge(`patchgrid_http_inflight_heavy`, func() float64 { return float64(len(s.heavy.slots)) })
	s.cfg.Metrics.GetOrCreateGauge(`patchgrid_http_max_inflight_heavy`, func() float64 { return float64(cap(s.heavy.slots)) })
	s.cfg.Metrics.GetOrCreateGauge(`patchgrid_http_queued_heavy`, func() float64 { return float64(s.heavy.queued.Load()) })
	if p, ok := s.cfg.Store.(interface{ PoolStats() (open, busy, max int) }); ok {
		s.cfg.Metrics.GetOrCreateGauge(`patchgrid_store_connections_open`, func() float64 { o, _, _ := p.PoolStats(); return float64(o) })
		s.cfg.Metrics.GetOrCreateGauge(`patchgrid_store_connections_busy`, func() float64 { _, b, _ := p.PoolStats(); return float64(b) })
	}
}
