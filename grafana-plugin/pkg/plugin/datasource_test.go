package plugin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// queryOne sends one query the way Grafana does and returns its response.
func queryOne(t *testing.T, d *Datasource, model string, tr backend.TimeRange) backend.DataResponse {
	t.Helper()
	var head struct {
		QueryType string `json:"queryType"`
	}
	_ = json.Unmarshal([]byte(model), &head)
	resp, err := d.QueryData(context.Background(), &backend.QueryDataRequest{
		Queries: []backend.DataQuery{{RefID: "A", QueryType: head.QueryType, JSON: json.RawMessage(model), TimeRange: tr}},
	})
	if err != nil {
		t.Fatalf("QueryData: %v", err)
	}
	return resp.Responses["A"]
}

func frameOf(t *testing.T, r backend.DataResponse) *data.Frame {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("query error: %v", r.Error)
	}
	if len(r.Frames) != 1 {
		t.Fatalf("%d frames, want 1", len(r.Frames))
	}
	return r.Frames[0]
}

// cell finds the value of col in the one row where the key columns equal key.
func cell(t *testing.T, f *data.Frame, key map[string]string, col string) any {
	t.Helper()
	var found []any
	for r := 0; r < f.Rows(); r++ {
		ok := true
		for k, v := range key {
			idx := fieldIndex(f, k)
			if idx < 0 {
				t.Fatalf("no field %s", k)
			}
			got, _ := f.Fields[idx].ConcreteAt(r)
			if s, _ := got.(string); s != v {
				ok = false
			}
		}
		if ok {
			idx := fieldIndex(f, col)
			if idx < 0 {
				t.Fatalf("no field %s", col)
			}
			v, ok := f.Fields[idx].ConcreteAt(r)
			if !ok {
				v = nil // null
			}
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d rows match %v", len(found), key)
	}
	return found[0]
}

func fieldIndex(f *data.Frame, name string) int {
	for i, fl := range f.Fields {
		if fl.Name == name {
			return i
		}
	}
	return -1
}

func number(t *testing.T, v any) float64 {
	t.Helper()
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	t.Fatalf("%T %v is not a number", v, v)
	return 0
}

// TestQueryTypes runs every query type against the known fleet of kpitest
// (hand-worked numbers in analytics/kpi's tests).
func TestQueryTypes(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	fleet := kpitest.Seed(t, st)
	d := NewWithStore(st, quiet)
	defer d.Dispose()
	year := backend.TimeRange{From: fleet.Day(365), To: fleet.Now}

	t.Run("kpi", func(t *testing.T) {
		f := frameOf(t, queryOne(t, d, `{"queryType":"kpi","kpi":"patch_coverage","dimension":"ring"}`, year))
		if f.Meta.Type != data.FrameTypeTable || !strings.Contains(f.Meta.ExecutedQueryString, "kpi_patch_coverage") {
			t.Fatalf("meta %+v", f.Meta)
		}
		if got := number(t, cell(t, f, map[string]string{"dim_value": "prod"}, "coverage_pct")); got != 50 {
			t.Errorf("prod coverage %v, want 50", got)
		}
		f = frameOf(t, queryOne(t, d, `{"queryType":"kpi","kpi":"mttr"}`, year))
		if got := number(t, cell(t, f, map[string]string{"severity": "all"}, "mttr_days")); got != 33 {
			t.Errorf("mttr %v, want 33", got)
		}
		// No resolved low exposure: the mean is NaN in SQL, null here.
		if v := cell(t, f, map[string]string{"severity": "low"}, "mttr_days"); v != nil {
			t.Errorf("low mttr %v, want null", v)
		}
	})

	t.Run("findings", func(t *testing.T) {
		f := frameOf(t, queryOne(t, d, `{"queryType":"findings","severity":"critical","kev":"true"}`, year))
		// Open critical KEV findings: h2/A1 only (h1 resolved it).
		if f.Rows() != 1 || cell(t, f, map[string]string{}, "host_id") != "h2" || cell(t, f, map[string]string{}, "cves") != "CVE-2024-0001" {
			t.Fatalf("findings: %d rows", f.Rows())
		}
		all := frameOf(t, queryOne(t, d, `{"queryType":"findings","limit":2}`, year))
		if all.Rows() != 2 {
			t.Fatalf("limit 2: %d rows", all.Rows())
		}
		// The frame has every column of the findings API and export, in
		// order: new columns (severity_source, ...) reach panels by
		// themselves.
		var names []string
		for _, fl := range all.Fields {
			names = append(names, fl.Name)
		}
		var want []string
		for _, c := range risk.FindingColumns {
			want = append(want, c.Name)
		}
		if !slices.Equal(names, want) || !slices.Contains(names, "severity_source") {
			t.Errorf("findings frame fields %v, want risk.FindingColumns %v", names, want)
		}
		r0, _ := all.Fields[fieldIndex(all, "risk_score")].FloatAt(0)
		r1, _ := all.Fields[fieldIndex(all, "risk_score")].FloatAt(1)
		if r0 < r1 {
			t.Errorf("findings not riskiest first: %v < %v", r0, r1)
		}
	})

	t.Run("hosts", func(t *testing.T) {
		f := frameOf(t, queryOne(t, d, `{"queryType":"hosts","ring":"prod"}`, year))
		if f.Rows() != 2 {
			t.Fatalf("prod hosts: %d rows, want 2", f.Rows())
		}
		if cell(t, f, map[string]string{"host_id": "h1"}, "host_risk") != 0.0 {
			t.Errorf("h1 has no open exposure: host_risk %v", cell(t, f, map[string]string{"host_id": "h1"}, "host_risk"))
		}
	})

	t.Run("trend", func(t *testing.T) {
		f := frameOf(t, queryOne(t, d, `{"queryType":"trend","severity":"all"}`, year))
		if f.Meta.Type != data.FrameTypeTimeSeriesWide || f.TimeSeriesSchema().Type != data.TimeSeriesTypeWide {
			t.Fatalf("not a wide time series: %+v", f.Meta)
		}
		// Events: -150 (+2), -100 (-1), -45 (+4), -31 (-1), -10 (-1).
		want := []float64{2, 1, 5, 4, 3}
		if f.Rows() != len(want) || len(f.Fields) != 2 {
			t.Fatalf("%d rows × %d fields, want %d × 2", f.Rows(), len(f.Fields), len(want))
		}
		for i, w := range want {
			if i > 0 && !f.Fields[0].At(i).(time.Time).After(f.Fields[0].At(i-1).(time.Time)) {
				t.Errorf("time not ascending at row %d", i)
			}
			if v, _ := f.Fields[1].FloatAt(i); v != w {
				t.Errorf("open_at_end[%d] = %v, want %v", i, v, w)
			}
		}
		// The last 40 days: -31 and -10 only.
		f = frameOf(t, queryOne(t, d, `{"queryType":"trend","severity":"all","metric":"resolved"}`,
			backend.TimeRange{From: fleet.Day(40), To: fleet.Now}))
		if f.Rows() != 2 {
			t.Fatalf("last 40 days: %d rows, want 2", f.Rows())
		}
	})

	t.Run("bad query", func(t *testing.T) {
		r := queryOne(t, d, `{"queryType":"kpi","kpi":"nope"}`, year)
		if r.Error == nil || r.Status != backend.StatusBadRequest || len(r.Frames) != 0 {
			t.Fatalf("bad query: %+v", r)
		}
	})

	t.Run("health", func(t *testing.T) {
		res, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
		if err != nil || res.Status != backend.HealthStatusOk || !strings.Contains(res.Message, "3 open exposures") {
			t.Fatalf("health: %+v %v", res, err)
		}
	})

	t.Run("resource kpis", func(t *testing.T) {
		var got backend.CallResourceResponse
		err := d.CallResource(context.Background(), &backend.CallResourceRequest{Method: "GET", Path: "kpis", URL: "kpis"},
			backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { got = *r; return nil }))
		if err != nil || got.Status != 200 {
			t.Fatalf("CallResource: %v %d %s", err, got.Status, got.Body)
		}
		var c Catalog
		if err := json.Unmarshal(got.Body, &c); err != nil || len(c.KPIs) != 8 || c.KPIs[0].Name != "mttr" {
			t.Fatalf("catalog %s: %v", got.Body, err)
		}
	})

	// Template variable values (metricFindQuery): what the fleet holds.
	t.Run("resource values", func(t *testing.T) {
		for _, tt := range []struct{ url, want string }{
			{"values?field=ring", `["pilot","prod","test"]`},
			{"values?field=owner", `["alice","bob"]`},
			{"values?field=os", `["Alpine:v3.22","Debian:12"]`},
			{"values?field=severity", `["critical","high","low"]`},
			{"values?field=advisory", `["A1","A2","A4"]`},
			{"values?field=advisory&prefix=A2", `["A2"]`},
			{"values?field=ring&limit=1", `["pilot"]`},
		} {
			var got backend.CallResourceResponse
			err := d.CallResource(context.Background(), &backend.CallResourceRequest{Method: "GET", Path: "values", URL: tt.url},
				backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { got = *r; return nil }))
			if err != nil || got.Status != 200 || strings.TrimSpace(string(got.Body)) != tt.want {
				t.Errorf("%s: %v %d %s, want %s", tt.url, err, got.Status, got.Body, tt.want)
			}
		}
		for _, url := range []string{"values?field=hostname", "values?field=ring&limit=0", "values?field=ring&prefix=x", "values?field=os&limit=x"} {
			var got backend.CallResourceResponse
			_ = d.CallResource(context.Background(), &backend.CallResourceRequest{Method: "GET", Path: "values", URL: url},
				backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error { got = *r; return nil }))
			if got.Status != 400 {
				t.Errorf("%s: status %d %s, want 400", url, got.Status, got.Body)
			}
		}
	})
}

