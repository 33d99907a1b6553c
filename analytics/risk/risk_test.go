package risk

import (
	"context"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func seeded(t *testing.T) (store.Store, kpitest.Fleet) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	return st, kpitest.Seed(t, st)
}

func TestRiskScores(t *testing.T) {
	st, fleet := seeded(t)
	ctx := context.Background()

	// The breakdown adds up for every exposure, open or resolved, and every
	// part stays within its documented range.
	rows, err := st.Query(ctx, "SELECT host_id, advisory_id, risk_cvss, risk_epss, risk_kev, risk_asset, risk_internet, risk_sla, risk_score FROM exposure_risk")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var host, adv string
		var p Parts
		var score float64
		if err := rows.Scan(&host, &adv, &p.CVSS, &p.EPSS, &p.KEV, &p.Asset, &p.Internet, &p.SLA, &score); err != nil {
			t.Fatal(err)
		}
		n++
		if math.Abs(p.Sum()-score) > 1e-9 {
			t.Errorf("%s/%s: parts %+v sum to %v, score %v", host, adv, p, p.Sum(), score)
		}
		for _, c := range []struct {
			v, max float64
		}{{p.CVSS, 35}, {p.EPSS, 15}, {p.KEV, 20}, {p.Asset, 10}, {p.Internet, 10}, {p.SLA, 10}} {
			if c.v < 0 || c.v > c.max {
				t.Errorf("%s/%s: part %v outside 0..%v", host, adv, c.v, c.max)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if n != 6 {
		t.Fatalf("%d exposures scored, want 6", n)
	}

	// h2/A1 is open 20 days past A1's KEV due date (its deadline is the end
	// of that day); h1/A1 was fixed before the due date.
	daysPast := fleet.Now.Sub(fleet.KEVDeadline()).Hours() / 24
	for _, c := range []struct {
		host, adv string
		want      Parts
		level     string
	}{
		{"h1", "A1", Parts{CVSS: 34.3, EPSS: 13.95, KEV: 15, Asset: 10, Internet: 10, SLA: 0}, "critical"},
		{"h2", "A1", Parts{CVSS: 34.3, EPSS: 13.95, KEV: 20, Asset: 5, Internet: 0, SLA: math.Round(1000*daysPast/30) / 100}, "critical"},
		// A2's clock starts at its fix (-35d, after both hosts first ran
		// it): h1/A2 was fixed 5 days before its 30-day deadline, h2/A2 is
		// open 5 days past it.
		{"h1", "A2", Parts{CVSS: 26.25, EPSS: 3.5, KEV: 0, Asset: 10, Internet: 10, SLA: 0}, "medium"},
		{"h2", "A2", Parts{CVSS: 26.25, EPSS: 3.5, KEV: 0, Asset: 5, Internet: 0, SLA: 1.67}, "medium"},
		// A3 has no CVSS score: medium counts as 5.0; criticality 0 counts as 2.
		{"h3", "A3", Parts{CVSS: 17.5, EPSS: 0, KEV: 0, Asset: 5, Internet: 0, SLA: 0}, "low"},
		{"h3", "A4", Parts{CVSS: 10.85, EPSS: 0.51, KEV: 0, Asset: 5, Internet: 0, SLA: 0}, "low"},
	} {
		b, ok, err := Explain(ctx, st, c.host, "osv", c.adv)
		if err != nil || !ok {
			t.Fatalf("explain %s/%s: ok=%v err=%v", c.host, c.adv, ok, err)
		}
		if d := b.Parts.Sum() - c.want.Sum(); math.Abs(d) > 0.011 || math.Abs(b.Parts.KEV-c.want.KEV) > 0 || math.Abs(b.Parts.CVSS-c.want.CVSS) > 1e-9 ||
			math.Abs(b.Parts.EPSS-c.want.EPSS) > 1e-9 || b.Parts.Asset != c.want.Asset || b.Parts.Internet != c.want.Internet || math.Abs(b.Parts.SLA-c.want.SLA) > 0.011 {
			t.Errorf("%s/%s: parts %+v, want %+v", c.host, c.adv, b.Parts, c.want)
		}
		if b.Level != c.level || b.Formula == "" {
			t.Errorf("%s/%s: level %q, want %q", c.host, c.adv, b.Level, c.level)
		}
	}
	if _, ok, err := Explain(ctx, st, "h4", "osv", "A1"); ok || err != nil {
		t.Errorf("h4 was never exposed: ok=%v err=%v", ok, err)
	}

	// Host risk: the highest open finding and its parts.
	tbl, ok, err := Host(ctx, st, "h2")
	if err != nil || !ok {
		t.Fatalf("host h2: ok=%v err=%v", ok, err)
	}
	h := tbl.Records()[0]
	if h["top_advisory_id"] != "A1" || h["open_exposures"] != uint64(2) || h["overdue"] != uint64(2) || h["host_risk_level"] != "critical" {
		t.Errorf("h2: %v", h)
	}
	top := h["top_risk_cvss"].(float64) + h["top_risk_epss"].(float64) + h["top_risk_kev"].(float64) + h["top_risk_asset"].(float64) + h["top_risk_internet"].(float64) + h["top_risk_sla"].(float64)
	if math.Abs(top-h["host_risk"].(float64)) > 1e-9 {
		t.Errorf("h2 top parts sum to %v, host_risk %v", top, h["host_risk"])
	}
	tbl, _, err = Host(ctx, st, "h4")
	if err != nil || tbl.Records()[0]["host_risk"] != 0.0 || tbl.Records()[0]["open_exposures"] != uint64(0) {
		t.Errorf("clean host h4: %v %v", tbl, err)
	}
	if _, ok, _ := Host(ctx, st, "nope"); ok {
		t.Error("unknown host found")
	}
	hosts, err := Hosts(ctx, st, HostFilter{Ring: "prod"}, Page{Limit: 10})
	if err != nil || len(hosts.Rows) != 2 || hosts.Records()[0]["host_id"] != "h2" {
		t.Errorf("prod hosts riskiest first: %v %v", hosts, err)
	}
}

func TestFindingsFilters(t *testing.T) {
	st, _ := seeded(t)
	ctx := context.Background()
	yes, no := true, false
	for _, c := range []struct {
		name string
		f    Filter
		want []string // host/advisory/package, riskiest first
	}{
		{"all", Filter{}, []string{"h2/A1/pkga", "h2/A2/pkgb", "h3/A4/pkgd"}},
		{"kev", Filter{KEV: &yes}, []string{"h2/A1/pkga"}},
		{"not kev", Filter{KEV: &no}, []string{"h2/A2/pkgb", "h3/A4/pkgd"}},
		{"severity", Filter{Severity: []string{"high", "low"}}, []string{"h2/A2/pkgb", "h3/A4/pkgd"}},
		{"ring", Filter{Ring: "test"}, []string{"h3/A4/pkgd"}},
		{"owner", Filter{Owner: "bob"}, []string{"h2/A1/pkga", "h2/A2/pkgb"}},
		{"os", Filter{OS: "Alpine:v3.22"}, []string{"h3/A4/pkgd"}},
		{"min risk", Filter{MinRisk: 30}, []string{"h2/A1/pkga", "h2/A2/pkgb"}},
		{"host", Filter{HostID: "h1"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows, err := Findings(ctx, st, c.f, &Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			tbl, err := export.ReadTable(rows, 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range tbl.Records() {
				got = append(got, r["host_id"].(string)+"/"+r["advisory_id"].(string)+"/"+r["package"].(string))
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	// Paging cuts the ordered result.
	rows, err := Findings(ctx, st, Filter{}, &Page{Limit: 1, Offset: 1})
	if err != nil {
		t.Fatal(err)
	}
	tbl, _ := export.ReadTable(rows, 0)
	if len(tbl.Rows) != 1 || tbl.Records()[0]["advisory_id"] != "A2" {
		t.Errorf("page 2 of 1: %v", tbl.Records())
	}
	if _, _, err := FindingsSQL(Filter{Severity: []string{"urgent"}}, nil); err == nil {
		t.Error("unknown severity: want error")
	}
}

// TestExportColumnsTypesAndREADME streams the findings through Copy (which
// fails on any column whose type does not scan into its Kind) and checks
// that the export README documents exactly FindingColumns.
func TestExportColumnsTypesAndREADME(t *testing.T) {
	st, fleet := seeded(t)
	fleetKEVDue := func(*testing.T, store.Store) string { return fleet.KEVDue().Format(time.RFC3339) }
	rows, err := Findings(context.Background(), st, Filter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var sb strings.Builder
	w, _ := export.NewWriter("json", &sb, FindingColumns)
	n, err := export.Copy(context.Background(), rows, FindingColumns, w, 2)
	if err != nil || n != 3 {
		t.Fatalf("copy: n=%d err=%v", n, err)
	}
	// KEV's due date is a timestamp, "none" is null.
	if !strings.Contains(sb.String(), `"kev_due_date":"`+fleetKEVDue(t, st)+`"`) || !strings.Contains(sb.String(), `"kev_due_date":null`) {
		t.Errorf("export: %s", sb.String())
	}

	readme, err := os.ReadFile("../export/README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([a-z<>0-9]+) \\|")
	var doc []string
	for _, m := range re.FindAllStringSubmatch(string(readme), -1) {
		doc = append(doc, m[1]+":"+m[2])
	}
	var want []string
	for _, c := range FindingColumns {
		want = append(want, c.Name+":"+c.Kind.String())
	}
	if strings.Join(doc, " ") != strings.Join(want, " ") {
		t.Errorf("README columns\n%v\nwant\n%v", doc, want)
	}
}
