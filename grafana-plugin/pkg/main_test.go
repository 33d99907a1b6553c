package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/grafana-plugin/pkg/plugin"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// The Arrow modules the plugin binary links, on purpose (see README.md,
// "Arrow"): arrow-go/v18 for the SDK's frames, arrow/go/v17 through
// analytics/export. A change here is a decision: update the README with it.
var wantArrow = []string{"github.com/apache/arrow-go/v18", "github.com/apache/arrow/go/v17"}

// pluginBuild is one build of the plugin binary, made once per test run.
type pluginBuild struct {
	once sync.Once
	path string
	err  error
	log  []byte
}

var (
	// built is the binary for the chDB tests: CGO_ENABLED=0, with chDB
	// loaded at run time through purego, which makes it dynamically linked.
	built pluginBuild
	// shipped is the binary `make grafana-plugin` ships: static and
	// stripped (-tags patchgrid_static -ldflags '-s -w'), server backend only.
	shipped pluginBuild
)

// buildPlugin builds the chDB-capable plugin binary under the name Grafana
// looks for.
func buildPlugin(t *testing.T) string { return built.build(t, "-trimpath") }

// buildShipped builds the plugin as the Makefile ships it.
func buildShipped(t *testing.T) string {
	return shipped.build(t, "-trimpath", "-tags", "patchgrid_static", "-ldflags", "-s -w")
}

func (b *pluginBuild) build(t *testing.T, flags ...string) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "gpx-patchgrid-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "gpx_patchgrid_linux_amd64")
		args := append([]string{"build", "-o", b.path}, flags...)
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
		b.log, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("go build: %v\n%s", b.err, b.log)
	}
	return b.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, b := range []*pluginBuild{&built, &shipped} {
		if b.path != "" {
			os.RemoveAll(filepath.Dir(b.path))
		}
	}
	os.Exit(code)
}

// TestArrowModules checks the binary carries exactly the Arrow
// implementations README.md says it does.
func TestArrowModules(t *testing.T) {
	bin := buildShipped(t)
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	var got []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "dep" || f[0] == "=>") && strings.Contains(f[1], "apache/arrow") {
			got = append(got, f[1])
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, wantArrow) {
		t.Fatalf("plugin binary links Arrow modules %v, README.md documents %v", got, wantArrow)
	}
}

// TestShippedBinaryStatic: the binary `make grafana-plugin` ships runs on
// any Linux Grafana runs on (glibc or musl, e.g. Grafana's Alpine images):
// no ELF interpreter, no shared libraries, stripped. Started the way
// Grafana starts it, it serves a clickhouse data source and answers a
// chdb one with why it cannot.
func TestShippedBinaryStatic(t *testing.T) {
	bin := buildShipped(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("%s has program header %v: dynamically linked", bin, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("%s needs shared libraries %v", bin, libs)
	}
	if f.Section(".symtab") != nil {
		t.Fatalf("%s is not stripped (has .symtab)", bin)
	}
	if st, err := os.Stat(bin); err == nil {
		t.Logf("shipped plugin binary: %.1f MB", float64(st.Size())/(1<<20))
	}

	addr := testenv.ClickHouse(t)
	db := testenv.DatabaseName(t)
	t.Cleanup(func() { testenv.DropDatabase(t, addr, db) })
	c := startPlugin(t, bin)
	health := func(jsonData string) *backend.CheckHealthResult {
		t.Helper()
		pctx := backend.PluginContext{OrgID: 1, PluginID: plugin.ID, DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 1, UID: "patchgrid", Name: "patchgrid", Type: plugin.ID, JSONData: json.RawMessage(jsonData), Updated: time.Now(),
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pr, err := c.diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pctx)})
		if err != nil {
			t.Fatal(err)
		}
		return backend.FromProto().CheckHealthResponse(pr)
	}
	// The server answers: whatever the health check then says about the
	// schema (an empty database, or a server too old for the analytics
	// views), the static binary reached it over the native protocol.
	res := health(fmt.Sprintf(`{"backend":"clickhouse","addr":%q,"database":%q}`, addr, db))
	if strings.Contains(res.Message, "open clickhouse store") || strings.Contains(res.Message, "does not answer") {
		t.Fatalf("clickhouse data source from the static binary: %s %s", res.Status, res.Message)
	}
	res = health(fmt.Sprintf(`{"backend":"chdb","dataDir":%q}`, t.TempDir()))
	if res.Status != backend.HealthStatusError || !strings.Contains(res.Message, "statically linked") {
		t.Fatalf("chdb data source from the static binary: %s %s", res.Status, res.Message)
	}
}

