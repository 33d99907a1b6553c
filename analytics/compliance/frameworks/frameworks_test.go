package frameworks_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/compliance/frameworks"
	"github.com/patchgrid/patchgrid/analytics/exception"
	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/schemas/severity"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestPresetsCiteTheirSources(t *testing.T) {
	ps, err := frameworks.Presets()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ policy, scope, cite string }{
		"internal-sla":   {"default", "all", "patchgrid policy show"},
		"cisa-bod-22-01": {"cisa-bod-22-01", "kev", "https://www.cisa.gov/news-events/directives/bod-22-01-reducing-significant-risk-known-exploited-vulnerabilities"},
		"pci-dss-6.3.3":  {"pci-dss-6.3.3", "all", "PCI DSS v4.0, requirement 6.3.3"},
	}
	if len(ps) != len(want) {
		t.Fatalf("%d presets, want %d", len(ps), len(want))
	}
	for _, p := range ps {
		w, ok := want[p.ID]
		if !ok {
			t.Errorf("unexpected preset %s", p.ID)
			continue
		}
		if p.Policy != w.policy || p.Scope != w.scope || !strings.Contains(p.Source, w.cite) {
			t.Errorf("%s: policy %q scope %q source %q; want %q %q citing %q", p.ID, p.Policy, p.Scope, p.Source, w.policy, w.scope, w.cite)
		}
		// The file itself cites the source in its comments too, for a
		// reader of the YAML.
		src, ok := frameworks.PresetSource(p.ID)
		if !ok || !strings.Contains(string(src), "Source") && p.Policy != frameworks.InternalPolicy {
			t.Errorf("%s: the preset file does not cite its source", p.ID)
		}
	}
	pci := ps[2]
	if pci.ID != "pci-dss-6.3.3" || pci.SLA.Days["critical"] != 30 || pci.SLA.Days["high"] != 30 || pci.SLA.KEVDueDate {
		t.Errorf("PCI DSS 6.3.3: critical and high within one month, no KEV rule: got %+v", pci.SLA)
	}
	if bod := ps[0]; bod.ID != "cisa-bod-22-01" || !bod.SLA.KEVDueDate {
		t.Errorf("BOD 22-01 must take the KEV due date: got %+v", bod.SLA)
	}
}

