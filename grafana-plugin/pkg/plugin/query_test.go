package plugin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		name, queryType, json string
		check                 func(t *testing.T, q Query)
		err                   string
	}{
		{name: "kpi", json: `{"queryType":"kpi","kpi":"mttr","dimension":"ring","severity":"all"}`,
			check: func(t *testing.T, q Query) {
				if q.Type != TypeKPI || q.KPI != "mttr" || q.Dimension != "ring" {
					t.Errorf("%+v", q)
				}
			}},
		{name: "type from DataQuery wins", queryType: "hosts", json: `{"queryType":"kpi"}`,
			check: func(t *testing.T, q Query) {
				if q.Type != TypeHosts || q.Limit != defaultLimit {
					t.Errorf("%+v", q)
				}
			}},
		{name: "default type is kpi", json: `{"kpi":"open_exposure"}`,
			check: func(t *testing.T, q Query) {
				if q.Type != TypeKPI {
					t.Errorf("%+v", q)
				}
			}},
		{name: "trend default metric", json: `{"queryType":"trend","dimension":"os"}`,
			check: func(t *testing.T, q Query) {
				if q.Metric != "open_at_end" {
					t.Errorf("%+v", q)
				}
			}},
		{name: "findings filters", json: `{"queryType":"findings","severity":"critical, high","kev":"true","minRisk":50,"limit":10}`,
			check: func(t *testing.T, q Query) {
				f, err := q.findingsFilter()
				if err != nil || len(f.Severity) != 2 || f.KEV == nil || !*f.KEV || f.MinRisk != 50 || q.Limit != 10 {
					t.Errorf("%+v %+v %v", q, f, err)
				}
			}},
		{name: "unknown kpi", json: `{"queryType":"kpi","kpi":"nope"}`, err: `unknown KPI "nope"`},
		{name: "missing kpi", json: `{"queryType":"kpi"}`, err: "unknown KPI"},
		{name: "unknown dimension", json: `{"kpi":"mttr","dimension":"planet"}`, err: "unknown dimension"},
		{name: "kpi without severity", json: `{"kpi":"patch_coverage","severity":"high"}`, err: "no severity breakdown"},
		{name: "unknown type", queryType: "logs", err: `unknown query type "logs"`},
		{name: "bad severity", json: `{"queryType":"findings","severity":"urgent"}`, err: `unknown severity "urgent"`},
		{name: "bad kev", json: `{"queryType":"findings","kev":"maybe"}`, err: "kev"},
		{name: "min risk range", json: `{"queryType":"hosts","minRisk":101}`, err: "out of range"},
		{name: "limit range", json: `{"queryType":"findings","limit":10001}`, err: "limit 10001"},
		{name: "negative limit", json: `{"queryType":"hosts","limit":-1}`, err: "limit -1"},
		{name: "bad metric", json: `{"queryType":"trend","metric":"closed"}`, err: `unknown trend metric "closed"`},
		{name: "exceptions ignored", json: `{"queryType":"kpi","kpi":"sla_compliance","exceptions":"ignored"}`,
			check: func(t *testing.T, q Query) {
				if k := q.kpiQuery(); k.Exceptions != "ignored" {
					t.Errorf("%+v", k)
				}
				if f, _ := q.findingsFilter(); f.Exceptions != "ignored" || q.hostFilter().Exceptions != "ignored" {
					t.Errorf("%+v %+v", f, q.hostFilter())
				}
			}},
		{name: "bad exceptions kpi", json: `{"kpi":"mttr","exceptions":"maybe"}`, err: `exceptions "maybe"`},
		{name: "bad exceptions findings", json: `{"queryType":"findings","exceptions":"maybe"}`, err: `exceptions "maybe"`},
		{name: "bad exceptions hosts", json: `{"queryType":"hosts","exceptions":"maybe"}`, err: `exceptions "maybe"`},
		{name: "count accepted", json: `{"queryType":"count","slaState":"accepted"}`,
			check: func(t *testing.T, q Query) {
				if q.SLAState != "accepted" {
					t.Errorf("%+v", q)
				}
			}},
		{name: "not JSON", json: `{"kpi":`, err: "query JSON"},
		{name: "wrong JSON type", json: `{"limit":"ten"}`, err: "query JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ParseQuery(tt.queryType, []byte(tt.json))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, q)
		})
	}
}

