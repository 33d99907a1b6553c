package plugin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/patchgrid/patchgrid/analytics/api"
	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// TestVerdictsQuery: the verdicts query type, sent through QueryData as
// Grafana sends it, shows the same stale hosts, end-of-life hosts and
// unmatched packages as the API's /api/v1/verdicts on the same store.
func TestVerdictsQuery(t *testing.T) {
	for _, raw := range []string{`{"verdict": "bogus"}`, `{"staleAfter": "soon"}`, `{"staleAfter": "-1h"}`} {
		if _, err := ParseQuery(TypeVerdicts, []byte(raw)); err == nil {
			t.Errorf("%s accepted", raw)
		}
	}

	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	old, fresh := now.Add(-10*24*time.Hour), now.Add(-time.Hour)
	// buster-1: a Debian 10 host (end of life) last scanned 10 days ago,
	// with one package of an ecosystem no advisory covers; bookworm-1 is
	// scanned an hour ago.
	if err := st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_ecosystem", "inventory_hash"},
		[][]any{{"buster-1", "s1", old, old, "buster", "Debian:10", "inv1"}, {"bookworm-1", "s2", fresh, fresh, "bookworm", "Debian:12", "inv2"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Insert(ctx, "inventory_packages", []string{"inventory_hash", "ecosystem", "name", "version", "v_key"},
		[][]any{{"inv1", "Hex", "phoenix", "1.7.0", "k"}}); err != nil {
		t.Fatal(err)
	}

	tokens := auth.New(st, auth.Options{})
	secret, _, err := tokens.Create(ctx, auth.CreateRequest{Name: "plugin-test", Role: auth.Viewer, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Config{Store: st, Logger: quiet, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	fromAPI := func(path string) map[string][]map[string]any {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
		lists := map[string][]map[string]any{}
		for _, k := range []string{"stale_hosts", "eol_findings", "unmatched"} {
			for _, v := range out[k].([]any) {
				lists[k] = append(lists[k], v.(map[string]any))
			}
		}
		return lists
	}

	d := NewWithStore(st, quiet)
	defer d.Dispose()
	// same checks that the panel's frame has the API list's rows, in its
	// order, with the API's values in the named columns.
	same := func(model string, want []map[string]any, cols map[string]string) {
		t.Helper()
		f := frameOf(t, queryOne(t, d, model, backend.TimeRange{From: old, To: now}))
		if f.Rows() != len(want) {
			t.Fatalf("%s: %d rows, the API %d", model, f.Rows(), len(want))
		}
		for r, w := range want {
			for col, key := range cols {
				i := fieldIndex(f, col)
				if i < 0 {
					t.Fatalf("%s: no column %s", model, col)
				}
				got, _ := f.Fields[i].ConcreteAt(r)
				switch g := got.(type) {
				case time.Time:
					got = g.Format(time.RFC3339)
				case int64:
					got = float64(g)
				case uint64:
					got = float64(g)
				}
				if got != w[key] {
					t.Errorf("%s row %d: %s = %v, the API's %s = %v", model, r, col, got, key, w[key])
				}
			}
		}
	}
	host := map[string]string{"host_id": "host_id", "hostname": "hostname", "os": "os"}

	v := fromAPI("/api/v1/verdicts")
	if len(v["stale_hosts"]) != 1 || len(v["eol_findings"]) != 1 || len(v["unmatched"]) != 1 {
		t.Fatalf("the API's verdicts: %v", v)
	}
	same(`{"queryType": "verdicts"}`, v["stale_hosts"], map[string]string{"host_id": "host_id", "hostname": "hostname", "os": "os", "last_scanned_at": "last_scanned_at"})
	same(`{"queryType": "verdicts", "verdict": "eol"}`, v["eol_findings"],
		map[string]string{"host_id": "host_id", "os": "os", "days_past_eol": "days_past_eol", "basis": "basis", "source": "source"})
	same(`{"queryType": "verdicts", "verdict": "unmatched"}`, v["unmatched"],
		map[string]string{"reason": "reason", "ecosystem": "ecosystem", "packages": "packages", "hosts": "hosts"})

	f := frameOf(t, queryOne(t, d, `{"queryType": "verdicts", "verdict": "stale"}`, backend.TimeRange{}))
	if age := number(t, cell(t, f, map[string]string{"host_id": "buster-1"}, "last_scan_age_days")); age < 10 || age > 10.1 {
		t.Errorf("buster-1's last scan is %v days old, want 10", age)
	}
	// A longer limit leaves no stale host, in both.
	if v := fromAPI("/api/v1/verdicts?stale_after=720h"); len(v["stale_hosts"]) != 0 {
		t.Fatalf("API stale_after=720h: %v", v["stale_hosts"])
	}
	same(`{"queryType": "verdicts", "staleAfter": "720h"}`, nil, host)
	// A bad query is the user's to fix: 400, as for the other types.
	if r := queryOne(t, d, `{"queryType": "verdicts", "verdict": "nope"}`, backend.TimeRange{}); r.Error == nil || r.Status != backend.StatusBadRequest {
		t.Errorf("bad verdict: %v (%d), want 400", r.Error, r.Status)
	}
}
