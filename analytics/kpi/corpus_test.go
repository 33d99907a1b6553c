package kpi

import (
	"archive/zip"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/ingest/feeds/cve5"
	"github.com/patchgrid/patchgrid/scanner/inventory/dpkg"
	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// TestUnknownOnlyWhenUnrated is the acceptance check of issue 11 on the
// shared corpus: the two real Debian 12 hosts, matched against the Debian
// changelog-derived records with the other rating sources loaded (CISA's
// vulnrichment CVE JSON 5 records, Red Hat VEX, Ubuntu OSV, GHSA, the
// Debian tracker excerpt, KEV). A finding is `unknown` only when no loaded
// record of its vulnerability rates it — checked against the CVE JSON 5
// records parsed here independently of the SQL — and every rated finding
// names its source.
func TestUnknownOnlyWhenUnrated(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 6,036 + 644 records and matches two real hosts")
	}
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	ctx := context.Background()
	data := testenv.SharedData(t)
	adv := filepath.Join(data, "advisories")
	loadFeeds(t, st,
		filepath.Join(adv, "debian12-changelog-derived-osv.zip"),
		filepath.Join(adv, "cve-json5-vulnrichment-debian12-overlap.zip"),
		filepath.Join(adv, "redhat-vex"),
		filepath.Join(adv, "ubuntu-osv"),
		filepath.Join(adv, "ghsa-direct"),
		filepath.Join(adv, "debian-tracker", "vunnel-fixture-debian-tracker-excerpt.json"),
		filepath.Join(data, "kev", "known_exploited_vulnerabilities.json"))
	for _, h := range []struct{ id, file string }{
		{"host-a", "debian12-bookworm-host.status"},
		{"host-b", "debian12-bookworm-host-b.status"},
	} {
		storeDpkgHost(t, st, h.id, filepath.Join(data, "inventories", "dpkg", h.file))
	}
	if _, err := (&match.Job{Store: st}).Run(ctx, match.Full); err != nil {
		t.Fatal(err)
	}
	kpitest.Refresh(t, st)

	// Matching is untouched: OSV-Scanner's 5,369 pairs on host-b.
	var pairs uint64
	queryOne(t, st, `SELECT count() FROM (SELECT DISTINCT name, advisory_id FROM host_findings WHERE host_id = 'host-b')`, &pairs)
	if pairs != 5369 {
		t.Errorf("host-b: %d (package, vulnerability) pairs, OSV-Scanner 5369", pairs)
	}

	// The CVEs the vulnrichment records rate, read without the SQL.
	rated := cve5Rated(t, filepath.Join(adv, "cve-json5-vulnrichment-debian12-overlap.zip"))
	// ... and those the other loaded records rate (their own severity).
	rows, err := st.Query(ctx, `SELECT advisory_id, aliases FROM advisories FINAL
		WHERE withdrawn = 0 AND severity IN ('critical', 'high', 'medium', 'low', 'none')`)
	if err != nil {
		t.Fatal(err)
	}
	wrap := regexp.MustCompile(`^[A-Z]+-(CVE-\d{4}-\d+)$`)
	for rows.Next() {
		var id string
		var aliases []string
		if err := rows.Scan(&id, &aliases); err != nil {
			t.Fatal(err)
		}
		for _, x := range append(aliases, id) {
			if m := wrap.FindStringSubmatch(x); m != nil {
				x = m[1]
			}
			rated[x] = true
		}
	}
	rows.Close()

	var total, unknown, badSource uint64
	queryOne(t, st, `SELECT count(), countIf(severity = 'unknown'), countIf((severity = 'unknown') != (severity_source = ''))
		FROM finding_risk WHERE host_id IN ('host-a', 'host-b')`, &total, &unknown, &badSource)
	if total == 0 || badSource != 0 {
		t.Fatalf("%d findings, %d whose severity_source disagrees with severity", total, badSource)
	}
	rows, err = st.Query(ctx, `SELECT DISTINCT advisory_id, cves FROM finding_risk WHERE host_id IN ('host-a', 'host-b') AND severity = 'unknown'`)
	if err != nil {
		t.Fatal(err)
	}
	var unknownIDs int
	for rows.Next() {
		var id string
		var cves []string
		if err := rows.Scan(&id, &cves); err != nil {
			t.Fatal(err)
		}
		unknownIDs++
		for _, c := range cves {
			if rated[c] {
				t.Errorf("%s is unknown, but a loaded record rates %s", id, c)
			}
		}
	}
	rows.Close()
	var ratedIDs uint64
	queryOne(t, st, `SELECT uniqExact(advisory_id) FROM finding_risk WHERE host_id IN ('host-a', 'host-b') AND severity != 'unknown'`, &ratedIDs)
	if ratedIDs == 0 {
		t.Error("no finding is rated")
	}
	t.Logf("findings %d, unknown %d (%.1f%%); vulnerabilities rated %d, unknown %d (no loaded record rates them)",
		total, unknown, 100*float64(unknown)/float64(total), ratedIDs, unknownIDs)

	// Of the hosts' 2,381 vulnerabilities, 117 have a vulnrichment record;
	// 7 of those carry CVSS (the rest SSVC only), and nothing else loaded
	// rates any of them. Every one of the 117 gets its SSVC status.
	var ssvc uint64
	queryOne(t, st, `SELECT uniqExact(advisory_id) FROM finding_risk WHERE ssvc_exploitation != ''`, &ssvc)
	if ratedIDs != 7 || ssvc != 117 {
		t.Errorf("%d rated vulnerabilities, %d with SSVC; want 7, 117", ratedIDs, ssvc)
	}
	// Perl's CVE-2023-31484 on host-b takes CISA's CVSS (8.1 high): the
	// Debian record carries no rating.
	var sev, src string
	var score float64
	queryOne(t, st, `SELECT any(severity), any(severity_source), any(cvss_score) FROM finding_risk
		WHERE host_id = 'host-b' AND advisory_id = 'DEBIAN-CVE-2023-31484'`, &sev, &src, &score)
	if sev != "high" || src != "cve-cvss:cve/CVE-2023-31484" || score != 8.1 {
		t.Errorf("DEBIAN-CVE-2023-31484 on host-b: %s from %q, cvss %v; want high from cve-cvss:cve/CVE-2023-31484, 8.1", sev, src, score)
	}
}

