package feeds

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed/feedtest"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// Every file of the shared advisory, KEV and EPSS corpora either loads or
// is rejected with a stated reason; this table says which.
func TestSharedCorpus(t *testing.T) {
	data := testenv.SharedData(t)
	type result struct {
		format     Format
		advisories int
		rejected   int // documents rejected with a reason (not counting NotFeed)
		notFeed    int
	}
	got := map[string]*result{}
	for _, dir := range []string{"advisories", "kev", "epss"} {
		root := filepath.Join(data, dir)
		err := Inspect(context.Background(), root, feedtest.Lookup, func(r DocumentResult) {
			// Results per top-level file (archive members fold into their
			// archive) relative to the corpus.
			name, _, _ := strings.Cut(r.Name, "!")
			name, _, _ = strings.Cut(name, "#")
			rel, _ := filepath.Rel(data, name)
			g := got[rel]
			if g == nil {
				g = &result{}
				got[rel] = g
			}
			if r.Format != "" && g.format == "" {
				g.format = r.Format
			}
			g.advisories += len(r.Advisories) + r.KEV + r.EPSS
			switch {
			case r.NotFeed:
				g.notFeed++
			case r.Err != nil:
				g.rejected++
				if r.Err.Error() == "" {
					t.Errorf("%s: rejected without a reason", r.Name)
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]result{
		"advisories/alpine-secdb-json/claircore-v3.10-community.json":          {FormatAlpineSecDB, 9, 0, 0},
		"advisories/chainguard-wolfi-secdb/vunnel-chainguard-security.json":    {FormatAlpineSecDB, 189, 0, 0},
		"advisories/debian-tracker/DSA-list.txt":                               {FormatDebianList, 5406, 0, 0},
		"advisories/debian-tracker/DLA-list.txt":                               {FormatDebianList, 3534, 0, 0},
		"advisories/debian-tracker/vunnel-fixture-DSA-list-excerpt.txt":        {FormatDebianList, 10, 0, 0},
		"advisories/debian-tracker/vunnel-fixture-debian-tracker-excerpt.json": {FormatDebianTracker, 7, 0, 0},
		"advisories/debian12-changelog-derived-osv.zip":                        {FormatOSVJSON, 6036, 0, 0},
		"advisories/go-vulndb-osv.tar.gz":                                      {FormatOSVJSON, 4291, 0, 1},
		"advisories/pypa-advisory-database-vulns.tar.gz":                       {FormatOSVYAML, 2661, 0, 1},
		"advisories/pypa-advisory-database-osv.jsonl.gz":                       {FormatOSVJSON, 2661, 0, 0},
		"advisories/osv-records-from-test-fixtures.jsonl.gz":                   {FormatOSVJSON, 426, 0, 0},
		"advisories/osv-records-from-test-fixtures.sources.tsv":                {"", 0, 0, 1},
		"advisories/ghsa-direct/GHSA-7rjr-3q55-vv33.json":                      {FormatOSVJSON, 1, 0, 0},
		"advisories/ghsa-direct/GHSA-p6xc-xr62-6r2g.json":                      {FormatOSVJSON, 1, 0, 0},
		// 467 npm advisories; 171 core and 6 dependency advisories are
		// rejected (no package ecosystem); LICENSE, README, 3 index.json.
		"advisories/nodejs-security-wg-vuln.tar.gz":       {FormatNodeWG, 467, 177, 5},
		"advisories/alpine-secdb-legacy/README.md":        {"", 0, 0, 1},
		"kev/known_exploited_vulnerabilities.json":        {FormatKEV, 1404, 0, 0},
		"kev/known_exploited_vulnerabilities.csv":         {"", 0, 0, 1},
		"kev/known_exploited_vulnerabilities_schema.json": {"", 0, 0, 1},
		"kev/LICENSE": {"", 0, 0, 1},
		"epss/epss_scores-2026-08-16.emba-derived.csv.gz": {FormatEPSS, 360142, 0, 0},
		"epss/epss_scores-2026-01-02.head.csv":            {FormatEPSS, 29, 0, 0},
	}
	for name, w := range want {
		g := got[name]
		if g == nil {
			t.Errorf("%s: not seen", name)
			continue
		}
		if *g != w {
			t.Errorf("%s: got %+v, want %+v", name, *g, w)
		}
	}
	// Files not in the table: the Alpine trees, the Ubuntu OSV records,
	// Red Hat CSAF and VEX: each loads, nothing rejected.
	for name, g := range got {
		if _, ok := want[name]; ok {
			continue
		}
		if g.rejected > 0 || g.notFeed > 0 || g.format == "" {
			t.Errorf("%s: %+v", name, *g)
		}
	}
	if len(got) < 60 {
		t.Errorf("only %d files seen", len(got))
	}
}

// failingStore fails inserts into one table: the "load fails midway" case.
type failingStore struct {
	store.Store
	table string
}

func (f failingStore) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	if table == f.table {
		return errors.New("injected failure")
	}
	return f.Store.Insert(ctx, table, columns, rows)
}

const osvA = `{"id":"TEST-A","modified":"%s","aliases":["CVE-2021-44228"],"affected":[{"package":{"ecosystem":"Debian:12","name":"pkg"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"%s"}]}]}]%s}`

func writeOSV(t *testing.T, dir, name, modified, fixed, extra string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, osvA, modified, fixed, extra), 0o644); err != nil {
		t.Fatal(err)
	}
}

func query[T any](t *testing.T, st store.Store, q string, args ...any) []T {
	t.Helper()
	rows, err := st.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// currentFixed is what matching sees of an advisory: the fixed versions of
// the ranges under its current, not withdrawn, hash.
func currentFixed(t *testing.T, st store.Store, id string) []string {
	return query[string](t, st, `SELECT fixed FROM affected_ranges ALL INNER JOIN
		(SELECT source, advisory_id, record_hash FROM advisories FINAL WHERE withdrawn = 0) AS cur USING (source, advisory_id, record_hash)
		WHERE advisory_id = ? ORDER BY fixed`, id)
}

func testLoader(t *testing.T, st store.Store) {
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeOSV(t, dir, "a.json", "2024-01-01T00:00:00Z", "1.0-1", "")
	writeOSV(t, dir, "b.json", "2024-01-01T00:00:00Z", "2.0-1", "")
	// b.json carries id TEST-A too: rename it.
	b, _ := os.ReadFile(filepath.Join(dir, "b.json"))
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(strings.Replace(string(b), "TEST-A", "TEST-B", 1)), 0o644)
	os.WriteFile(filepath.Join(dir, "kev.json"), []byte(`{"catalogVersion":"1","count":1,"vulnerabilities":[{"cveID":"CVE-2021-44228","vendorProject":"Apache","product":"Log4j2","dateAdded":"2021-12-10","dueDate":"2021-12-24","knownRansomwareCampaignUse":"Known"}]}`), 0o644)
	os.WriteFile(filepath.Join(dir, "epss.csv"), []byte("#model_version:v2025.03.14,score_date:2026-01-02T12:55:00Z\ncve,epss,percentile\nCVE-2021-44228,0.99999,1.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"id":"","modified":"x"}`), 0o644)

	sec := int64(0)
	l := &Loader{Store: st, Lookup: feedtest.Lookup, Log: slog.New(slog.DiscardHandler),
		// Each load a second later: ReplacingMergeTree keeps the latest loaded_at.
		Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, int(atomic.AddInt64(&sec, 1)), 0, time.UTC) }}
	sums := func() map[string]Summary {
		t.Helper()
		s, err := l.Load(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]Summary{}
		for _, x := range s {
			m[x.Source] = x
		}
		return m
	}
	s := sums()
	if o := s["osv"]; o.Loaded != 2 || o.Skipped != 1 || o.Records != 3 {
		t.Errorf("first load osv: %+v", o)
	}
	if s["kev"].Loaded != 1 || s["epss"].Loaded != 1 {
		t.Errorf("first load kev %+v epss %+v", s["kev"], s["epss"])
	}
	if got := currentFixed(t, st, "TEST-A"); len(got) != 1 || got[0] != "1.0-1" {
		t.Errorf("TEST-A current ranges %v", got)
	}
	count := func(table string) uint64 {
		return query[uint64](t, st, "SELECT count() FROM "+table)[0]
	}
	nAdv, nRanges, nKEV, nEPSS := count("advisories"), count("affected_ranges"), count("kev"), count("epss")

	// Loading the same feed twice writes nothing.
	s = sums()
	if o := s["osv"]; o.Loaded+o.Updated != 0 || o.Unchanged != 2 {
		t.Errorf("second load osv: %+v", o)
	}
	if s["kev"].Unchanged != 1 || s["epss"].Unchanged != 1 {
		t.Errorf("second load kev %+v epss %+v", s["kev"], s["epss"])
	}
	if count("advisories") != nAdv || count("affected_ranges") != nRanges || count("kev") != nKEV || count("epss") != nEPSS {
		t.Error("the second load wrote rows")
	}

	// A modified record replaces its ranges.
	writeOSV(t, dir, "a.json", "2024-02-01T00:00:00Z", "1.0-2", "")
	if o := sums()["osv"]; o.Updated != 1 || o.Unchanged != 1 {
		t.Errorf("modified load: %+v", o)
	}
	if got := currentFixed(t, st, "TEST-A"); len(got) != 1 || got[0] != "1.0-2" {
		t.Errorf("TEST-A current ranges after update %v", got)
	}

	// A load failing between ranges and advisories leaves the previous
	// state current.
	writeOSV(t, dir, "a.json", "2024-03-01T00:00:00Z", "1.0-3", "")
	fl := *l
	fl.Store = failingStore{st, "advisories"}
	if _, err := fl.Load(ctx, dir); err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Errorf("failing load: %v", err)
	}
	if got := currentFixed(t, st, "TEST-A"); len(got) != 1 || got[0] != "1.0-2" {
		t.Errorf("TEST-A current ranges after a failed load %v", got)
	}
	errs := query[string](t, st, "SELECT error FROM feed_loads WHERE source = 'osv' AND error != ''")
	if len(errs) != 1 {
		t.Errorf("feed_loads errors %v", errs)
	}

	// Withdrawn stops matching.
	writeOSV(t, dir, "a.json", "2024-04-01T00:00:00Z", "1.0-3", `,"withdrawn":"2024-04-01T00:00:00Z"`)
	if o := sums()["osv"]; o.Updated != 1 || o.Withdrawn != 1 {
		t.Errorf("withdrawn load: %+v", o)
	}
	if got := currentFixed(t, st, "TEST-A"); len(got) != 0 {
		t.Errorf("withdrawn TEST-A still has ranges %v", got)
	}

	status, err := Status(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]SourceStatus{}
	for _, s := range status {
		byName[s.Source] = s
	}
	if o := byName["osv"]; o.Records != 2 || o.Withdrawn != 1 || o.LastLoad.IsZero() || o.NewestModified.Format("2006-01-02") != "2024-04-01" {
		t.Errorf("status osv %+v", o)
	}
	if byName["kev"].Records != 1 || byName["epss"].Records != 1 {
		t.Errorf("status %+v", status)
	}
}

