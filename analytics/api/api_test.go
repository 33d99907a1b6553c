package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// client calls a test server with a token (none when empty).
type client struct {
	srv   *httptest.Server
	token string
}

func (c client) do(t *testing.T, method, path string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, c.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func (c client) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	return c.do(t, http.MethodGet, path, nil)
}

func (c client) getJSON(t *testing.T, path string, status int) map[string]any {
	t.Helper()
	return c.json(t, http.MethodGet, path, nil, status)
}

func (c client) json(t *testing.T, method, path string, body io.Reader, status int) map[string]any {
	t.Helper()
	resp, b := c.do(t, method, path, body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, status, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return m
}

// fixture is a seeded chDB store with its token table and one token per
// role.
type fixture struct {
	st     store.Store
	tokens *auth.Tokens
	secret map[auth.Role]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	kpitest.Seed(t, st)
	f := &fixture{st: st, tokens: auth.New(st, auth.Options{}), secret: map[auth.Role]string{}}
	for _, r := range auth.Roles {
		s, _, err := f.tokens.Create(context.Background(), auth.CreateRequest{Name: r.String() + "-test", Role: r, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		f.secret[r] = s
	}
	return f
}

func (f *fixture) server(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = f.st
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Tokens = f.tokens
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestAPI(t *testing.T) {
	fx := newFixture(t)
	st := fx.st
	var logs syncBuffer
	srv := fx.server(t, Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), PublicHealthz: true})
	c := client{srv, fx.secret[auth.Viewer]}

	t.Run("healthz", func(t *testing.T) {
		m := c.getJSON(t, "/healthz", 200)
		if m["status"] != "ok" || m["backend"] != "chdb" {
			t.Errorf("%v", m)
		}
	})

	t.Run("kpis", func(t *testing.T) {
		list := c.getJSON(t, "/api/v1/kpis", 200)
		if len(list["kpis"].([]any)) != len(kpi.All()) {
			t.Errorf("kpi list: %v", list)
		}
		m := c.getJSON(t, "/api/v1/kpis/patch_coverage?dimension=ring&value=prod", 200)
		rows := m["rows"].([]any)
		if len(rows) != 1 || rows[0].(map[string]any)["coverage_pct"] != 50.0 {
			t.Errorf("prod coverage: %v", m)
		}
		// The API answers exactly what kpi.Run returns.
		direct, err := kpi.Run(context.Background(), st, "mttr", kpi.Query{Dimension: "owner"})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(direct.Records())
		got, _ := json.Marshal(c.getJSON(t, "/api/v1/kpis/mttr?dimension=owner", 200)["rows"])
		if !bytes.Equal(want, got) {
			t.Errorf("API mttr\n%s\nkpi.Run\n%s", got, want)
		}
		// NaN (no resolved low exposure) is null in JSON.
		low := c.getJSON(t, "/api/v1/kpis/mttr?severity=low", 200)["rows"].([]any)[0].(map[string]any)
		if v, ok := low["mttr_days"]; !ok || v != nil {
			t.Errorf("low mttr: %v", low)
		}
		c.getJSON(t, "/api/v1/kpis/nope", 404)
		c.getJSON(t, "/api/v1/kpis/mttr?dimension=team", 400)
		// Exceptions: honoured unless asked otherwise, one reading per answer.
		for q, want := range map[string]string{"": "honoured", "&exceptions=honoured": "honoured", "&exceptions=ignored": "ignored"} {
			m := c.getJSON(t, "/api/v1/kpis/sla_compliance?severity=all"+q, 200)
			rows := m["rows"].([]any)
			if m["exceptions"] != want || len(rows) != 1 || rows[0].(map[string]any)["exceptions"] != want {
				t.Errorf("exceptions %q: %v", q, m)
			}
		}
		c.getJSON(t, "/api/v1/kpis/mttr?exceptions=some", 400)
		c.getJSON(t, "/api/v1/findings?exceptions=some", 400)
		c.getJSON(t, "/api/v1/hosts?exceptions=some", 400)
		c.getJSON(t, "/api/v1/hosts/h1?exceptions=some", 400)
		if m := c.getJSON(t, "/api/v1/findings?exceptions=ignored&limit=1", 200); len(m["findings"].([]any)) != 1 {
			t.Errorf("findings exceptions=ignored: %v", m)
		}
	})

	t.Run("findings", func(t *testing.T) {
		m := c.getJSON(t, "/api/v1/findings?kev=true", 200)
		f := m["findings"].([]any)
		if len(f) != 1 || f[0].(map[string]any)["advisory_id"] != "A1" || m["next_offset"] != nil {
			t.Errorf("kev findings: %v", m)
		}
		// Issue 17: a finding has the same fields and JSON types as in a
		// JSON export (kev a boolean in both, times RFC 3339, NaN null).
		if kev, ok := f[0].(map[string]any)["kev"].(bool); !ok || !kev {
			t.Errorf("kev is %#v, want true", f[0].(map[string]any)["kev"])
		}
		_, line := c.get(t, "/api/v1/export?format=json&kev=true")
		var exported map[string]any
		if err := json.Unmarshal(line, &exported); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(exported, f[0]) {
			t.Errorf("API finding\n%v\nexport\n%v", f[0], exported)
		}
		m = c.getJSON(t, "/api/v1/findings?limit=max", 200)
		if len(m["findings"].([]any)) != 3 || m["limit"] != 10000.0 {
			t.Errorf("limit=max: %v", m)
		}
		m = c.getJSON(t, "/api/v1/findings?limit=2", 200)
		if len(m["findings"].([]any)) != 2 || m["next_offset"] != 2.0 {
			t.Errorf("page 1: %v", m)
		}
		m = c.getJSON(t, "/api/v1/findings?limit=2&offset=2&min_risk=10", 200)
		if len(m["findings"].([]any)) != 1 || m["next_offset"] != nil {
			t.Errorf("page 2: %v", m)
		}
		c.getJSON(t, "/api/v1/findings?severity=urgent", 400)
		c.getJSON(t, "/api/v1/findings?kev=maybe", 400)
		c.getJSON(t, "/api/v1/findings?limit=-1", 400)
		c.getJSON(t, "/api/v1/findings?limit=100000", 400)
		c.getJSON(t, "/api/v1/findings?offset=100000000", 400)
		m = c.getJSON(t, "/api/v1/findings?host=nope", 200)
		if f, ok := m["findings"].([]any); !ok || len(f) != 0 {
			t.Errorf("empty page: %v", m)
		}
	})

	t.Run("hosts", func(t *testing.T) {
		m := c.getJSON(t, "/api/v1/hosts", 200)
		hosts := m["hosts"].([]any)
		if len(hosts) != 4 || hosts[0].(map[string]any)["host_id"] != "h2" {
			t.Errorf("hosts: %v", m)
		}
		m = c.getJSON(t, "/api/v1/hosts/h2", 200)
		if m["host"].(map[string]any)["top_advisory_id"] != "A1" || len(m["findings"].([]any)) != 2 {
			t.Errorf("host h2: %v", m)
		}
		c.getJSON(t, "/api/v1/hosts/nope", 404)
	})

	t.Run("risk", func(t *testing.T) {
		m := c.getJSON(t, "/api/v1/risk?host=h2&source=osv&advisory=A1", 200)
		sum := 0.0
		for _, v := range m["parts"].(map[string]any) {
			sum += v.(float64)
		}
		if math.Abs(sum-m["risk_score"].(float64)) > 1e-9 || m["formula"] == "" {
			t.Errorf("breakdown: %v", m)
		}
		c.getJSON(t, "/api/v1/risk?host=h4&source=osv&advisory=A1", 404)
		c.getJSON(t, "/api/v1/risk?host=h4", 400)
	})

	t.Run("export", func(t *testing.T) {
		resp, body := c.get(t, "/api/v1/export?format=arrow&ring=prod")
		if ct := resp.Header.Get("Content-Type"); ct != export.ContentType("arrow") {
			t.Fatalf("content type %q", ct)
		}
		r, err := ipc.NewFileReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for i := 0; i < r.NumRecords(); i++ {
			rec, err := r.Record(i)
			if err != nil {
				t.Fatal(err)
			}
			n += int(rec.NumRows())
		}
		r.Close()
		if n != 2 {
			t.Errorf("arrow export of prod: %d rows, want 2", n)
		}

		_, body = c.get(t, "/api/v1/export?format=parquet")
		pf, err := file.NewParquetReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if pf.NumRows() != 3 {
			t.Errorf("parquet: %d rows, want 3", pf.NumRows())
		}
		if _, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator); err != nil {
			t.Error(err)
		}

		resp, body = c.get(t, "/api/v1/export?format=csv&severity=critical,high")
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		if resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || len(lines) != 3 || !strings.HasPrefix(lines[0], "host_id,hostname,") {
			t.Errorf("csv: %q", body)
		}
		_, body = c.get(t, "/api/v1/export?kev=false")
		if n := strings.Count(string(body), "\n"); n != 2 {
			t.Errorf("json lines: %d, want 2: %s", n, body)
		}
		c.getJSON(t, "/api/v1/export?format=xml", 400)
	})

	t.Run("metrics_and_logs", func(t *testing.T) {
		_, body := c.get(t, "/metrics")
		for _, want := range []string{`patchgrid_http_requests_total{route="/api/v1/findings",code="200"}`, `patchgrid_export_rows_total{format="arrow"} 2`, "patchgrid_http_request_duration_seconds"} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("metrics lack %s:\n%s", want, body)
			}
		}
		if !strings.Contains(logs.String(), `"msg":"http request","method":"GET","path":"/api/v1/hosts/h2"`) {
			t.Errorf("no request log for /api/v1/hosts/h2:\n%s", logs.String())
		}
	})
}

// downStore is a store whose server is gone.
type downStore struct{ store.Store }

func (downStore) ServerVersion(context.Context) (store.Version, error) {
	return store.Version{}, errors.New("dial tcp 127.0.0.1:9: connection refused")
}
func (downStore) Backend() string { return "clickhouse" }

func testHealthzStoreDown(t *testing.T, fx *fixture) {
	var logs syncBuffer
	srv := fx.server(t, Config{Store: downStore{fx.st}, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), PublicHealthz: true})
	m := client{srv, ""}.getJSON(t, "/healthz", 503)
	// The store's error is for the log, not for an unauthenticated client.
	if m["status"] != "unavailable" || m["request_id"] == "" || len(m) != 3 {
		t.Errorf("%v", m)
	}
	if !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("the log lacks the store's error: %s", logs.String())
	}
}

func TestConfigRequired(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("want error without store, logger and tokens")
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
