package kpi

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// TestReleaseRatings works 0020's per-release rating by hand on two hosts,
// r12 on Debian 12 (bookworm) and r11 on Debian 11 (bullseye), each with a
// finding of the same two vulnerabilities:
//
//	R1 the tracker record CVE-2025-9001 rates bookworm low and bullseye
//	   high (its record severity is the worst, high): r12 low, r11 high,
//	   each from the tracker's urgency for its release
//	R2 the OSV record DEBIAN-CVE-2025-9002 (unrated) of a CVE the tracker
//	   rates bullseye low and trixie high (record severity high), and the
//	   CVE record critical: r11 takes bullseye's low through the alias;
//	   r12 has no bookworm rating and falls back to vuln_ratings' tier 1,
//	   the tracker record's worst urgency (high)
//
// The severity reaches the SLA policy (sla_days of that severity) and
// finding_risk.
func TestReleaseRatings(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	day := func(d int) time.Time { return now.Add(-time.Duration(d) * 24 * time.Hour) }
	insertRecords(t, st, now,
		rec{source: "debian-tracker", id: "CVE-2025-9001", severity: "high", published: day(20),
			specific: `{"urgency":{"Debian:11":"high","Debian:12":"low"}}`},
		rec{source: "osv", id: "DEBIAN-CVE-2025-9002", aliases: []string{"CVE-2025-9002"}, severity: "unknown", published: day(20)},
		rec{source: "debian-tracker", id: "CVE-2025-9002", severity: "high", published: day(20),
			specific: `{"urgency":{"Debian:11":"low","Debian:13":"high"}}`},
		rec{source: "cve", id: "CVE-2025-9002", severity: "critical", vector: vec98, score: 9.8, published: day(20)},
	)
	var findings, scans [][]any
	for _, h := range []struct{ host, eco, ver string }{{"r12", "Debian:12", "12"}, {"r11", "Debian:11", "11"}} {
		inv := "inv-" + h.host
		for _, f := range []struct{ src, adv, pkg string }{
			{"debian-tracker", "CVE-2025-9001", "curl"}, {"osv", "DEBIAN-CVE-2025-9002", "openssl"}} {
			findings = append(findings, []any{inv, h.eco, f.pkg, "1.0", "amd64", f.pkg, "1.0", f.src, f.adv, "h-" + f.adv, "affected", "2.0", day(10), now})
		}
		scans = append(scans, []any{h.host, h.host + "-1", day(1), day(1), h.host + ".example", "debian", h.ver, h.eco, inv, "dave", "rel", uint8(1), uint8(0)})
	}
	if err := st.Insert(ctx, "match_inventory_findings", []string{"inventory_hash", "ecosystem", "name", "version", "arch", "match_name", "match_version",
		"source", "advisory_id", "record_hash", "status", "fixed", "fix_published", "matched_at"}, findings); err != nil {
		t.Fatal(err)
	}
	if err := st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_id", "os_version", "os_ecosystem",
		"inventory_hash", "owner", "ring", "criticality", "internet_facing"}, scans); err != nil {
		t.Fatal(err)
	}
	kpitest.Refresh(t, st)

	days := map[string]any{}
	r, err := st.Query(ctx, `SELECT severity, sla_days FROM sla_policy FINAL WHERE policy = 'default'`)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := export.ReadTable(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range pol.Records() {
		days[m["severity"].(string)] = m["sla_days"]
	}

	read := func(query string) map[string]map[string]any {
		t.Helper()
		r, err := st.Query(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := export.ReadTable(r, 0)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]any{}
		for _, m := range tbl.Records() {
			out[fmt.Sprint(m["host_id"], " ", m["advisory_id"])] = m
		}
		return out
	}
	sla := read(`SELECT host_id, advisory_id, severity, severity_source, sla_days FROM kpi_exposure_sla WHERE policy = 'default'`)
	risk := read(`SELECT host_id, advisory_id, severity, severity_source FROM finding_risk`)
	live := read(`SELECT host_id, advisory_id, severity, severity_source FROM kpi_exposures_live`)
	for _, c := range []struct{ key, sev, src string }{
		{"r12 CVE-2025-9001", "low", "debian-urgency:debian-tracker/CVE-2025-9001@Debian:12"},
		{"r11 CVE-2025-9001", "high", "debian-urgency:debian-tracker/CVE-2025-9001@Debian:11"},
		{"r11 DEBIAN-CVE-2025-9002", "low", "debian-urgency:debian-tracker/CVE-2025-9002@Debian:11"},
		{"r12 DEBIAN-CVE-2025-9002", "high", "debian-urgency:debian-tracker/CVE-2025-9002"},
	} {
		for name, got := range map[string]map[string]map[string]any{"kpi_exposure_sla": sla, "finding_risk": risk, "kpi_exposures_live": live} {
			m := got[c.key]
			if m == nil {
				t.Errorf("%s: no row for %s", name, c.key)
				continue
			}
			if m["severity"] != c.sev || m["severity_source"] != c.src {
				t.Errorf("%s %s: severity %v from %q; want %s from %q", name, c.key, m["severity"], m["severity_source"], c.sev, c.src)
			}
		}
		if m := sla[c.key]; m != nil && fmt.Sprint(m["sla_days"]) != fmt.Sprint(days[c.sev]) {
			t.Errorf("%s: sla_days %v, want the %s policy's %v", c.key, m["sla_days"], c.sev, days[c.sev])
		}
	}
	// Per record (no host), the tracker record keeps its worst urgency.
	if a := advisoryRows(t, st)["debian-tracker/CVE-2025-9001"]; a["severity"] != "high" {
		t.Errorf("kpi_advisories CVE-2025-9001: %v, want the worst urgency high", a["severity"])
	}
}

