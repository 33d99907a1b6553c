package kpi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/ingest/feeds"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// rec is one advisories row of a rating test.
type rec struct {
	source, id string
	aliases    []string
	severity   string
	vector     string
	score      float32
	specific   string
	published  time.Time
}

func insertRecords(t *testing.T, st store.Store, loaded time.Time, recs ...rec) {
	t.Helper()
	var rows [][]any
	for _, r := range recs {
		var cves []string
		for _, s := range append([]string{r.id}, r.aliases...) {
			if len(s) > 4 && s[:4] == "CVE-" {
				cves = append(cves, s)
			}
		}
		if r.published.IsZero() {
			r.published = time.Unix(0, 0).UTC()
		}
		ver := ""
		if r.vector != "" {
			ver = r.vector[5:8]
		}
		rows = append(rows, []any{r.source, r.id, "h-" + r.id, loaded, r.published, uint8(0), r.aliases, cves,
			r.severity, ver, r.vector, r.score, r.specific, loaded})
	}
	if err := st.Insert(context.Background(), "advisories", []string{"source", "advisory_id", "record_hash", "modified", "published",
		"withdrawn", "aliases", "cves", "severity", "cvss_version", "cvss_vector", "cvss_score", "specific", "loaded_at"}, rows); err != nil {
		t.Fatal(err)
	}
}

func advisoryRows(t *testing.T, st store.Store) map[string]map[string]any {
	t.Helper()
	r, err := st.Query(context.Background(), `SELECT source, advisory_id, severity, severity_source, cvss_version, cvss_score, cves,
		kev, has_epss, epss, ssvc_exploitation, known_at, disclosed_at FROM kpi_advisories`)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := export.ReadTable(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, m := range tbl.Records() {
		out[fmt.Sprint(m["source"], "/", m["advisory_id"])] = m
	}
	return out
}

// tm reads a time column (export.Table renders times as RFC 3339 text).
func tm(t *testing.T, m map[string]any, col string) time.Time {
	t.Helper()
	switch v := m[col].(type) {
	case time.Time:
		return v
	case string:
		x, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t.Fatalf("column %s: %v", col, err)
		}
		return x
	}
	t.Fatalf("column %s: %T is not a time", col, m[col])
	return time.Time{}
}

const (
	vec98 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" // 9.8
	vec75 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H" // 7.5
)