func cve5Rated(t *testing.T, path string) map[string]bool {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string]bool{}
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		a, _, err := cve5.Parse(b, f.Name)
		if err != nil {
			t.Fatal(err)
		}
		if a.Severity != "unknown" {
			out[a.ID] = true
		}
	}
	return out
}

// storeDpkgHost writes a dpkg status file as ingest does (match names and
// version keys per schemas/inventory) and one scan of host.
func storeDpkgHost(t *testing.T, st store.Store, host, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := dpkg.Extractor{}.Extract(context.Background(), &extract.Input{Path: path, Reader: f, File: path,
		Distro: extract.Distro{ID: "debian", VersionID: "12", Ecosystem: "Debian:12"}})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	inv := "inv-" + host
	var rows [][]any
	for i := range res.Packages {
		p := &res.Packages[i]
		k, err := version.Key(p.Ecosystem, p.MatchVersion())
		if err != nil {
			k = ""
		}
		rows = append(rows, []any{inv, p.Ecosystem, p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.MatchName(), p.MatchVersion(), k, p.Location})
	}
	ctx := context.Background()
	if err := st.Insert(ctx, "inventory_packages", []string{"inventory_hash", "ecosystem", "name", "version", "arch", "source_name",
		"source_version", "match_name", "match_version", "v_key", "location"}, rows); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	if err := st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_id", "os_version", "os_ecosystem", "inventory_hash", "package_count"},
		[][]any{{host, host + "-1", at, at, host, "debian", "12", "Debian:12", inv, uint32(len(res.Packages))}}); err != nil {
		t.Fatal(err)
	}
}

func queryOne(t *testing.T, st store.Store, q string, dst ...any) {
	t.Helper()
	rows, err := st.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("%s: no row", q)
	}
	if err := rows.Scan(dst...); err != nil {
		t.Fatal(err)
	}
}