// conn is a plugin process as Grafana runs it: go-plugin with the SDK's
// handshake, gRPC, and the plugin sets data, diagnostics and resource.
type conn struct {
	client *goplugin.Client
	data   pluginv2.DataClient
	diag   pluginv2.DiagnosticsClient
	res    pluginv2.ResourceClient
	log    *syncBuffer
}

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

func startPlugin(t *testing.T, bin string, env ...string) *conn {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(bin)
	// go-plugin sets these too; spelled out because they are what Grafana
	// passes and what the SDK checks before serving.
	cmd.Env = append(os.Environ(), grpcplugin.MagicCookieKey+"="+grpcplugin.MagicCookieValue,
		fmt.Sprintf("PLUGIN_PROTOCOL_VERSIONS=%d", grpcplugin.ProtocolVersion))
	cmd.Env = append(cmd.Env, env...)
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		Plugins: map[string]goplugin.Plugin{
			"data":        &grpcplugin.DataGRPCPlugin{},
			"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
			"resource":    &grpcplugin.ResourceGRPCPlugin{},
		},
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		StartTimeout:     60 * time.Second,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Output: logs, Level: hclog.Debug}),
	})
	t.Cleanup(func() {
		client.Kill()
		if t.Failed() {
			t.Logf("plugin log:\n%s", logs)
		}
	})
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin: %v\n%s", err, logs)
	}
	c := &conn{client: client, log: logs}
	for name, dst := range map[string]any{"data": &c.data, "diagnostics": &c.diag, "resource": &c.res} {
		raw, err := rpc.Dispense(name)
		if err != nil {
			t.Fatalf("dispense %s: %v", name, err)
		}
		switch d := dst.(type) {
		case *pluginv2.DataClient:
			*d = raw.(pluginv2.DataClient)
		case *pluginv2.DiagnosticsClient:
			*d = raw.(pluginv2.DiagnosticsClient)
		case *pluginv2.ResourceClient:
			*d = raw.(pluginv2.ResourceClient)
		}
	}
	return c
}