// TestStoreErrorsAreDownstream: a store that cannot be opened fails the
// query and the health check with an error tagged downstream, and the next
// request tries to open it again.
func TestStoreErrorsAreDownstream(t *testing.T) {
	in := NewInstances(quiet, "")
	opens := 0
	in.open = func(context.Context, store.Config) (store.Store, error) {
		opens++
		return nil, io.ErrUnexpectedEOF
	}
	inst, err := in.New(context.Background(), backend.DataSourceInstanceSettings{Name: "pg", JSONData: []byte(`{"backend":"clickhouse","addr":"127.0.0.1:1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	d := inst.(*Datasource)
	r := queryOne(t, d, `{"queryType":"kpi","kpi":"mttr"}`, backend.TimeRange{})
	if r.Error == nil || r.ErrorSource != backend.ErrorSourceDownstream || !backend.IsDownstreamError(r.Error) {
		t.Fatalf("response %+v", r)
	}
	res, err := d.CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if err != nil || res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "open clickhouse store") {
		t.Fatalf("health %+v %v", res, err)
	}
	if opens != 2 {
		t.Errorf("store opened %d times, want a retry per request (2)", opens)
	}
	in.Close()
	if r := queryOne(t, d, `{"queryType":"kpi","kpi":"mttr"}`, backend.TimeRange{}); r.Error == nil || !strings.Contains(r.Error.Error(), "replaced") {
		t.Fatalf("after Close: %+v", r)
	}
}

func TestInvalidSettingsReported(t *testing.T) {
	inst, err := NewInstances(quiet, "").New(context.Background(), backend.DataSourceInstanceSettings{Name: "pg", JSONData: []byte(`{"backend":"mysql"}`)})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := inst.(*Datasource).CheckHealth(context.Background(), &backend.CheckHealthRequest{})
	if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, `unknown backend "mysql"`) {
		t.Fatalf("health %+v", res)
	}
	r := queryOne(t, inst.(*Datasource), `{"queryType":"kpi","kpi":"mttr"}`, backend.TimeRange{})
	if r.Status != backend.StatusBadRequest || r.ErrorSource != backend.ErrorSourceDownstream || !strings.Contains(r.Error.Error(), "mysql") {
		t.Fatalf("query with bad settings: %+v", r)
	}
}