// TestSeverityPrecedence works through the precedence of 0006's
// vuln_ratings, one vulnerability per rule: the finding's record takes the
// rating of the first tier any linked record fills.
func TestSeverityPrecedence(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	now := time.Now().UTC().Truncate(time.Second)
	day := func(d int) time.Time { return now.Add(-time.Duration(d) * 24 * time.Hour) }
	insertRecords(t, st, now,
		// V1: Debian's own urgency beats the CVE record's and Red Hat's CVSS.
		rec{source: "osv", id: "DEBIAN-CVE-2023-0001", aliases: []string{"CVE-2023-0001"}, severity: "unknown", published: day(10)},
		rec{source: "debian-tracker", id: "CVE-2023-0001", severity: "low"},
		rec{source: "cve", id: "CVE-2023-0001", severity: "critical", vector: vec98, score: 9.8, published: day(40),
			specific: `{"cvss_provider":"CISA-ADP","ssvc":{"exploitation":"active"}}`},
		rec{source: "redhat-vex", id: "CVE-2023-0001", severity: "high", vector: vec75, score: 7.5, published: day(30)},
		// V2: no distro rating: an OSV CVSS vector (GO) beats the CVE
		// record's CVSS and GHSA's word. The Debian record names no alias
		// at all: its id carries the CVE.
		rec{source: "osv", id: "DEBIAN-CVE-2023-0002", severity: "unknown"},
		rec{source: "osv", id: "GHSA-aaaa-aaaa-aaaa", aliases: []string{"CVE-2023-0002"}, severity: "medium"},
		rec{source: "osv", id: "GO-2023-0002", aliases: []string{"CVE-2023-0002", "GHSA-aaaa-aaaa-aaaa"}, severity: "high", vector: vec75, score: 7.5},
		rec{source: "cve", id: "CVE-2023-0002", severity: "critical", vector: vec98, score: 9.8},
		// V3: another distribution's rating (Ubuntu's priority) beats GHSA's.
		rec{source: "osv", id: "DEBIAN-CVE-2023-0003", aliases: []string{"CVE-2023-0003"}, severity: "unknown"},
		rec{source: "osv", id: "UBUNTU-CVE-2023-0003", aliases: []string{"CVE-2023-0003"}, severity: "low"},
		rec{source: "osv", id: "GHSA-bbbb-bbbb-bbbb", aliases: []string{"CVE-2023-0003"}, severity: "moderate"},
		// V4: only GHSA's word.
		rec{source: "osv", id: "DEBIAN-CVE-2023-0004", aliases: []string{"CVE-2023-0004"}, severity: "unknown"},
		rec{source: "osv", id: "GHSA-cccc-cccc-cccc", aliases: []string{"CVE-2023-0004"}, severity: "HIGH"},
		// V5: nothing rates it.
		rec{source: "osv", id: "DEBIAN-CVE-2023-0005", aliases: []string{"CVE-2023-0005"}, severity: "unknown"},
		rec{source: "osv", id: "PYSEC-2023-5", aliases: []string{"CVE-2023-0005"}, severity: ""},
		// ... though a USN rates it together with another CVE: the USN
		// speaks for its own findings only.
		rec{source: "osv", id: "USN-9999-1", aliases: []string{"CVE-2023-0005", "CVE-2023-0099"}, severity: "high"},
	)
	got := advisoryRows(t, st)
	for _, c := range []struct {
		key, sev, src string
		score         float64
	}{
		{"osv/DEBIAN-CVE-2023-0001", "low", "debian-urgency:debian-tracker/CVE-2023-0001", 9.8},
		{"redhat-vex/CVE-2023-0001", "high", "redhat-severity:redhat-vex/CVE-2023-0001", 7.5},
		{"cve/CVE-2023-0001", "critical", "cve-cvss:cve/CVE-2023-0001", 9.8},
		{"osv/DEBIAN-CVE-2023-0002", "high", "cvss:osv/GO-2023-0002", 7.5},
		{"osv/GHSA-aaaa-aaaa-aaaa", "high", "cvss:osv/GO-2023-0002", 7.5},
		{"osv/DEBIAN-CVE-2023-0003", "low", "ubuntu-priority:osv/UBUNTU-CVE-2023-0003", 0},
		{"osv/GHSA-bbbb-bbbb-bbbb", "low", "ubuntu-priority:osv/UBUNTU-CVE-2023-0003", 0},
		{"osv/DEBIAN-CVE-2023-0004", "high", "ghsa:osv/GHSA-cccc-cccc-cccc", 0},
		{"osv/DEBIAN-CVE-2023-0005", "unknown", "", 0},
		{"osv/PYSEC-2023-5", "unknown", "", 0},
		{"osv/USN-9999-1", "high", "ubuntu-priority:osv/USN-9999-1", 0},
	} {
		r := got[c.key]
		if r == nil {
			t.Errorf("%s: no kpi_advisories row", c.key)
			continue
		}
		if r["severity"] != c.sev || r["severity_source"] != c.src || math.Abs(num(t, r, "cvss_score")-c.score) > 1e-6 {
			t.Errorf("%s: severity %v from %q, cvss %v; want %s from %q, %v", c.key, r["severity"], r["severity_source"], r["cvss_score"], c.sev, c.src, c.score)
		}
	}
	// The CVE record's SSVC reaches every record of the vulnerability;
	// disclosure is the earliest publication among them (the CVE record's
	// -40d), known_at the record's own.
	d1 := got["osv/DEBIAN-CVE-2023-0001"]
	if d1["ssvc_exploitation"] != "active" || fmt.Sprint(d1["cves"]) != "[CVE-2023-0001]" {
		t.Errorf("DEBIAN-CVE-2023-0001: ssvc %v cves %v", d1["ssvc_exploitation"], d1["cves"])
	}
	if k, d := tm(t, d1, "known_at"), tm(t, d1, "disclosed_at"); !k.Equal(day(10)) || !d.Equal(day(40)) {
		t.Errorf("DEBIAN-CVE-2023-0001: known_at %v disclosed_at %v, want %v %v", k, d, day(10), day(40))
	}
	if d2 := got["osv/DEBIAN-CVE-2023-0002"]; fmt.Sprint(d2["cves"]) != "[CVE-2023-0002]" {
		t.Errorf("DEBIAN-CVE-2023-0002: cves %v (the CVE its id wraps)", d2["cves"])
	}
	if d5, u := got["osv/DEBIAN-CVE-2023-0005"], got["osv/USN-9999-1"]; fmt.Sprint(d5["cves"]) != "[CVE-2023-0005]" || fmt.Sprint(u["cves"]) != "[CVE-2023-0005 CVE-2023-0099]" {
		t.Errorf("cves: DEBIAN-CVE-2023-0005 %v, USN-9999-1 %v", d5["cves"], u["cves"])
	}
}