// query sends queries (refId → model) and decodes the answer as Grafana does.
func (c *conn) query(t *testing.T, pctx backend.PluginContext, tr backend.TimeRange, models map[string]string) map[string]backend.DataResponse {
	t.Helper()
	req := &backend.QueryDataRequest{PluginContext: pctx}
	for ref, m := range models {
		var head struct {
			QueryType string `json:"queryType"`
		}
		_ = json.Unmarshal([]byte(m), &head)
		req.Queries = append(req.Queries, backend.DataQuery{RefID: ref, QueryType: head.QueryType, JSON: json.RawMessage(m), TimeRange: tr, MaxDataPoints: 1000, Interval: time.Minute})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pr, err := c.data.QueryData(ctx, backend.ToProto().QueryDataRequest(req))
	if err != nil {
		t.Fatalf("QueryData: %v\n%s", err, c.log)
	}
	resp, err := backend.FromProto().QueryDataResponse(pr)
	if err != nil {
		t.Fatalf("decode QueryData response: %v", err)
	}
	return resp.Responses
}

// want is what the frame of a KPI should hold, read with kpi.Run on the
// same data before the plugin started.
type want struct {
	model string
	table *export.Table
}

// TestPluginProcess starts the built plugin the way Grafana does, on a chDB
// store seeded with kpitest's fleet, and checks that its KPI frames hold
// exactly what kpi.Run (the HTTP API's function) returns on the same data,
// that the health check passes, that the trend is a wide time series, and
// that bad queries are error responses, not crashes.
func TestPluginProcess(t *testing.T) {
	lib := testenv.CHDBLib(t)
	bin := buildPlugin(t)
	dir := t.TempDir()

	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Backend: "chdb", CHDBLib: lib, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	kpitest.Migrate(t, st)
	fleet := kpitest.Seed(t, st)
	wants := map[string]want{}
	for ref, q := range map[string]struct {
		model string
		name  string
		q     kpi.Query
	}{
		"mttr":     {`{"queryType":"kpi","kpi":"mttr"}`, "mttr", kpi.Query{}},
		"open":     {`{"queryType":"kpi","kpi":"open_exposure","dimension":"ring"}`, "open_exposure", kpi.Query{Dimension: "ring"}},
		"sla":      {`{"queryType":"kpi","kpi":"sla_compliance","dimension":"owner","severity":"all"}`, "sla_compliance", kpi.Query{Dimension: "owner", Severity: "all"}},
		"coverage": {`{"queryType":"kpi","kpi":"patch_coverage","dimension":"ring"}`, "patch_coverage", kpi.Query{Dimension: "ring"}},
		"window":   {`{"queryType":"kpi","kpi":"exposure_window"}`, "exposure_window", kpi.Query{}},
	} {
		tbl, err := kpi.Run(ctx, st, q.name, q.q)
		if err != nil {
			t.Fatal(err)
		}
		wants[ref] = want{q.model, tbl}
	}
	// One process per chDB directory: the plugin opens it next.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// The library comes from the plugin's environment, as grafana.ini's
	// [plugin.patchgrid-datasource] chdb_lib sets it; the chdbLib a data
	// source editor wrote is never loaded (the health check below passes
	// only if the real library was used).
	c := startPlugin(t, bin, "GF_PLUGIN_CHDB_LIB="+lib, "PATCHGRID_CHDB_LIB=")
	settings := fmt.Sprintf(`{"backend":"chdb","dataDir":%q,"chdbLib":%q}`, dir, filepath.Join(dir, "evil.so"))
	pctx := backend.PluginContext{
		OrgID:    1,
		PluginID: plugin.ID,
		DataSourceInstanceSettings: &backend.DataSourceInstanceSettings{
			ID: 1, UID: "patchgrid", Name: "patchgrid", Type: plugin.ID, JSONData: json.RawMessage(settings), Updated: time.Now(),
		},
	}
	year := backend.TimeRange{From: fleet.Day(365), To: fleet.Now}

	t.Run("health", func(t *testing.T) {
		pr, err := c.diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: backend.ToProto().PluginContext(pctx)})
		if err != nil {
			t.Fatal(err)
		}
		res := backend.FromProto().CheckHealthResponse(pr)
		if res.Status != backend.HealthStatusOk || !strings.Contains(res.Message, "schema present") || !strings.Contains(res.Message, "chdbLib is ignored") {
			t.Fatalf("health: %s %s", res.Status, res.Message)
		}
	})

	t.Run("kpis equal kpi.Run", func(t *testing.T) {
		models := map[string]string{}
		for ref, w := range wants {
			models[ref] = w.model
		}
		resp := c.query(t, pctx, year, models)
		for ref, w := range wants {
			r := resp[ref]
			if r.Error != nil || len(r.Frames) != 1 {
				t.Errorf("%s: error %v, %d frames", ref, r.Error, len(r.Frames))
				continue
			}
			sameAsTable(t, ref, r.Frames[0], w.table)
		}
	})

	t.Run("trend", func(t *testing.T) {
		r := c.query(t, pctx, year, map[string]string{"T": `{"queryType":"trend","dimension":"ring","severity":"all"}`})["T"]
		if r.Error != nil || len(r.Frames) != 1 {
			t.Fatalf("trend: %v", r.Error)
		}
		f := r.Frames[0]
		if f.Meta == nil || f.Meta.Type != data.FrameTypeTimeSeriesWide || f.TimeSeriesSchema().Type != data.TimeSeriesTypeWide {
			t.Fatalf("trend frame is not declared wide: %+v", f.Meta)
		}
		rings := map[string]bool{}
		for _, fl := range f.Fields[1:] {
			rings[fl.Labels["dim_value"]] = true
		}
		// h4 (pilot) never had an exposure, so no pilot series.
		if len(rings) != 2 || !rings["prod"] || !rings["test"] {
			t.Fatalf("trend series by ring: %v", rings)
		}
	})

	t.Run("bad queries answer with errors", func(t *testing.T) {
		resp := c.query(t, pctx, year, map[string]string{
			"bad":  `{"queryType":"kpi","kpi":"no_such_kpi"}`,
			"json": `{"queryType":"findings","limit":"many"}`,
			"type": `{"queryType":"graph"}`,
			"ok":   `{"queryType":"hosts","limit":10}`,
		})
		for _, ref := range []string{"bad", "json", "type"} {
			if resp[ref].Error == nil || resp[ref].Status != backend.StatusBadRequest {
				t.Errorf("%s: error %v status %d, want a 400 error", ref, resp[ref].Error, resp[ref].Status)
			}
		}
		if ok := resp["ok"]; ok.Error != nil || len(ok.Frames) != 1 || ok.Frames[0].Rows() != 4 {
			t.Errorf("good query next to bad ones: %v %v", ok.Error, ok.Frames)
		}
	})

	t.Run("resource kpis", func(t *testing.T) {
		stream, err := c.res.CallResource(ctx, backend.ToProto().CallResourceRequest(&backend.CallResourceRequest{
			PluginContext: pctx, Path: "kpis", Method: "GET", URL: "kpis",
		}))
		if err != nil {
			t.Fatal(err)
		}
		pr, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		r := backend.FromProto().CallResourceResponse(pr)
		var cat plugin.Catalog
		if r.Status != 200 || json.Unmarshal(r.Body, &cat) != nil || len(cat.KPIs) != len(kpi.All()) {
			t.Fatalf("/kpis: %d %s", r.Status, r.Body)
		}
	})

	// Grafana stops a plugin through go-plugin; the plugin must close chDB
	// before it exits.
	c.client.Kill()
	if !c.client.Exited() {
		t.Fatal("plugin still running after Kill")
	}
	if !strings.Contains(c.log.String(), "store closed") {
		t.Errorf("plugin exited without closing its store; log:\n%s", c.log)
	}
}

