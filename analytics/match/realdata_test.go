package match

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/ingest/feeds"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/scanner/inventory/apk"
	"github.com/patchgrid/patchgrid/scanner/inventory/dpkg"
	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/scanner/inventory/rpm"
	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// Correctness on real data (../shared/data/README.md §5): real advisories
// loaded by the feed loader, real inventories read by the scanner's
// extractors, the fleet job, then host_findings compared with the expected
// matches.

func lookup(eco string) (feed.Comparator, error) { return version.Lookup(eco) }

func loadFeeds(t testing.TB, s store.Store, data string, locations ...string) {
	t.Helper()
	l := &feeds.Loader{Store: s, Lookup: lookup, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, loc := range locations {
		if _, err := l.Load(context.Background(), filepath.Join(data, loc)); err != nil {
			t.Fatalf("load %s: %v", loc, err)
		}
	}
}

// extractFile reads one inventory file with an extractor.
func extractFile(t testing.TB, ex extract.Extractor, path string, d extract.Distro) []inventory.Package {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := ex.Extract(context.Background(), &extract.Input{Path: path, Reader: f, File: path, Distro: d})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return res.Packages
}

// storeInventory writes packages as ingest does (match name/version and
// key per schemas/inventory) and one scan of host pointing at them.
func storeInventory(t testing.TB, s store.Store, host, eco string, at time.Time, pkgs []inventory.Package) {
	t.Helper()
	inv := "inv-" + host
	var rows [][]any
	for i := range pkgs {
		p := &pkgs[i]
		k, err := version.Key(p.Ecosystem, p.MatchVersion())
		if err != nil {
			k = ""
		}
		rows = append(rows, []any{inv, p.Ecosystem, p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.MatchName(), p.MatchVersion(), k, p.Location})
	}
	ctx := context.Background()
	if err := s.Insert(ctx, "inventory_packages", []string{"inventory_hash", "ecosystem", "name", "version", "arch", "source_name",
		"source_version", "match_name", "match_version", "v_key", "location"}, rows); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "os_ecosystem", "inventory_hash", "package_count"},
		[][]any{{host, host + "-1", at, at, eco, inv, uint32(len(pkgs))}}); err != nil {
		t.Fatal(err)
	}
}