// FuzzParseQuery: panel JSON comes from users; no input may panic, and an
// accepted query must run through the same validation again unchanged.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{`{"queryType":"kpi","kpi":"mttr"}`, `{"queryType":"findings","severity":"critical","kev":"1","minRisk":20}`,
		`{"queryType":"trend","metric":"opened","dimension":"ring","value":"prod"}`, `{"queryType":"hosts","limit":5}`, `[]`, `null`} {
		f.Add("", []byte(s))
	}
	f.Fuzz(func(t *testing.T, queryType string, raw []byte) {
		q, err := ParseQuery(queryType, raw)
		if err != nil {
			return
		}
		again, err := json.Marshal(q)
		if err != nil {
			t.Fatal(err)
		}
		q2, err := ParseQuery("", again)
		if err != nil {
			t.Fatalf("accepted %+v, then rejected its own JSON: %v", q, err)
		}
		if q2 != q {
			t.Fatalf("re-parse changed the query: %+v -> %+v", q, q2)
		}
	})
}

func TestLoadSettings(t *testing.T) {
	tests := []struct {
		name, json string
		secure     map[string]string
		want       Settings
		err        string
	}{
		{name: "chdb default backend", json: `{"dataDir":"/var/lib/patchgrid"}`, want: Settings{Backend: "chdb", DataDir: "/var/lib/patchgrid", CHDBLib: "/admin/libchdb.so"}},
		{name: "clickhouse with password", json: `{"backend":"clickhouse","addr":"ch:9000","database":"pg","user":"grafana","dialTimeoutSeconds":3}`,
			secure: map[string]string{"password": "s3cret"},
			want:   Settings{Backend: "clickhouse", Addr: "ch:9000", Database: "pg", User: "grafana", DialTimeoutSeconds: 3, Password: "s3cret", CHDBLib: "/admin/libchdb.so"}},
		{name: "password never read from jsonData", json: `{"backend":"clickhouse","addr":"ch:9000","password":"leak"}`,
			want: Settings{Backend: "clickhouse", Addr: "ch:9000", CHDBLib: "/admin/libchdb.so"}},
		{name: "chdb needs dir", json: `{}`, err: "needs a data directory"},
		{name: "clickhouse needs addr", json: `{"backend":"clickhouse"}`, err: "needs a server address"},
		{name: "unknown backend", json: `{"backend":"postgres"}`, err: `unknown backend "postgres"`},
		{name: "negative timeout", json: `{"dataDir":"d","dialTimeoutSeconds":-1}`, err: "negative"},
		{name: "bad JSON", json: `{"backend":1}`, err: "jsonData"},
		// An editor of the data source must not choose the library the
		// plugin dlopens: jsonData's chdbLib is noted, never used.
		{name: "chdbLib never read from jsonData", json: `{"dataDir":"d","chdbLib":"/tmp/evil.so"}`,
			want: Settings{Backend: "chdb", DataDir: "d", CHDBLib: "/admin/libchdb.so", IgnoredCHDBLib: "/tmp/evil.so"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadSettings(backend.DataSourceInstanceSettings{Name: "pg", JSONData: []byte(tt.json), DecryptedSecureJSONData: tt.secure}, "/admin/libchdb.so")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			cfg := got.StoreConfig()
			if cfg.Backend != got.Backend || cfg.Password != got.Password || cfg.CHDBLib != "/admin/libchdb.so" || cfg.DialTimeout.Seconds() != float64(got.DialTimeoutSeconds) {
				t.Fatalf("store config %+v from %+v", cfg, got)
			}
		})
	}
}

func TestCHDBLibFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	if got := CHDBLibFromEnv(env(map[string]string{"GF_PLUGIN_CHDB_LIB": "/a.so", "PATCHGRID_CHDB_LIB": "/b.so"})); got != "/a.so" {
		t.Errorf("grafana.ini's [plugin.%s] chdb_lib must win: %q", ID, got)
	}
	if got := CHDBLibFromEnv(env(map[string]string{"PATCHGRID_CHDB_LIB": "/b.so"})); got != "/b.so" {
		t.Errorf("PATCHGRID_CHDB_LIB: %q", got)
	}
	if got := CHDBLibFromEnv(env(map[string]string{"PATCHGRID_CACHE": "/c"})); got != "/c/chdb/lib/libchdb.so" {
		t.Errorf("default: %q", got)
	}
}