// sameAsTable checks that frame f holds the values of tbl, column by
// column, as the plugin converts them: NaN and the epoch are null, arrays
// are comma-joined text. Durations of still open exposures grow with the
// clock between the two reads, hence the float tolerance (0.01 days).
func sameAsTable(t *testing.T, name string, f *data.Frame, tbl *export.Table) {
	t.Helper()
	if len(f.Fields) != len(tbl.Columns) || f.Rows() != len(tbl.Rows) {
		t.Errorf("%s: frame %d fields × %d rows, table %d × %d", name, len(f.Fields), f.Rows(), len(tbl.Columns), len(tbl.Rows))
		return
	}
	if len(tbl.Rows) == 0 {
		t.Errorf("%s: no rows: the comparison would prove nothing", name)
	}
	for i, col := range tbl.Columns {
		fl := f.Fields[i]
		if fl.Name != col.Name {
			t.Errorf("%s: field %d is %s, column is %s", name, i, fl.Name, col.Name)
			continue
		}
		for r, row := range tbl.Rows {
			got, ok := fl.ConcreteAt(r)
			if !ok {
				got = nil
			}
			exp := row[i]
			switch x := exp.(type) {
			case float64:
				if math.IsNaN(x) {
					exp = nil
				}
			case time.Time:
				if x.Unix() == 0 {
					exp = nil
				}
			case []string:
				exp = strings.Join(x, ", ")
			}
			if !equalValue(got, exp) {
				t.Errorf("%s row %d %s: plugin %v (%T), kpi.Run %v (%T)", name, r, col.Name, got, got, exp, exp)
			}
		}
	}
}

func equalValue(got, exp any) bool {
	if got == nil || exp == nil {
		return got == nil && exp == nil
	}
	if g, ok := got.(time.Time); ok {
		e, ok := exp.(time.Time)
		return ok && g.Equal(e)
	}
	gf, gNum := asNumber(got)
	ef, eNum := asNumber(exp)
	if gNum || eNum {
		return gNum && eNum && math.Abs(gf-ef) <= 0.01
	}
	return got == exp
}

func asNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case int16:
		return float64(x), true
	case int8:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint8:
		return float64(x), true
	}
	return 0, false
}