// exposedIDs returns "binary=advisory" for host's exposing findings.
func exposedIDs(t testing.TB, s store.Store, host string) map[string][]string {
	t.Helper()
	rows, err := s.Query(context.Background(), `SELECT DISTINCT name, advisory_id FROM host_findings WHERE host_id = ? AND kernel_state != 'not_running'`, host)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var n, a string
		if err := rows.Scan(&n, &a); err != nil {
			t.Fatal(err)
		}
		out[n] = append(out[n], a)
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func TestRealData(t *testing.T) {
	if testing.Short() {
		t.Skip("loads real feeds")
	}
	data := testenv.SharedData(t)
	s := testStore(t)
	loadFeeds(t, s, filepath.Join(data, "advisories"),
		"alpine-secdb-vuln-list", "alpine-secdb-legacy/v3.10/main.yaml", "ghsa-direct", "go-vulndb-osv.tar.gz",
		"osv-records-from-test-fixtures.jsonl.gz", "redhat-csaf")

	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	inv := filepath.Join(data, "inventories")
	storeInventory(t, s, "alpine318", "Alpine:v3.18", at, extractFile(t, apk.Extractor{},
		filepath.Join(inv, "apk/scalibr-alpine3.18.installed"), extract.Distro{ID: "alpine", VersionID: "3.18.0", Ecosystem: "Alpine:v3.18"}))
	storeInventory(t, s, "alpine316", "Alpine:v3.16", at, extractFile(t, apk.Extractor{},
		filepath.Join(inv, "apk/syft-alpine3.16.installed"), extract.Distro{ID: "alpine", VersionID: "3.16.2", Ecosystem: "Alpine:v3.16"}))
	storeInventory(t, s, "rhel9", "Red Hat:enterprise_linux:9", at, extractFile(t, rpm.QAExtractor{},
		filepath.Join(inv, "rpm/claircore-rhel-testdata-httpd-24_9.5-1734525854.rpm-qa.txt"),
		extract.Distro{ID: "rhel", VersionID: "9.5", Ecosystem: "Red Hat:enterprise_linux:9"}))
	app := func(eco, name, ver string) inventory.Package {
		return inventory.Package{Ecosystem: eco, Name: name, Version: ver, Location: "lockfile"}
	}
	storeInventory(t, s, "app", "", at, []inventory.Package{
		app("Go", "golang.org/x/text", "0.3.6"),
		app("Go", "github.com/open-policy-agent/opa", "0.35.0"),
		app("Maven", "com.fasterxml.jackson.core:jackson-databind", "2.9.1"),
		app("Maven", "org.apache.logging.log4j:log4j-core", "2.14.1"),
	})
	storeInventory(t, s, "log4j-2.12.2", "", at, []inventory.Package{app("Maven", "org.apache.logging.log4j:log4j-core", "2.12.2")})
	storeInventory(t, s, "log4j-2.16.0", "", at, []inventory.Package{app("Maven", "org.apache.logging.log4j:log4j-core", "2.16.0")})
	storeInventory(t, s, "alpine310", "Alpine:v3.10", at, []inventory.Package{
		{Ecosystem: "Alpine:v3.10", Name: "libcrypto1.1", Version: "1.1.1c-r0", SourceName: "openssl", Location: "lib/apk/db/installed"},
	})
	runJob(t, s, Full)

	has := func(got map[string][]string, pkg string, ids ...string) {
		t.Helper()
		for _, id := range ids {
			if !slices.Contains(got[pkg], id) {
				t.Errorf("%s: missing %s (got %v)", pkg, id, got[pkg])
			}
		}
	}
	hasNot := func(got map[string][]string, pkg string, ids ...string) {
		t.Helper()
		for _, id := range ids {
			if slices.Contains(got[pkg], id) {
				t.Errorf("%s: must not report %s", pkg, id)
			}
		}
	}

	a18 := exposedIDs(t, s, "alpine318")
	has(a18, "busybox", "CVE-2022-48174", "CVE-2023-42366", "CVE-2023-42363", "CVE-2023-42364", "CVE-2023-42365")
	openssl318 := []string{"CVE-2023-2650", "CVE-2023-2975", "CVE-2023-3446", "CVE-2023-3817", "CVE-2023-5363", "CVE-2023-5678", "CVE-2023-6129", "CVE-2023-6237"}
	has(a18, "libcrypto3", openssl318...) // by origin openssl
	has(a18, "libssl3", openssl318...)
	hasNot(a18, "libcrypto3", "CVE-2023-1255", "CVE-2022-1292") // installed == fixed; a "0" key
	if len(a18["zlib"]) != 0 || len(a18["apk-tools"]) != 0 {
		t.Errorf("zlib/apk-tools must be clean: %v %v", a18["zlib"], a18["apk-tools"])
	}

	a16 := exposedIDs(t, s, "alpine316")
	if got := a16["busybox"]; !slices.Equal(got, []string{"CVE-2023-42366"}) {
		t.Errorf("busybox 1.35.0-r17: %v, want only CVE-2023-42366 (r17 > r15, r7)", got)
	}
	has(a16, "libcrypto1.1", "CVE-2022-4304", "CVE-2022-4450", "CVE-2023-0215", "CVE-2023-0286", "CVE-2023-0464", "CVE-2023-0465",
		"CVE-2023-2650", "CVE-2023-3446", "CVE-2023-3817", "CVE-2023-5678")
	hasNot(a16, "libcrypto1.1", "CVE-2022-2097")
	hasNot(a16, "zlib", "CVE-2022-37434")

	if r9 := exposedIDs(t, s, "rhel9"); slices.Contains(r9["bind-libs"], "RHSA-2025:23414") {
		t.Errorf("the RHEL 6 ELS bind fix was applied to RHEL 9: %v", r9["bind-libs"])
	}

	ap := exposedIDs(t, s, "app")
	has(ap, "golang.org/x/text", "GO-2021-0113")
	has(ap, "github.com/open-policy-agent/opa", "GO-2022-0316")
	has(ap, "com.fasterxml.jackson.core:jackson-databind", "GHSA-5949-rw7g-wx7w")
	has(ap, "org.apache.logging.log4j:log4j-core", "GHSA-7rjr-3q55-vv33", "GHSA-p6xc-xr62-6r2g")
	l1 := exposedIDs(t, s, "log4j-2.12.2")
	hasNot(l1, "org.apache.logging.log4j:log4j-core", "GHSA-7rjr-3q55-vv33")
	has(l1, "org.apache.logging.log4j:log4j-core", "GHSA-p6xc-xr62-6r2g")
	l2 := exposedIDs(t, s, "log4j-2.16.0")
	hasNot(l2, "org.apache.logging.log4j:log4j-core", "GHSA-7rjr-3q55-vv33")
	has(l2, "org.apache.logging.log4j:log4j-core", "GHSA-p6xc-xr62-6r2g")

	has(exposedIDs(t, s, "alpine310"), "libcrypto1.1", "CVE-2019-1549")

	// The Go reference matcher agrees with SQL on all of it.
	sqlF, err := VersionFindings(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	vers, ranges := storedCorpus(t, s)
	ref := Reference(version.Compare, vers, ranges)
	if a, b := summarize(sqlF), summarize(ref); !slices.Equal(a, b) {
		t.Errorf("SQL (%d) and reference (%d) findings differ on real data", len(a), len(b))
		for _, l := range diff(a, b) {
			t.Log(l)
		}
	}
	t.Logf("real data: %d version findings", len(sqlF))
}

// storedCorpus reads back the stored versions and current ranges, the
// inputs of the reference matcher.
func storedCorpus(t testing.TB, s store.Store) ([]Version, []Range) {
	t.Helper()
	ctx := context.Background()
	rows, err := s.Query(ctx, `SELECT DISTINCT ecosystem, match_name, match_version FROM inventory_packages`)
	if err != nil {
		t.Fatal(err)
	}
	var vs []Version
	for rows.Next() {
		var v Version
		if err := rows.Scan(&v.Ecosystem, &v.Name, &v.Version); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	rows.Close()
	evs, err := queryRanges(ctx, s, "1")
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]Range, len(evs))
	for i := range evs {
		rs[i] = evs[i].Range
	}
	return vs, rs
}

func diff(a, b []string) []string {
	in := func(xs []string, x string) bool { return slices.Contains(xs, x) }
	var out []string
	for _, x := range a {
		if !in(b, x) {
			out = append(out, "only SQL: "+x)
		}
	}
	for _, x := range b {
		if !in(a, x) {
			out = append(out, "only ref: "+x)
		}
	}
	if len(out) > 20 {
		out = append(out[:20], "…")
	}
	return out
}

// TestDebianHostB is the end-to-end check against OSV-Scanner: the real
// Debian 12 host-b status file × the changelog-derived Debian:12 records
// gives 5,369 (binary package, vulnerability) pairs over 107 packages and
// 2,381 distinct ids (README §3).
func TestDebianHostB(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 6,036 records")
	}
	data := testenv.SharedData(t)
	s := testStore(t)
	loadFeeds(t, s, filepath.Join(data, "advisories"), "debian12-changelog-derived-osv.zip")
	pkgs := extractFile(t, dpkg.Extractor{}, filepath.Join(data, "inventories/dpkg/debian12-bookworm-host-b.status"),
		extract.Distro{ID: "debian", VersionID: "12", Ecosystem: "Debian:12"})
	storeInventory(t, s, "host-b", "Debian:12", time.Date(2025, 5, 20, 0, 0, 0, 0, time.UTC), pkgs)
	runJob(t, s, Full)
	var pairs, packages, ids uint64
	rows, err := s.Query(context.Background(), `SELECT count(), uniqExact(name), uniqExact(advisory_id)
FROM (SELECT DISTINCT name, advisory_id FROM host_findings WHERE host_id = 'host-b')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		if err := rows.Scan(&pairs, &packages, &ids); err != nil {
			t.Fatal(err)
		}
	}
	rows.Close()
	if pairs != 5369 || packages != 107 || ids != 2381 {
		t.Errorf("host-b: %d pairs, %d packages, %d ids; OSV-Scanner: 5369, 107, 2381", pairs, packages, ids)
	}
}