// TestKEVAndEPSSByAlias: KEV and EPSS join on every CVE of the
// vulnerability — a record whose id wraps the CVE, and a PYSEC record that
// only aliases a GHSA that aliases the CVE — and, with the shared data, the
// aliases the data README §1 lists.
func TestKEVAndEPSSByAlias(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	insertRecords(t, st, now,
		rec{source: "osv", id: "DEBIAN-CVE-2024-0100", severity: "unknown"},
		rec{source: "osv", id: "PYSEC-2024-1", aliases: []string{"GHSA-dddd-dddd-dddd"}, severity: ""},
		rec{source: "osv", id: "GHSA-dddd-dddd-dddd", aliases: []string{"CVE-2024-0200"}, severity: "high"},
		rec{source: "osv", id: "GO-2024-1", aliases: []string{"CVE-2024-0300"}, severity: ""},
	)
	if err := st.Insert(ctx, "kev", []string{"cve", "due_date", "loaded_at"}, [][]any{
		{"CVE-2024-0100", now, now}, {"CVE-2024-0200", now, now}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Insert(ctx, "epss", []string{"cve", "epss", "percentile", "loaded_at"}, [][]any{
		{"CVE-2024-0200", 0.5, 0.9, now}, {"CVE-2024-0100", 0.01, 0.2, now}}); err != nil {
		t.Fatal(err)
	}
	got := advisoryRows(t, st)
	for _, c := range []struct {
		key     string
		kev     uint8
		epss    float64
		hasEPSS uint8
	}{
		{"osv/DEBIAN-CVE-2024-0100", 1, 0.01, 1},
		{"osv/PYSEC-2024-1", 1, 0.5, 1},
		{"osv/GHSA-dddd-dddd-dddd", 1, 0.5, 1},
		{"osv/GO-2024-1", 0, 0, 0},
	} {
		r := got[c.key]
		if r == nil || r["kev"] != c.kev || r["has_epss"] != c.hasEPSS || math.Abs(num(t, r, "epss")-c.epss) > 1e-9 {
			t.Errorf("%s: %v; want kev %d epss %v", c.key, r, c.kev, c.epss)
		}
	}
	if p := got["osv/PYSEC-2024-1"]; p["severity"] != "high" || p["severity_source"] != "ghsa:osv/GHSA-dddd-dddd-dddd" {
		t.Errorf("PYSEC-2024-1 takes the GHSA's rating: %v from %v", p["severity"], p["severity_source"])
	}
}

// TestKEVAliasesSharedData loads the shared KEV catalogue and the PyPA, Go
// and GHSA records and checks the alias joins the data README §1 lists.
func TestKEVAliasesSharedData(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	shared := testenv.SharedData(t)
	loadFeeds(t, st,
		filepath.Join(shared, "kev", "known_exploited_vulnerabilities.json"),
		filepath.Join(shared, "advisories", "pypa-advisory-database-osv.jsonl.gz"),
		filepath.Join(shared, "advisories", "go-vulndb-osv.tar.gz"),
		filepath.Join(shared, "advisories", "osv-records-from-test-fixtures.jsonl.gz"))
	got := advisoryRows(t, st)
	for _, id := range []string{"PYSEC-2020-102", "PYSEC-2020-103", "PYSEC-2020-104", "PYSEC-2022-236", "PYSEC-2020-14", "PYSEC-2020-18",
		"GO-2022-0535", "GO-2025-3459", "GHSA-qppj-fm5r-hxr3", "GHSA-c9hw-wf7x-jp9j", "GHSA-pjfr-qf3p-3q25", "GHSA-p836-389h-j692"} {
		r := got["osv/"+id]
		if r == nil {
			t.Errorf("%s is not loaded", id)
			continue
		}
		if r["kev"] != uint8(1) {
			t.Errorf("%s (CVEs %v) is not flagged KEV", id, r["cves"])
		}
	}
}

func loadFeeds(t *testing.T, st store.Store, paths ...string) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	l := &feeds.Loader{Store: st, Log: quiet, Lookup: func(eco string) (feed.Comparator, error) { return version.Lookup(eco) }}
	for _, p := range paths {
		if _, err := l.Load(context.Background(), p); err != nil {
			t.Fatalf("load %s: %v", p, err)
		}
	}
}

// TestSLAClockRules works each rule of 0006's SLA clock by hand, on host h5
// added to the known fleet (first scan -60d, still running inventory inv-f)
// and host h6 (inv-g from -60d, fixed at -5d):
//
//	B1 high, published -10d, fix -10d: clock -10d (not first_seen -60d),
//	   due +20d: open, not overdue (0004's clock said overdue since -30d)
//	B2 medium, no published date, first loaded -5d (then reloaded now):
//	   clock -5d, due +85d: open
//	B3 critical, unfixed, published -100d: no_fix, never overdue
//	B4 high, will_not_fix: no_fix
//	B5 high, published -100d, fix released -40d: clock -40d, due -10d:
//	   overdue by 10 days
//	B7 medium, published -30d, its CVE record published -50d; h6 fixed it
//	   at -5d: met (due +60d), time to patch from disclosure 45d, from
//	   first seen 55d, from publication 25d
func TestSLAClockRules(t *testing.T) {
	st, fleet := seeded(t)
	ctx := context.Background()
	day := fleet.Day
	zero := time.Unix(0, 0).UTC()
	insertRecords(t, st, fleet.Now,
		rec{source: "osv", id: "B1", aliases: []string{"CVE-2025-0001"}, severity: "high", published: day(10)},
		rec{source: "osv", id: "B3", aliases: []string{"CVE-2025-0003"}, severity: "critical", published: day(100)},
		rec{source: "osv", id: "B4", aliases: []string{"CVE-2025-0004"}, severity: "high", published: day(100)},
		rec{source: "osv", id: "B5", aliases: []string{"CVE-2025-0005"}, severity: "high", published: day(100)},
		rec{source: "osv", id: "B7", aliases: []string{"CVE-2025-0007"}, severity: "medium", published: day(30)},
		rec{source: "cve", id: "CVE-2025-0007", severity: "", published: day(50)},
	)
	// B2 first loaded 5 days ago; refreshes record that first load.
	insertRecords(t, st, day(5), rec{source: "osv", id: "B2", aliases: []string{"CVE-2025-0002"}, severity: "medium"})
	kpitest.Refresh(t, st)
	insertRecords(t, st, fleet.Now, rec{source: "osv", id: "B2", aliases: []string{"CVE-2025-0002"}, severity: "medium"})
	if err := st.Exec(ctx, "OPTIMIZE TABLE advisories FINAL"); err != nil {
		t.Fatal(err)
	}

	type fnd struct {
		inv, adv, status string
		fix              time.Time
	}
	var rows [][]any
	for _, f := range []fnd{
		{"inv-f", "B1", "affected", day(10)}, {"inv-f", "B2", "affected", zero}, {"inv-f", "B3", "unfixed", zero},
		{"inv-f", "B4", "will_not_fix", zero}, {"inv-f", "B5", "affected", day(40)}, {"inv-g", "B7", "affected", zero},
	} {
		fixed := ""
		if f.status == "affected" {
			fixed = "2.0"
		}
		rows = append(rows, []any{f.inv, "Debian:12", "pkg" + f.adv, "1.0", "amd64", "pkg" + f.adv, "1.0", "osv", f.adv, "h-" + f.adv, f.status, fixed, f.fix, fleet.Now})
	}
	if err := st.Insert(ctx, "match_inventory_findings", []string{"inventory_hash", "ecosystem", "name", "version", "arch", "match_name", "match_version",
		"source", "advisory_id", "record_hash", "status", "fixed", "fix_published", "matched_at"}, rows); err != nil {
		t.Fatal(err)
	}
	var ranges [][]any
	for _, r := range []struct {
		adv string
		fix time.Time
	}{{"B1", day(10)}, {"B5", day(40)}} {
		ranges = append(ranges, []any{"osv", r.adv, "h-" + r.adv, "Debian:12", "pkg" + r.adv, uint16(0), "affected", "2.0", r.fix})
	}
	if err := st.Insert(ctx, "affected_ranges", []string{"source", "advisory_id", "record_hash", "ecosystem", "package", "range_idx", "status", "fixed", "fix_published"}, ranges); err != nil {
		t.Fatal(err)
	}
	var scans [][]any
	for _, s := range []struct {
		host, inv string
		d         int
	}{{"h5", "inv-f", 60}, {"h5", "inv-f", 1}, {"h6", "inv-g", 60}, {"h6", "inv-c", 5}} {
		at := day(s.d)
		scans = append(scans, []any{s.host, fmt.Sprintf("%s-%d", s.host, s.d), at, at, s.host + ".example", "debian", "12", "Debian:12", s.inv, "carol", "lab", uint8(1), uint8(0)})
	}
	if err := st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_id", "os_version", "os_ecosystem",
		"inventory_hash", "owner", "ring", "criticality", "internet_facing"}, scans); err != nil {
		t.Fatal(err)
	}
	kpitest.Refresh(t, st)

	r, err := st.Query(ctx, `SELECT advisory_id, sla_state, clock_start, sla_deadline, days_past_sla, fix_available, known_at,
		ttp_disclosure_days, remediation_days, ttp_publication_days
		FROM kpi_exposure_sla WHERE policy = 'default' AND host_id IN ('h5', 'h6')`)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := export.ReadTable(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]any{}
	for _, m := range tbl.Records() {
		got[m["advisory_id"].(string)] = m
	}
	at := func(m map[string]any, col string) time.Time { return tm(t, m, col) }
	nan := math.NaN()
	for _, c := range []struct {
		adv, state    string
		clock, due    time.Time
		past, fix     float64
		dis, rem, pub float64
	}{
		{"B1", "open", day(10), day(-20), 0, 1, nan, nan, nan},
		{"B2", "open", day(5), day(-85), 0, 1, nan, nan, nan},
		{"B3", "no_fix", day(60), day(45), 0, 0, nan, nan, nan},
		{"B4", "no_fix", day(60), day(30), 0, 0, nan, nan, nan},
		{"B5", "overdue", day(40), day(10), 10, 1, nan, nan, nan},
		{"B7", "met", day(30), day(-60), 0, 1, 45, 55, 25},
	} {
		m := got[c.adv]
		if m == nil {
			t.Errorf("%s: no exposure", c.adv)
			continue
		}
		if m["sla_state"] != c.state || !at(m, "clock_start").Equal(c.clock) || !at(m, "sla_deadline").Equal(c.due) {
			t.Errorf("%s: state %v clock %v due %v; want %s %v %v", c.adv, m["sla_state"], at(m, "clock_start"), at(m, "sla_deadline"), c.state, c.clock, c.due)
		}
		check(t, m, map[string]float64{"days_past_sla": c.past, "fix_available": c.fix,
			"ttp_disclosure_days": c.dis, "remediation_days": c.rem, "ttp_publication_days": c.pub})
	}
	if k := at(got["B2"], "known_at"); !k.Equal(day(5)) {
		t.Errorf("B2 known_at %v, want its first load %v", k, day(5))
	}
	// no_fix is reported apart: not in compliance, not overdue on coverage.
	sla := run(t, st, "sla_compliance", Query{Dimension: "ring", Value: "lab", Severity: "all"})
	check(t, row(t, sla, map[string]any{}), map[string]float64{"exposures": 6, "met": 1, "overdue": 1, "open_in_sla": 2, "no_fix": 2, "compliance_pct": 50})
	mttr := run(t, st, "mttr", Query{Dimension: "ring", Value: "lab", Severity: "all"})
	check(t, row(t, mttr, map[string]any{}), map[string]float64{"resolved": 1, "mttr_days": 55, "mttr_disclosure_days": 45, "median_disclosure_days": 45})
	ttp := run(t, st, "time_to_patch", Query{Dimension: "ring", Value: "lab", Severity: "all"})
	check(t, row(t, ttp, map[string]any{}), map[string]float64{"from_disclosure_avg_days": 45, "from_first_seen_avg_days": 55, "from_publication_avg_days": 25})
}
