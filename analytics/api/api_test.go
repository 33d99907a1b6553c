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
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func getJSON(t *testing.T, srv *httptest.Server, path string, status int) map[string]any {
	t.Helper()
	resp, body := get(t, srv, path)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, status, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return m
}

func TestAPI(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	kpitest.Seed(t, st)
	var logs bytes.Buffer
	h, err := New(Config{Store: st, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	t.Run("healthz", func(t *testing.T) {
		m := getJSON(t, srv, "/healthz", 200)
		if m["status"] != "ok" || m["backend"] != "chdb" {
			t.Errorf("%v", m)
		}
	})

	t.Run("kpis", func(t *testing.T) {
		list := getJSON(t, srv, "/api/v1/kpis", 200)
		if len(list["kpis"].([]any)) != len(kpi.All()) {
			t.Errorf("kpi list: %v", list)
		}
		m := getJSON(t, srv, "/api/v1/kpis/patch_coverage?dimension=ring&value=prod", 200)
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
		got, _ := json.Marshal(getJSON(t, srv, "/api/v1/kpis/mttr?dimension=owner", 200)["rows"])
		if !bytes.Equal(want, got) {
			t.Errorf("API mttr\n%s\nkpi.Run\n%s", got, want)
		}
		// NaN (no resolved low exposure) is null in JSON.
		low := getJSON(t, srv, "/api/v1/kpis/mttr?severity=low", 200)["rows"].([]any)[0].(map[string]any)
		if v, ok := low["mttr_days"]; !ok || v != nil {
			t.Errorf("low mttr: %v", low)
		}
		getJSON(t, srv, "/api/v1/kpis/nope", 404)
		getJSON(t, srv, "/api/v1/kpis/mttr?dimension=team", 400)
	})

	t.Run("findings", func(t *testing.T) {
		m := getJSON(t, srv, "/api/v1/findings?kev=true", 200)
		f := m["findings"].([]any)
		if len(f) != 1 || f[0].(map[string]any)["advisory_id"] != "A1" || m["next_offset"] != nil {
			t.Errorf("kev findings: %v", m)
		}
		m = getJSON(t, srv, "/api/v1/findings?limit=2", 200)
		if len(m["findings"].([]any)) != 2 || m["next_offset"] != 2.0 {
			t.Errorf("page 1: %v", m)
		}
		m = getJSON(t, srv, "/api/v1/findings?limit=2&offset=2&min_risk=10", 200)
		if len(m["findings"].([]any)) != 1 || m["next_offset"] != nil {
			t.Errorf("page 2: %v", m)
		}
		getJSON(t, srv, "/api/v1/findings?severity=urgent", 400)
		getJSON(t, srv, "/api/v1/findings?kev=maybe", 400)
		getJSON(t, srv, "/api/v1/findings?limit=-1", 400)
		getJSON(t, srv, "/api/v1/findings?limit=100000", 400)
	})

	t.Run("hosts", func(t *testing.T) {
		m := getJSON(t, srv, "/api/v1/hosts", 200)
		hosts := m["hosts"].([]any)
		if len(hosts) != 4 || hosts[0].(map[string]any)["host_id"] != "h2" {
			t.Errorf("hosts: %v", m)
		}
		m = getJSON(t, srv, "/api/v1/hosts/h2", 200)
		if m["host"].(map[string]any)["top_advisory_id"] != "A1" || len(m["findings"].([]any)) != 2 {
			t.Errorf("host h2: %v", m)
		}
		getJSON(t, srv, "/api/v1/hosts/nope", 404)
	})

	t.Run("risk", func(t *testing.T) {
		m := getJSON(t, srv, "/api/v1/risk?host=h2&source=osv&advisory=A1", 200)
		sum := 0.0
		for _, v := range m["parts"].(map[string]any) {
			sum += v.(float64)
		}
		if math.Abs(sum-m["risk_score"].(float64)) > 1e-9 || m["formula"] == "" {
			t.Errorf("breakdown: %v", m)
		}
		getJSON(t, srv, "/api/v1/risk?host=h4&source=osv&advisory=A1", 404)
		getJSON(t, srv, "/api/v1/risk?host=h4", 400)
	})

	t.Run("export", func(t *testing.T) {
		resp, body := get(t, srv, "/api/v1/export?format=arrow&ring=prod")
		if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.apache.arrow.stream" {
			t.Fatalf("content type %q: %s", ct, body)
		}
		r, err := ipc.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for r.Next() {
			n += int(r.Record().NumRows())
		}
		r.Release()
		if n != 2 {
			t.Errorf("arrow export of prod: %d rows, want 2", n)
		}

		_, body = get(t, srv, "/api/v1/export?format=parquet")
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

		resp, body = get(t, srv, "/api/v1/export?format=csv&severity=critical,high")
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		if resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || len(lines) != 3 || !strings.HasPrefix(lines[0], "host_id,hostname,") {
			t.Errorf("csv: %q", body)
		}
		_, body = get(t, srv, "/api/v1/export?kev=false")
		if n := strings.Count(string(body), "\n"); n != 2 {
			t.Errorf("json lines: %d, want 2: %s", n, body)
		}
		getJSON(t, srv, "/api/v1/export?format=xml", 400)
	})

	t.Run("metrics_and_logs", func(t *testing.T) {
		_, body := get(t, srv, "/metrics")
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

func TestHealthzStoreDown(t *testing.T) {
	h, err := New(Config{Store: downStore{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	m := getJSON(t, srv, "/healthz", 503)
	if m["status"] != "unavailable" || !strings.Contains(m["error"].(string), "connection refused") {
		t.Errorf("%v", m)
	}
}

func TestConfigRequired(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("want error without store and logger")
	}
}