func TestParseRefusesIncompletePresets(t *testing.T) {
	days := "  days: {critical: 1, high: 1, medium: 1, low: 1, none: 1, unknown: 1}\n"
	for name, src := range map[string]string{
		"no source":       "framework: x\ntitle: X\npolicy: x\nscope: all\nsla:\n" + days,
		"bad scope":       "framework: x\ntitle: X\nsource: s\npolicy: x\nscope: some\nsla:\n" + days,
		"unknown field":   "framework: x\ntitle: X\nsource: s\npolicy: x\nscope: all\nnote: n\nsla:\n" + days,
		"missing sev":     "framework: x\ntitle: X\nsource: s\npolicy: x\nscope: all\nsla:\n  days: {critical: 1}\n",
		"no sla":          "framework: x\ntitle: X\nsource: s\npolicy: x\nscope: all\n",
		"default has sla": "framework: x\ntitle: X\nsource: s\npolicy: default\nscope: all\nsla:\n" + days,
		"unknown sev":     "framework: x\ntitle: X\nsource: s\npolicy: x\nscope: all\nsla:\n  days: {critical: 1, high: 1, medium: 1, low: 1, none: 1, unknown: 1, severe: 1}\n",
	} {
		if _, err := frameworks.Parse(name+".yaml", []byte(src)); !errors.Is(err, frameworks.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// TestMigrationLoadsThePresets holds the rows 0019_posture.sql loads to the
// preset files: the files are the documented source of each framework.
func TestMigrationLoadsThePresets(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	loaded, err := frameworks.List(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := frameworks.Presets()
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != len(ps) {
		t.Fatalf("store has %d frameworks, presets %d", len(loaded), len(ps))
	}
	for i, p := range ps {
		l := loaded[i]
		if l.ID != p.ID || l.Title != p.Title || l.Policy != p.Policy || l.Scope != p.Scope || l.Source != p.Source {
			t.Errorf("store has %+v, preset file says %+v", l, p)
		}
		if p.SLA == nil {
			// The internal SLA's rows are the active policy's: the
			// migration's defaults until a policy is applied.
			if len(l.Days) != len(severity.All) {
				t.Errorf("%s: %d severities in sla_policy", p.ID, len(l.Days))
			}
			continue
		}
		if !maps.Equal(l.Days, p.SLA.Days) || l.KEVDueDate != p.SLA.KEVDueDate {
			t.Errorf("%s: sla_policy has %v kev=%v, preset %v kev=%v", p.ID, l.Days, l.KEVDueDate, p.SLA.Days, p.SLA.KEVDueDate)
		}
	}
}

// posture reads compliance_posture for dimension (and value) keyed by
// framework and dim_value.
func posture(t *testing.T, st store.Store, dimension string) map[string]map[string]any {
	t.Helper()
	tab, err := frameworks.Posture(context.Background(), st, frameworks.Query{Dimension: dimension})
	if err != nil {
		t.Fatal(err)
	}
	return byKey(tab, "framework", "dim_value")
}

func byKey(tab *export.Table, cols ...string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, r := range tab.Records() {
		var k []string
		for _, c := range cols {
			k = append(k, str(r[c]))
		}
		out[strings.Join(k, "/")] = r
	}
	return out
}

func str(v any) string {
	if d, ok := v.(time.Time); ok {
		return d.UTC().Format(time.DateOnly)
	}
	return fmt.Sprint(v)
}

// TestPostureHandWorked checks compliance_posture on kpitest's fleet, worked
// by hand (clock_start = latest of first seen, publication and fix release):
//
//	h1/A1 critical KEV  clock -45, resolved -31: met under all three
//	h1/A2 high          clock -35, resolved -10: met (default 30 d, PCI 30 d)
//	h2/A1 critical KEV  open, clock -45: KEV due end of -20 (default, BOD),
//	                    -15 (PCI): overdue under all three
//	h2/A2 high          open, clock -35: deadline -5 (default, PCI): overdue
//	h3/A3 medium        clock -150, resolved -100: met
//	h3/A4 low           open, clock -100: default 180 d -> open, PCI 90 d ->
//	                    overdue since -10
//	h4                  nothing
//
// BOD 22-01 judges KEV advisories only (A1).
func TestPostureHandWorked(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	f := kpitest.Seed(t, st)
	ctx := context.Background()

	type want struct{ hosts, compliant, strict, open, overdue, accepted, exceptions, stale uint64 }
	check := func(label string, got map[string]map[string]any, exp map[string]want) {
		t.Helper()
		for k, w := range exp {
			r, ok := got[k]
			if !ok {
				t.Errorf("%s: no posture row %s (have %d rows)", label, k, len(got))
				continue
			}
			g := want{u(r["hosts"]), u(r["compliant_hosts"]), u(r["compliant_hosts_strict"]), u(r["open_in_scope"]),
				u(r["overdue"]), u(r["overdue_accepted"]), u(r["open_exceptions"]), u(r["stale_hosts"])}
			if g != w {
				t.Errorf("%s: %s = %+v, want %+v", label, k, g, w)
			}
		}
	}
	check("no exceptions", posture(t, st, "all"), map[string]want{
		"internal-sla/":   {4, 3, 3, 3, 2, 0, 0, 0},
		"cisa-bod-22-01/": {4, 3, 3, 1, 1, 0, 0, 0},
		"pci-dss-6.3.3/":  {4, 2, 2, 3, 3, 0, 0, 0},
	})
	check("by ring", posture(t, st, "ring"), map[string]want{
		"pci-dss-6.3.3/test":   {1, 0, 0, 1, 1, 0, 0, 0},
		"pci-dss-6.3.3/prod":   {2, 1, 1, 2, 2, 0, 0, 0},
		"cisa-bod-22-01/pilot": {1, 1, 1, 0, 0, 0, 0, 0},
	})

	// An approved exception for CVE-2024-0001 (A1) on h2: accepted, not
	// hidden. Under BOD 22-01 h2 becomes compliant; under the internal SLA
	// and PCI it still has A2 overdue.
	book := exception.New(st, nil, exception.Config{})
	ex, err := book.Request(ctx, exception.Request{Advisory: "CVE-2024-0001", Host: "h2", Owner: "bob", Reason: "vendor appliance",
		Requester: "bob", ExpiresIn: 10 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := book.Approve(ctx, ex.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	// Posture is as of the last refresh: the exception counts from the next.
	check("before the refresh", posture(t, st, "all"), map[string]want{"cisa-bod-22-01/": {4, 3, 3, 1, 1, 0, 0, 0}})
	kpitest.Refresh(t, st)
	check("with the exception", posture(t, st, "all"), map[string]want{
		"internal-sla/":   {4, 3, 3, 3, 1, 1, 1, 0},
		"cisa-bod-22-01/": {4, 4, 3, 1, 0, 1, 1, 0},
		"pci-dss-6.3.3/":  {4, 2, 2, 3, 2, 1, 1, 0},
	})

	// The trend (exceptions not applied): days on which exposures became
	// overdue, counted at the end of each day.
	tr, err := frameworks.Trend(ctx, st, frameworks.Query{})
	if err != nil {
		t.Fatal(err)
	}
	day := func(d int) string { return f.Day(d).UTC().Format(time.DateOnly) }
	type point struct{ became, stopped, overdue, hosts int64 }
	got := map[string]point{}
	for _, r := range tr.Records() {
		got[str(r["framework"])+"/"+str(r["day"])[:10]] = point{i(r["became_overdue"]), i(r["stopped_overdue"]), i(r["overdue_at_end"]), i(r["noncompliant_hosts_at_end"])}
	}
	wantTrend := map[string]point{
		"internal-sla/" + day(20):   {1, 0, 1, 1}, // h2/A1 past its KEV due date
		"internal-sla/" + day(5):    {1, 0, 2, 1}, // h2/A2: same host
		"cisa-bod-22-01/" + day(20): {1, 0, 1, 1},
		"pci-dss-6.3.3/" + day(15):  {1, 0, 1, 1}, // h2/A1
		"pci-dss-6.3.3/" + day(10):  {1, 0, 2, 2}, // h3/A4: a second host
		"pci-dss-6.3.3/" + day(5):   {1, 0, 3, 2}, // h2/A2
	}
	if len(got) != len(wantTrend) {
		t.Errorf("trend has %d rows %v, want %d", len(got), got, len(wantTrend))
	}
	for k, w := range wantTrend {
		if got[k] != w {
			t.Errorf("trend %s = %+v, want %+v", k, got[k], w)
		}
	}

	// A mistyped framework is an error, never an empty posture.
	if _, err := frameworks.Posture(ctx, st, frameworks.Query{Framework: "pci-dss"}); !errors.Is(err, frameworks.ErrUnknownFramework) {
		t.Errorf("unknown framework: %v", err)
	}
	if _, err := frameworks.Posture(ctx, st, frameworks.Query{Dimension: "team"}); err == nil {
		t.Error("unknown dimension accepted")
	}

	// A stale limit of 30 hours makes h2 and h3 (last scanned 2 days ago)
	// stale: never compliant, their exposures neither overdue nor accepted
	// (as in kpi_patch_coverage); h1 and h4 (1 day ago) are compliant.
	if err := kpi.SetStaleAfter(ctx, st, 30*time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	kpitest.Refresh(t, st)
	check("with stale hosts", posture(t, st, "all"), map[string]want{
		"internal-sla/":   {4, 2, 2, 3, 0, 0, 1, 2},
		"cisa-bod-22-01/": {4, 2, 2, 1, 0, 0, 1, 2},
		"pci-dss-6.3.3/":  {4, 2, 2, 3, 0, 0, 1, 2},
	})
}

// TestPostureSnapshotsEqualLive holds the posture tables of a refresh to
// their live definitions, and checks that an overdue exposure that is
// resolved leaves the trend and its host turns compliant again.
func TestPostureSnapshotsEqualLive(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	kpitest.Seed(t, st)
	ctx := context.Background()
	// A strict framework under which the resolved exposures were missed,
	// so the trend has days on which exposures stopped being overdue.
	if err := st.Insert(ctx, "compliance_frameworks", []string{"framework", "title", "policy", "scope", "source", "updated_at"},
		[][]any{{"strict-test", "Strict (test)", "strict-test", "all", "this test", time.Now().UTC()}}); err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for _, s := range severity.All {
		rows = append(rows, []any{"strict-test", s, uint32(1), uint8(0), time.Now().UTC()})
	}
	if err := st.Insert(ctx, "sla_policy", []string{"policy", "severity", "sla_days", "kev_due_date", "updated_at"}, rows); err != nil {
		t.Fatal(err)
	}
	kpitest.Refresh(t, st)
	for _, v := range []string{"compliance_posture", "compliance_posture_trend"} {
		var diff uint64
		q := "SELECT count() FROM ((SELECT * FROM " + v + " EXCEPT SELECT * FROM " + v + "_live) UNION ALL (SELECT * FROM " + v + "_live EXCEPT SELECT * FROM " + v + "))"
		r, err := st.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			if err := r.Scan(&diff); err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
		if diff != 0 {
			t.Errorf("%s: %d rows differ between the snapshot and the live view", v, diff)
		}
	}
	// Under the 1-day clock: h1/A1 (clock -45) overdue -44..-31, h1/A2
	// (clock -35) -34..-10, h3/A3 (clock -150) -149..-100; h2/A1, h2/A2
	// and h3/A4 open and overdue. h1 is non-compliant from -44 to -10.
	tr, err := frameworks.Trend(ctx, st, frameworks.Query{Framework: "strict-test", Dimension: "owner", Value: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var last map[string]any
	stopped := int64(0)
	for _, r := range tr.Records() {
		stopped += i(r["stopped_overdue"])
		last = r
	}
	// alice owns h1 and h3: at the end, h3/A4 is overdue (h3 non-compliant),
	// h1 has recovered; three of alice's exposures stopped being overdue.
	if last == nil || i(last["overdue_at_end"]) != 1 || i(last["noncompliant_hosts_at_end"]) != 1 || stopped != 3 {
		t.Errorf("alice's trend ends %v with %d stopped, want 1 overdue on 1 host and 3 stopped", last, stopped)
	}
}

func u(v any) uint64 {
	switch x := v.(type) {
	case uint64:
		return x
	case int64:
		return uint64(x)
	}
	return 1 << 63
}

func i(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case uint64:
		return int64(x)
	}
	return -1 << 62
}