func TestLoaderCHDB(t *testing.T)       { testLoader(t, testenv.CHDBStore(t)) }
func TestLoaderClickHouse(t *testing.T) { testLoader(t, testenv.ServerStore(t)) }

// The whole shared corpus loads into chDB, and a second load writes
// nothing.
func TestLoadCorpusCHDB(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the whole corpus")
	}
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	data := testenv.SharedData(t)
	l := &Loader{Store: st, Lookup: feedtest.Lookup, Log: slog.New(slog.DiscardHandler)}
	var first uint64
	for _, dir := range []string{"advisories", "kev", "epss"} {
		sums, err := l.Load(ctx, filepath.Join(data, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sums {
			first += s.Loaded
		}
	}
	if first < 390000 {
		t.Errorf("first load wrote %d records", first)
	}
	for _, dir := range []string{"advisories", "kev", "epss"} {
		sums, err := l.Load(ctx, filepath.Join(data, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sums {
			if s.Loaded+s.Updated != 0 {
				t.Errorf("second load of %s: %+v", dir, s)
			}
		}
	}
	// The RHEL 6 ELS bind fix is on that stream only.
	ecos := query[string](t, st, "SELECT DISTINCT ecosystem FROM affected_ranges WHERE advisory_id = 'RHSA-2025:23414'")
	if len(ecos) != 1 || ecos[0] != "Red Hat:rhel_els:6" {
		t.Errorf("RHSA-2025:23414 ecosystems %v", ecos)
	}
	if d := query[time.Time](t, st, "SELECT date_added FROM kev FINAL WHERE cve = 'CVE-2021-44228'"); len(d) != 1 || d[0].Format("2006-01-02") != "2021-12-10" {
		t.Errorf("kev CVE-2021-44228 %v", d)
	}
	if e := query[float64](t, st, "SELECT epss FROM epss FINAL WHERE cve = 'CVE-2021-44228'"); len(e) != 1 || e[0] != 0.99999 {
		t.Errorf("epss CVE-2021-44228 %v", e)
	}
}

func TestFetch(t *testing.T) {
	var gets, notModified atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if r.URL.Path != "/feeds/known_exploited_vulnerabilities.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		io.WriteString(w, `{"catalogVersion":"1","count":0,"vulnerabilities":[]}`)
	}))
	defer srv.Close()
	f := &Fetcher{Client: srv.Client(), CacheDir: t.TempDir()}
	ctx := context.Background()
	p, fresh, err := f.Fetch(ctx, srv.URL+"/feeds/known_exploited_vulnerabilities.json")
	if err != nil || !fresh || filepath.Base(p) != "known_exploited_vulnerabilities.json" {
		t.Fatalf("%s %v %v", p, fresh, err)
	}
	p2, fresh, err := f.Fetch(ctx, srv.URL+"/feeds/known_exploited_vulnerabilities.json")
	if err != nil || fresh || p2 != p || notModified.Load() != 1 {
		t.Errorf("second fetch: %s %v %v (304s: %d)", p2, fresh, err, notModified.Load())
	}
	if b, _ := os.ReadFile(p); !strings.Contains(string(b), "catalogVersion") {
		t.Errorf("cached %q", b)
	}
	if _, _, err := f.Fetch(ctx, srv.URL+"/missing.json"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing: %v", err)
	}
	if _, _, err := f.Fetch(ctx, "ftp://x/y"); err == nil {
		t.Error("ftp accepted")
	}
	if u := OnlineURLs([]string{"Rocky Linux"}); u[0] != "https://osv-vulnerabilities.storage.googleapis.com/Rocky%20Linux/all.zip" || len(u) != 5 {
		t.Errorf("%v", u)
	}
}

