package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// TestSecurity runs the checks and limits every request passes on one
// seeded chDB store (a store costs seconds to migrate).
func TestSecurity(t *testing.T) {
	fx := newFixture(t)
	for _, tc := range []struct {
		name string
		f    func(*testing.T, *fixture)
	}{
		{"auth_and_roles", testAuthAndRoles},
		{"host_allow_list", testHostAllowList},
		{"cors", testCORS},
		{"concurrency_cap", testConcurrencyCap},
		{"heavy_lane", testHeavyLane},
		{"request_timeout", testRequestTimeout},
		{"errors_hide_detail", testErrorsHideDetail},
		{"engine_overload_is_503", testEngineOverload},
		{"head_export", testHeadExport},
		{"findings_page_streams", testFindingsPageStreams},
		{"healthz_store_down", testHealthzStoreDown},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, fx) })
	}
}

func testAuthAndRoles(t *testing.T, fx *fixture) {
	srv := fx.server(t, Config{})
	anon := client{srv, ""}

	resp, body := anon.get(t, "/api/v1/findings")
	var m map[string]any
	json.Unmarshal(body, &m)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" || m["request_id"] != resp.Header.Get("X-Request-Id") || m["request_id"] == "" {
		t.Errorf("no token: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	for _, h := range []string{"Basic dXNlcjpwYXNz", "Bearer ", "Bearer pgt_nope", "Bearer pgt_0123456789ab_" + strings.Repeat("A", 43)} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/kpis", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("Authorization %q: %d", h, resp.StatusCode)
		}
	}

	// Roles, per endpoint: reads for every role, tokens for admins only.
	for _, r := range auth.Roles {
		c := client{srv, fx.secret[r]}
		c.getJSON(t, "/api/v1/findings?limit=1", 200)
		if who := c.getJSON(t, "/api/v1/whoami", 200); who["role"] != r.String() {
			t.Errorf("whoami of %s: %v", r, who)
		}
		want := 403
		if r == auth.Admin {
			want = 200
		}
		c.getJSON(t, "/api/v1/tokens", want)
		c.json(t, "POST", "/api/v1/tokens", strings.NewReader(`{"name":"x","role":"viewer"}`), map[int]int{403: 403, 200: 201}[want])
	}

	// An admin creates a token over the API; it works until revoked.
	admin := client{srv, fx.secret[auth.Admin]}
	created := admin.json(t, "POST", "/api/v1/tokens", strings.NewReader(`{"name":"grafana","role":"viewer","expires":"30d"}`), 201)
	fresh := client{srv, created["token"].(string)}
	fresh.getJSON(t, "/api/v1/kpis", 200)
	admin.json(t, "POST", "/api/v1/tokens", strings.NewReader(`{"name":"x","role":"root"}`), 400)
	admin.json(t, "POST", "/api/v1/tokens", strings.NewReader(`{"name":"x","role":"viewer","expires":"900d"}`), 400)
	admin.json(t, "DELETE", "/api/v1/tokens/"+created["id"].(string), nil, 200)
	fresh.getJSON(t, "/api/v1/kpis", 401)
	admin.json(t, "DELETE", "/api/v1/tokens/0123456789ab", nil, 404)
	list := admin.getJSON(t, "/api/v1/tokens", 200)
	if b, _ := json.Marshal(list); bytes.Contains(b, []byte("hash")) || !bytes.Contains(b, []byte(`"state":"revoked"`)) {
		t.Errorf("token list: %s", b)
	}

	// A token whose expiry has passed is refused.
	past := auth.New(fx.st, auth.Options{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }})
	old, _, err := past.Create(context.Background(), auth.CreateRequest{Name: "old", Role: auth.Admin, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	client{srv, old}.getJSON(t, "/api/v1/kpis", 401)

	// /healthz and /metrics: open or not, as configured.
	anon.getJSON(t, "/healthz", 401)
	if resp, _ := anon.get(t, "/metrics"); resp.StatusCode != 401 {
		t.Errorf("metrics without a token: %d", resp.StatusCode)
	}
	open := client{fx.server(t, Config{PublicHealthz: true, PublicMetrics: true}), ""}
	open.getJSON(t, "/healthz", 200)
	if resp, _ := open.get(t, "/metrics"); resp.StatusCode != 200 {
		t.Errorf("public metrics: %d", resp.StatusCode)
	}
	open.getJSON(t, "/api/v1/kpis", 401)
}

// hostRequest sends GET path with the given Host header.
func hostRequest(t *testing.T, c client, host, path string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", c.srv.URL+path, nil)
	req.Host = host
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// DNS rebinding: a page on evil.example, resolved to 127.0.0.1, sends
// Host: evil.example. Only IP literals, localhost and configured names pass.
func testHostAllowList(t *testing.T, fx *fixture) {
	c := client{fx.server(t, Config{AllowedHosts: []string{"patchgrid.internal"}, PublicHealthz: true}), fx.secret[auth.Viewer]}
	for host, want := range map[string]int{
		"evil.example": 403, "evil.example:8080": 403, "localhost.evil.example": 403,
		"127.0.0.1": 200, "127.0.0.1:8080": 200, "[::1]:8080": 200, "localhost:8080": 200, "LOCALHOST": 200,
		"patchgrid.internal": 200, "PatchGrid.Internal.:443": 200,
	} {
		for _, path := range []string{"/api/v1/kpis", "/healthz", "/nope"} {
			got := hostRequest(t, c, host, path)
			if want == 403 && got != 403 || want == 200 && got == 403 {
				t.Errorf("Host %q %s: %d, want %d", host, path, got, want)
			}
		}
	}
	any := client{fx.server(t, Config{AllowedHosts: []string{"*"}}), fx.secret[auth.Viewer]}
	if got := hostRequest(t, any, "anything.example", "/api/v1/kpis"); got != 200 {
		t.Errorf("allow-list *: %d", got)
	}
}

func testCORS(t *testing.T, fx *fixture) {
	preflight := func(c client, origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", c.srv.URL+"/api/v1/findings", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	withOrigin := func(c client, origin string) *http.Response {
		req, _ := http.NewRequest("GET", c.srv.URL+"/api/v1/kpis", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	off := client{fx.server(t, Config{}), fx.secret[auth.Viewer]}
	if r := preflight(off, "https://grafana.example.com"); r.StatusCode == 204 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off, preflight: %d %v", r.StatusCode, r.Header)
	}
	if r := withOrigin(off, "https://grafana.example.com"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS off: %v", r.Header)
	}
	on := client{fx.server(t, Config{CORSOrigins: []string{"https://grafana.example.com"}}), fx.secret[auth.Viewer]}
	if r := preflight(on, "https://grafana.example.com"); r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "https://grafana.example.com" ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("CORS on, preflight: %d %v", r.StatusCode, r.Header)
	}
	if r := withOrigin(on, "https://grafana.example.com"); r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://grafana.example.com" {
		t.Errorf("CORS on: %d %v", r.StatusCode, r.Header)
	}
	if r := withOrigin(on, "https://evil.example"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS for another origin: %v", r.Header)
	}
}

// gateStore holds every findings query until open is closed (or the
// query's context ends), and says when one arrived.
type gateStore struct {
	store.Store
	arrived chan struct{}
	open    chan struct{}
}

func (g *gateStore) Query(ctx context.Context, q string, args ...any) (store.Rows, error) {
	if strings.Contains(q, "FROM finding_risk") {
		select {
		case g.arrived <- struct{}{}:
		default:
		}
		select {
		case <-g.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Store.Query(ctx, q, args...)
}

// The cap on concurrent queries answers 503 with Retry-After while the
// requests that hold it run; requests that run no query are not held up.
func testConcurrencyCap(t *testing.T, fx *fixture) {
	g := &gateStore{Store: fx.st, arrived: make(chan struct{}, 1), open: make(chan struct{})}
	c := client{fx.server(t, Config{Store: g, MaxConcurrent: 1, QueueWait: 50 * time.Millisecond, PublicHealthz: true}), fx.secret[auth.Viewer]}
	done := make(chan int)
	go func() {
		req, _ := http.NewRequest("GET", c.srv.URL+"/api/v1/findings", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case <-g.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("first request never reached the store")
	}
	resp, body := c.get(t, "/api/v1/findings?limit=5")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !bytes.Contains(body, []byte(`"request_id"`)) {
		t.Errorf("over the cap: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	c.getJSON(t, "/healthz", 200)
	c.getJSON(t, "/api/v1/kpis", 200)
	close(g.open)
	if code := <-done; code != 200 {
		t.Errorf("the request holding the cap: %d", code)
	}
	c.getJSON(t, "/api/v1/findings?limit=5", 200)
	_, metrics := c.get(t, "/metrics")
	if !bytes.Contains(metrics, []byte("patchgrid_http_overload_rejections_total 1")) {
		t.Errorf("metrics: %s", metrics)
	}
}

// Big findings pages run in a lane of their own: while it is full, quick
// reads and HEADs on exports still run; a big page waits for a slot longer than QueueWait (it
// is answered, not refused); past MaxHeavyQueued waiting, one more is
// refused at once with 503 and Retry-After.
func testHeavyLane(t *testing.T, fx *fixture) {
	g := &gateStore{Store: fx.st, arrived: make(chan struct{}, 1), open: make(chan struct{})}
	c := client{fx.server(t, Config{Store: g, MaxConcurrent: 1, QueueWait: 50 * time.Millisecond,
		MaxHeavy: 1, MaxHeavyQueued: 1, HeavyQueueWait: 30 * time.Second}), fx.secret[auth.Viewer]}
	get := func(path string, done chan<- int) {
		req, _ := http.NewRequest("GET", c.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}
	first, second := make(chan int, 1), make(chan int, 1)
	go get("/api/v1/findings?limit=max", first)
	select {
	case <-g.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first big page never reached the store")
	}
	// The heavy lane is full; quick reads are not held up by it.
	c.getJSON(t, "/api/v1/hosts?limit=5", 200)
	go get("/api/v1/findings?limit=5000", second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, m := c.get(t, "/metrics")
		if bytes.Contains(m, []byte("patchgrid_http_queued_heavy 1")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second big page never queued: %s", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, body := c.get(t, "/api/v1/findings?limit=max")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !bytes.Contains(body, []byte(`"request_id"`)) {
		t.Errorf("past the heavy queue: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	// A HEAD on an export runs nothing: it takes no slot of either lane.
	if resp, _ := c.do(t, "HEAD", "/api/v1/export?format=csv", nil); resp.StatusCode != 200 {
		t.Errorf("HEAD export while the heavy lane is full: %d", resp.StatusCode)
	}
	time.Sleep(200 * time.Millisecond) // the queued page waits past QueueWait
	close(g.open)
	if code := <-first; code != 200 {
		t.Errorf("the big page holding the lane: %d", code)
	}
	if code := <-second; code != 200 {
		t.Errorf("the queued big page: %d", code)
	}
}

// A request past its timeout answers 504.
func testRequestTimeout(t *testing.T, fx *fixture) {
	g := &gateStore{Store: fx.st, arrived: make(chan struct{}, 1), open: make(chan struct{})}
	c := client{fx.server(t, Config{Store: g, RequestTimeout: 100 * time.Millisecond}), fx.secret[auth.Viewer]}
	m := c.getJSON(t, "/api/v1/findings", 504)
	if m["error"] != "request timed out" {
		t.Errorf("%v", m)
	}
}

// overloadStore fails finding queries the way the engine does when a query
// does not fit the memory budget.
type overloadStore struct{ store.Store }

func (o overloadStore) Query(ctx context.Context, q string, args ...any) (store.Rows, error) {
	if strings.Contains(q, "finding_risk") {
		return nil, &store.Error{Backend: "chdb", Statement: q,
			Err: errors.New("Code: 241. DB::Exception: (total) memory limit exceeded: would use 621.00 MiB, maximum: 512.00 MiB")}
	}
	return o.Store.Query(ctx, q, args...)
}

// A query the engine refuses for lack of memory is back-pressure: 503 with
// Retry-After, like the concurrency cap, never a 500.
func testEngineOverload(t *testing.T, fx *fixture) {
	c := client{fx.server(t, Config{Store: overloadStore{fx.st}, QueueWait: 2 * time.Second}), fx.secret[auth.Viewer]}
	resp, body := c.get(t, "/api/v1/findings?limit=max")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" || bytes.Contains(body, []byte("DB::Exception")) {
		t.Errorf("memory limit: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	c.getJSON(t, "/api/v1/kpis", 200)
}

// failStore fails every query the way the engine does, with SQL and an
// exception in the error.
type failStore struct{ store.Store }

func (failStore) Query(ctx context.Context, q string, args ...any) (store.Rows, error) {
	return nil, &store.Error{Backend: "chdb", Statement: "SELECT secret_column FROM finding_risk",
		Err: errors.New("Code: 47. DB::Exception: Missing columns: 'secret_column'")}
}

// Errors show the client a message and a request id; the detail is in
// the log under the same id. 4xx are logged at INFO, truncated.
func testErrorsHideDetail(t *testing.T, fx *fixture) {
	var logs syncBuffer
	c := client{fx.server(t, Config{Store: failStore{fx.st}, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}), fx.secret[auth.Viewer]}
	resp, body := c.get(t, "/api/v1/findings")
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || resp.StatusCode != 500 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	id := resp.Header.Get("X-Request-Id")
	if m["error"] != "internal error" || m["request_id"] != id || len(m) != 2 {
		t.Errorf("body %s", body)
	}
	for _, secret := range []string{"DB::Exception", "SELECT", "secret_column"} {
		if bytes.Contains(body, []byte(secret)) {
			t.Errorf("body shows %q: %s", secret, body)
		}
	}
	found := false
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"request_id":"`+id+`"`) && strings.Contains(line, `"level":"ERROR"`) && strings.Contains(line, "DB::Exception") {
			found = true
		}
	}
	if !found {
		t.Errorf("no ERROR log with the detail under request id %s:\n%s", id, logs.String())
	}

	// A 400 with a huge query string: INFO, and the line stays short.
	huge := strings.Repeat("x", 100_000)
	resp, _ = c.get(t, "/api/v1/findings?severity="+huge)
	if resp.StatusCode != 400 {
		t.Fatalf("bad severity: %d", resp.StatusCode)
	}
	id = resp.Header.Get("X-Request-Id")
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, id) {
			continue
		}
		if !strings.Contains(line, `"level":"INFO"`) || len(line) > 6000 {
			t.Errorf("4xx log line (%d bytes): %.300s", len(line), line)
		}
	}
}

// countStore counts the queries that reach the store.
type countStore struct {
	store.Store
	n atomic.Int64
}

func (c *countStore) Query(ctx context.Context, q string, args ...any) (store.Rows, error) {
	c.n.Add(1)
	return c.Store.Query(ctx, q, args...)
}

// HEAD on an export answers its headers without running it.
func testHeadExport(t *testing.T, fx *fixture) {
	cs := &countStore{Store: fx.st}
	c := client{fx.server(t, Config{Store: cs}), fx.secret[auth.Viewer]}
	resp, body := c.do(t, "HEAD", "/api/v1/export?format=csv&severity=high", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || len(body) != 0 {
		t.Errorf("HEAD: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	if n := cs.n.Load(); n != 0 {
		t.Errorf("HEAD ran %d queries", n)
	}
	if resp, _ := c.do(t, "HEAD", "/api/v1/export?format=xml", nil); resp.StatusCode != 400 {
		t.Errorf("HEAD with a bad format: %d", resp.StatusCode)
	}
	if resp, body := c.get(t, "/api/v1/export?format=csv&severity=high"); resp.StatusCode != 200 || len(body) == 0 || cs.n.Load() != 1 {
		t.Errorf("GET: %d, %d queries", resp.StatusCode, cs.n.Load())
	}
}

// synthRows yields n findings made up on the fly, and blocks before row
// blockAt until release is closed.
type synthRows struct {
	n, i, blockAt int
	release       chan struct{}
}

func (r *synthRows) Columns() []store.Column {
	cols := make([]store.Column, len(risk.FindingColumns))
	for i, c := range risk.FindingColumns {
		cols[i] = store.Column{Name: c.Name}
	}
	return cols
}

func (r *synthRows) Next() bool {
	if r.i == r.blockAt {
		<-r.release
	}
	r.i++
	return r.i <= r.n
}

func (r *synthRows) Scan(dest ...any) error {
	for k, d := range dest {
		switch p := d.(type) {
		case *string:
			*p = fmt.Sprintf("value-%d-%d", r.i, k)
		case *int64:
			*p = int64(r.i)
		case *float64:
			*p = float64(r.i) / 7
		case *uint8:
			*p = uint8(r.i % 2)
		case *time.Time:
			*p = time.Unix(1700000000+int64(r.i), 0)
		case *[]string:
			*p = []string{"CVE-2024-1"}
		default:
			return fmt.Errorf("column %d: unexpected %T", k, d)
		}
	}
	return nil
}

func (r *synthRows) Err() error   { return nil }
func (r *synthRows) Close() error { return nil }

type synthStore struct {
	store.Store
	rows *synthRows
}

func (s synthStore) Query(ctx context.Context, q string, args ...any) (store.Rows, error) {
	return s.rows, nil
}

// A findings page streams: the client reads the first thousand findings
// of a 10,000-row page while the store has not produced row 3,000 yet. A
// page built in memory would send nothing before the last row.
func testFindingsPageStreams(t *testing.T, fx *fixture) {
	rows := &synthRows{n: 10_001, blockAt: 3000, release: make(chan struct{})}
	c := client{fx.server(t, Config{Store: synthStore{fx.st, rows}}), fx.secret[auth.Viewer]}
	req, _ := http.NewRequest("GET", c.srv.URL+"/api/v1/findings?limit=max", nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var all bytes.Buffer
	rd := bufio.NewReader(io.TeeReader(resp.Body, &all))
	seen := 0
	timer := time.AfterFunc(20*time.Second, func() { close(rows.release) })
	for seen < 1000 {
		chunk, err := rd.ReadString(',')
		if err != nil {
			t.Fatalf("after %d findings: %v", seen, err)
		}
		seen += strings.Count(chunk, `"host_id":`)
	}
	if !timer.Stop() {
		t.Fatal("the page did not stream: no findings before the store's last row")
	}
	close(rows.release)
	io.Copy(io.Discard, rd)
	var page struct {
		Findings   []map[string]any `json:"findings"`
		NextOffset int              `json:"next_offset"`
		Limit      int              `json:"limit"`
	}
	if err := json.Unmarshal(all.Bytes(), &page); err != nil {
		t.Fatalf("page is not JSON: %v", err)
	}
	if len(page.Findings) != 10_000 || page.NextOffset != 10_000 || page.Limit != 10_000 {
		t.Errorf("page: %d findings, next_offset %d, limit %d", len(page.Findings), page.NextOffset, page.Limit)
	}
	if _, ok := page.Findings[1]["kev"].(bool); !ok {
		t.Errorf("kev %#v", page.Findings[1]["kev"])
	}
}