// BenchmarkReleaseRatings reads vuln_release_ratings over a tracker-sized
// corpus (b.N is not the size: 30,000 CVEs rated in four releases, each
// with an OSV Debian record that aliases it), against vuln_ratings over the
// same records in the same run (the resolution the exposures already pay).
func BenchmarkReleaseRatings(b *testing.B) {
	st := testenv.CHDBStore(b)
	kpitest.Migrate(b, st)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	const n = 30000
	cols := []string{"source", "advisory_id", "record_hash", "modified", "published", "withdrawn", "aliases", "cves", "severity", "specific", "loaded_at"}
	var rows [][]any
	sev := []string{"low", "medium", "high", "critical"}
	for i := 0; i < n; i++ {
		cve := fmt.Sprintf("CVE-2024-%05d", i)
		spec := fmt.Sprintf(`{"urgency":{"Debian:11":%q,"Debian:12":%q,"Debian:13":%q,"Debian:sid":%q}}`, sev[i%4], sev[(i+1)%4], sev[(i+2)%4], sev[(i+3)%4])
		rows = append(rows,
			[]any{"debian-tracker", cve, "t" + cve, now, now, uint8(0), []string{}, []string{cve}, "critical", spec, now},
			[]any{"osv", "DEBIAN-" + cve, "o" + cve, now, now, uint8(0), []string{cve}, []string{cve}, "unknown", "", now})
	}
	if err := st.Insert(ctx, "advisories", cols, rows); err != nil {
		b.Fatal(err)
	}
	count := func(view string) uint64 {
		r, err := st.Query(ctx, "SELECT count() FROM "+view)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		var c uint64
		for r.Next() {
			if err := r.Scan(&c); err != nil {
				b.Fatal(err)
			}
		}
		return c
	}
	// What stdin matching pays per batch: the ratings of 100 records.
	var keys []match.RecordKey
	for i := 0; i < 100; i++ {
		keys = append(keys, match.RecordKey{Source: "osv", AdvisoryID: fmt.Sprintf("DEBIAN-CVE-2024-%05d", i*300)})
	}
	b.ResetTimer()
	var release, vuln, batch time.Duration
	for i := 0; i < b.N; i++ {
		t2 := time.Now()
		rt, ok, err := match.ResolveRatings(ctx, st, keys)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
		if r, _ := rt.Of(keys[1], "Debian:12"); r.Severity != "medium" { // i = 300: sev[(i+1)%4]
			b.Fatalf("%s on Debian:12: %+v, want medium", keys[1].AdvisoryID, r)
		}
		batch += time.Since(t2)
		t0 := time.Now()
		if c := count("vuln_release_ratings"); c != 8*n {
			b.Fatalf("vuln_release_ratings: %d rows, want %d", c, 8*n)
		}
		t1 := time.Now()
		if c := count("vuln_ratings"); c != 2*n {
			b.Fatalf("vuln_ratings: %d rows, want %d", c, 2*n)
		}
		release, vuln = release+t1.Sub(t0), vuln+time.Since(t1)
	}
	b.ReportMetric(float64(release.Milliseconds())/float64(b.N), "release-ms/op")
	b.ReportMetric(float64(vuln.Milliseconds())/float64(b.N), "vuln-ms/op")
	b.ReportMetric(float64(batch.Milliseconds())/float64(b.N), "match-batch-ms/op")
}