// Parsing (and keying) the whole shared corpus: advisories, KEV and EPSS.
func BenchmarkParseCorpus(b *testing.B) {
	data := testenv.SharedData(b)
	b.ReportAllocs()
	var records int
	for b.Loop() {
		records = 0
		for _, dir := range []string{"advisories", "kev", "epss"} {
			err := Inspect(context.Background(), filepath.Join(data, dir), feedtest.Lookup, func(r DocumentResult) {
				records += len(r.Advisories) + r.KEV + r.EPSS
				for _, a := range r.Advisories {
					_ = a.Hash()
				}
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// Loading the whole corpus into an empty chDB database.
func BenchmarkLoadCorpusCHDB(b *testing.B) {
	data := testenv.SharedData(b)
	b.ReportAllocs()
	var records uint64
	for b.Loop() {
		b.StopTimer()
		st := testenv.CHDBStore(b)
		if _, err := schemas.Migrate(context.Background(), st, nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		records = 0
		l := &Loader{Store: st, Lookup: feedtest.Lookup, Log: slog.New(slog.DiscardHandler)}
		for _, dir := range []string{"advisories", "kev", "epss"} {
			sums, err := l.Load(context.Background(), filepath.Join(data, dir))
			if err != nil {
				b.Fatal(err)
			}
			for _, s := range sums {
				records += s.Records
			}
		}
	}
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// TestOnlineRatingSources serves the two rating sources of --online (the
// Debian tracker JSON and the cvelistV5 zip) from a local server under the
// official URLs' paths, fetches them and loads them: the tracker's urgency
// and the CVE records' CVSS land in advisories; the cvelistV5 files that are
// not CVE records (change logs, workflows, README) are not feed data.
func TestOnlineRatingSources(t *testing.T) {
	data := testenv.SharedData(t)
	tracker, err := os.ReadFile(filepath.Join(data, "advisories", "debian-tracker", "vunnel-fixture-debian-tracker-excerpt.json"))
	if err != nil {
		t.Fatal(err)
	}
	// A cvelistV5-main.zip with one real record in the repository's layout.
	zr, err := zip.OpenReader(filepath.Join(data, "advisories", "cve-json5-vulnrichment-debian12-overlap.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		if path.Base(f.Name) != "CVE-2023-38545.json" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		w, _ := zw.Create("cvelistV5-main/cves/2023/38xxx/CVE-2023-38545.json")
		if _, err := io.Copy(w, rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	for name, body := range map[string]string{
		"cvelistV5-main/cves/delta.json":              `{"fetchTime":"2026-12-03T00:00:00Z","numberOfChanges":0,"new":[],"updated":[]}`,
		"cvelistV5-main/.github/workflows/update.yml": "on: push\n",
		"cvelistV5-main/README.md":                    "# cvelistV5\n",
	} {
		w, _ := zw.Create(name)
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	trackerURL, _ := url.Parse(DebianTrackerURL)
	cveURL, _ := url.Parse(CVEListV5URL)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case trackerURL.Path:
			w.Write(tracker)
		case cveURL.Path:
			w.Write(buf.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Client: srv.Client(), CacheDir: t.TempDir()}
	l := &Loader{Store: st, Lookup: feedtest.Lookup, Log: slog.New(slog.DiscardHandler)}
	for _, u := range []*url.URL{trackerURL, cveURL} {
		p, _, err := f.Fetch(ctx, srv.URL+u.Path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Load(ctx, p); err != nil {
			t.Fatalf("load %s: %v", u, err)
		}
	}
	if got := query[string](t, st, "SELECT concat(severity, ' ', toString(cvss_score)) FROM advisories FINAL WHERE source = 'cve'"); len(got) != 1 || got[0] != "high 8.8" {
		t.Errorf("cvelistV5 records: %v", got)
	}
	if n := query[uint64](t, st, "SELECT count() FROM advisories FINAL WHERE source = 'debian-tracker' AND severity != 'unknown'"); len(n) != 1 || n[0] == 0 {
		t.Errorf("tracker records with an urgency: %v", n)
	}
}
