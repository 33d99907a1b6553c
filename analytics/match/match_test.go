package match

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/refresh"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/version"
)

func runJob(t testing.TB, s store.Store, mode Mode) Stats {
	t.Helper()
	st, err := (&Job{Store: s}).Run(context.Background(), mode)
	if err != nil {
		t.Fatalf("%s run: %v", mode, err)
	}
	return st
}

// summarize turns findings into "eco/name version: ADV[#range status]" lines.
func summarize(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s/%s %s: %s#%d %s", f.Version.Ecosystem, f.Version.Name, f.Version.Version,
			f.Range.AdvisoryID, f.Range.Idx, f.Range.Status))
	}
	return out
}

// expectedCorpus is what both matchers must find in corpus(), written out
// by hand from the matching rules.
var expectedCorpus = []string{
	"Alpine:v3.16/busybox 1.35.0-r17: CVE-2023-42366#0 affected", // r17 < r18, not < r15 or r7
	"Alpine:v3.16/openssl 1.1.1q-r0: CVE-2023-0464#0 affected",   // libcrypto1.1 matched by origin
	"Debian:12/glibc 2.36-9+deb12u4: DEBIAN-CVE-2023-0006#0 will_not_fix",
	"Debian:12/linux 6.1.76-1: DEBIAN-CVE-2023-0007#0 affected", // 6.1.90-1 == fixed: not affected
	"Debian:12/openssl 3.0.10-2: DEBIAN-CVE-2023-0001#0 affected",
	"Debian:12/openssl 3.0.10-2: DEBIAN-CVE-2023-0002#0 unfixed",
	"Debian:12/openssl 3.0.10-2: DEBIAN-CVE-2023-0004#0 affected",
	"Debian:12/openssl 3.0.11-1: DEBIAN-CVE-2023-0002#0 unfixed", // == fixed of 0001
	"Debian:12/openssl 3.0.11-1: DEBIAN-CVE-2023-0004#0 affected",
	"Debian:12/openssl 3.0.9-1: DEBIAN-CVE-2023-0001#0 affected",
	"Debian:12/openssl 3.0.9-1: DEBIAN-CVE-2023-0002#0 unfixed",
	"Debian:12/openssl 3.0.9-1: DEBIAN-CVE-2023-0004#1 affected", // VERSIONS entry; a4-old's range no longer counts
	"Go/golang.org/x/text 0.3.6: GO-2021-0113#0 affected",
	"PyPI/werkzeug 0.11: PYSEC-2023-1#0 affected",
	"Red Hat:enterprise_linux:9/bind 32:9.16.23-24.el9_5: RHSA-2025:0001#0 affected", // not the RHEL 6 fix
}

func TestReferenceCorpus(t *testing.T) {
	f := corpus()
	got := summarize(Reference(version.Compare, f.versions(), f.current()))
	want := slices.Clone(expectedCorpus)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("reference findings:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// TestSQLEqualsReference is the differential test: the ClickHouse job and
// the Go reference matcher must find exactly the same (version, advisory
// range) pairs, with the same evidence.
func TestSQLEqualsReference(t *testing.T) {
	s := testStore(t)
	f := corpus()
	f.load(t, s)
	st := runJob(t, s, Full)
	if st.Inventories != 6 || st.VersionFindings == 0 {
		t.Errorf("stats = %+v, want 6 inventories and some findings", st)
	}
	sqlF, err := VersionFindings(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	ref := Reference(version.Compare, f.versions(), f.current())
	if len(sqlF) != len(ref) {
		t.Errorf("SQL found %d, reference %d:\nSQL %s\nref %s", len(sqlF), len(ref),
			strings.Join(summarize(sqlF), "\n    "), strings.Join(summarize(ref), "\n    "))
	}
	for i := range min(len(sqlF), len(ref)) {
		a, b := sqlF[i], ref[i]
		a.Range.FixPublished, b.Range.FixPublished = time.Time{}, time.Time{}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("finding %d:\n SQL %+v\n ref %+v", i, a, b)
		}
	}
	got := summarize(sqlF)
	want := slices.Clone(expectedCorpus)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("SQL findings:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

type hostRow struct {
	host, name, version, adv, status, kernel string
}

func hostFindings(t testing.TB, s store.Store) []string {
	t.Helper()
	rows, err := s.Query(context.Background(), `SELECT host_id, name, version, advisory_id, status, kernel_state, fixed, file
FROM host_findings ORDER BY host_id, advisory_id, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h, n, v, a, st, k, fx, file string
		if err := rows.Scan(&h, &n, &v, &a, &st, &k, &fx, &file); err != nil {
			t.Fatal(err)
		}
		if file == "" {
			t.Errorf("%s %s %s: no provenance file", h, n, a)
		}
		line := fmt.Sprintf("%s %s=%s %s %s", h, n, v, a, st)
		if k != "" {
			line += " kernel:" + k
		}
		if fx != "" {
			line += " fixed:" + fx
		}
		out = append(out, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestHostFindings(t *testing.T) {
	s := testStore(t)
	corpus().load(t, s)
	runJob(t, s, Full)
	got := hostFindings(t, s)
	want := []string{
		"alp-1 busybox=1.35.0-r17 CVE-2023-42366 affected fixed:1.35.0-r18",
		"alp-1 libcrypto1.1=1.1.1q-r0 CVE-2023-0464 affected fixed:1.1.1t-r1",
		"app-1 golang.org/x/text=0.3.6 GO-2021-0113 affected fixed:0.3.7",
		"app-1 werkzeug=0.11 PYSEC-2023-1 affected fixed:0.15.3",
		// deb-1 runs the old kernel although a fixed one is installed: exposed.
		"deb-1 libssl3=3.0.9-1 DEBIAN-CVE-2023-0001 affected fixed:3.0.11-1",
		"deb-1 openssl=3.0.9-1 DEBIAN-CVE-2023-0001 affected fixed:3.0.11-1",
		"deb-1 libssl3=3.0.9-1 DEBIAN-CVE-2023-0002 unfixed",
		"deb-1 openssl=3.0.9-1 DEBIAN-CVE-2023-0002 unfixed",
		"deb-1 libssl3=3.0.9-1 DEBIAN-CVE-2023-0004 affected",
		"deb-1 openssl=3.0.9-1 DEBIAN-CVE-2023-0004 affected",
		"deb-1 libc6=2.36-9+deb12u4 DEBIAN-CVE-2023-0006 will_not_fix",
		"deb-1 linux-image-6.1.0-18-amd64=6.1.76-1 DEBIAN-CVE-2023-0007 affected kernel:running fixed:6.1.90-1",
		"deb-2 libssl3=3.0.10-2 DEBIAN-CVE-2023-0001 affected fixed:3.0.11-1",
		"deb-2 libssl3=3.0.10-2 DEBIAN-CVE-2023-0002 unfixed",
		"deb-2 libssl3=3.0.10-2 DEBIAN-CVE-2023-0004 affected fixed:3.0.12-1",
		"deb-3 libssl3=3.0.11-1 DEBIAN-CVE-2023-0002 unfixed",
		"deb-3 libssl3=3.0.11-1 DEBIAN-CVE-2023-0004 affected fixed:3.0.12-1",
		"deb-3 libc6=2.36-9+deb12u4 DEBIAN-CVE-2023-0006 will_not_fix",
		"deb-4 libssl3=3.0.9-1 DEBIAN-CVE-2023-0001 affected fixed:3.0.11-1",
		"deb-4 openssl=3.0.9-1 DEBIAN-CVE-2023-0001 affected fixed:3.0.11-1",
		"deb-4 libssl3=3.0.9-1 DEBIAN-CVE-2023-0002 unfixed",
		"deb-4 openssl=3.0.9-1 DEBIAN-CVE-2023-0002 unfixed",
		"deb-4 libssl3=3.0.9-1 DEBIAN-CVE-2023-0004 affected",
		"deb-4 openssl=3.0.9-1 DEBIAN-CVE-2023-0004 affected",
		"deb-4 libc6=2.36-9+deb12u4 DEBIAN-CVE-2023-0006 will_not_fix",
		// deb-4 runs the fixed kernel; the old image is reported, not exposed.
		"deb-4 linux-image-6.1.0-18-amd64=6.1.76-1 DEBIAN-CVE-2023-0007 affected kernel:not_running fixed:6.1.90-1",
		"rh-1 bind-libs=32:9.16.23-24.el9_5 RHSA-2025:0001 affected fixed:32:9.16.23-24.el9_5.3",
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("host findings:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func TestExposureHistory(t *testing.T) {
	// On the 2018 server exposure_history is 0003's view over every scan;
	// on a current ClickHouse it is materialized by analytics/refresh.
	// Both must tell the same history.
	t.Run("server", func(t *testing.T) {
		if os.Getenv("PATCHGRID_TEST_CLICKHOUSE") == "" {
			t.Skip("PATCHGRID_TEST_CLICKHOUSE not set")
		}
		testExposureHistory(t, migrated(t, testenv.ServerStore(t)))
	})
	t.Run("chdb", func(t *testing.T) {
		s := migrated(t, testenv.CHDBStore(t))
		testExposureHistory(t, s)
	})
}

func testExposureHistory(t *testing.T, s store.Store) {
	corpus().load(t, s)
	runJob(t, s, Full)
	if schemas.RequireAnalytics(context.Background(), s) == nil {
		if _, err := (&refresh.Job{Store: s, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Run(context.Background(), refresh.Full); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.Query(context.Background(), `SELECT host_id, advisory_id, first_seen, last_seen, resolved_at, reopened, exposed_now
FROM exposure_history WHERE host_id IN ('deb-1', 'deb-2', 'deb-3') ORDER BY host_id, advisory_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	d := func(t time.Time) string {
		if t.Unix() <= 0 {
			return "-"
		}
		return t.UTC().Format("01-02")
	}
	var got []string
	for rows.Next() {
		var h, a string
		var first, last, resolved time.Time
		var reopened uint64
		var now uint8
		if err := rows.Scan(&h, &a, &first, &last, &resolved, &reopened, &now); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s first=%s last=%s resolved=%s reopened=%d now=%d", h, a, d(first), d(last), d(resolved), reopened, now))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		// old → new (fixed) → old again: a regression.
		"deb-1 DEBIAN-CVE-2023-0001 first=03-01 last=03-03 resolved=- reopened=1 now=1",
		"deb-1 DEBIAN-CVE-2023-0002 first=03-01 last=03-03 resolved=- reopened=0 now=1",
		"deb-1 DEBIAN-CVE-2023-0004 first=03-01 last=03-03 resolved=- reopened=0 now=1",
		"deb-1 DEBIAN-CVE-2023-0006 first=03-01 last=03-03 resolved=- reopened=0 now=1",
		"deb-1 DEBIAN-CVE-2023-0007 first=03-01 last=03-03 resolved=- reopened=1 now=1",
		"deb-2 DEBIAN-CVE-2023-0001 first=03-01 last=03-03 resolved=- reopened=0 now=1",
		"deb-2 DEBIAN-CVE-2023-0002 first=03-01 last=03-03 resolved=- reopened=0 now=1",
		"deb-2 DEBIAN-CVE-2023-0004 first=03-01 last=03-03 resolved=- reopened=0 now=1",
		// glibc gone from deb-2's inventory: resolved at the next scan.
		"deb-2 DEBIAN-CVE-2023-0006 first=03-01 last=03-01 resolved=03-03 reopened=0 now=0",
		// deb-2 never ran the vulnerable kernel: no DEBIAN-CVE-2023-0007.
		"deb-3 DEBIAN-CVE-2023-0001 first=03-01 last=03-01 resolved=03-02 reopened=0 now=0",
		"deb-3 DEBIAN-CVE-2023-0002 first=03-01 last=03-02 resolved=- reopened=0 now=1",
		"deb-3 DEBIAN-CVE-2023-0004 first=03-01 last=03-02 resolved=- reopened=0 now=1",
		"deb-3 DEBIAN-CVE-2023-0006 first=03-01 last=03-02 resolved=- reopened=0 now=1",
		"deb-3 DEBIAN-CVE-2023-0007 first=03-01 last=03-01 resolved=03-02 reopened=0 now=0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("history:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func TestExposedAt(t *testing.T) {
	s := testStore(t)
	corpus().load(t, s)
	runJob(t, s, Full)
	hosts := func(id string, at time.Time) []string {
		t.Helper()
		ex, err := ExposedAt(context.Background(), s, id, at)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ex {
			out = append(out, e.HostID+":"+strings.Join(e.Packages, ","))
		}
		return out
	}
	endOf := func(d time.Time) time.Time { return d.Truncate(24 * time.Hour).Add(24*time.Hour - time.Second) }
	for _, tc := range []struct {
		id   string
		at   time.Time
		want []string
	}{
		// by alias; deb-1 and deb-3 were fixed on day 1, deb-1 regressed on day 2.
		{"CVE-2023-0001", endOf(day0), []string{"deb-1:libssl3=3.0.9-1,openssl=3.0.9-1", "deb-2:libssl3=3.0.9-1,openssl=3.0.9-1", "deb-3:libssl3=3.0.9-1,openssl=3.0.9-1"}},
		{"CVE-2023-0001", endOf(day1), []string{"deb-2:libssl3=3.0.9-1,openssl=3.0.9-1", "deb-4:libssl3=3.0.9-1,openssl=3.0.9-1"}},
		{"DEBIAN-CVE-2023-0001", endOf(day2), []string{"deb-1:libssl3=3.0.9-1,openssl=3.0.9-1", "deb-2:libssl3=3.0.10-2", "deb-4:libssl3=3.0.9-1,openssl=3.0.9-1"}},
		// the kernel: deb-2 and deb-4 only have the old image installed, not running.
		{"DEBIAN-CVE-2023-0007", endOf(day0), []string{"deb-1:linux-image-6.1.0-18-amd64=6.1.76-1", "deb-3:linux-image-6.1.0-18-amd64=6.1.76-1"}},
		{"DEBIAN-CVE-2023-0007", endOf(day1), nil},
		{"CVE-2023-0001", day0.Add(-time.Hour), nil}, // before any scan
		{"CVE-2099-0001", endOf(day3), nil},
	} {
		if got := hosts(tc.id, tc.at); !slices.Equal(got, tc.want) {
			t.Errorf("ExposedAt(%s, %s) = %v, want %v", tc.id, tc.at.Format(time.RFC3339), got, tc.want)
		}
	}
}

// TestIncrementalEqualsFull loads the corpus in two halves with an
// incremental run after each, then checks the result equals a full run over
// everything, and that a run with nothing new does nothing.
func TestIncrementalEqualsFull(t *testing.T) {
	ctx := context.Background()
	f := corpus()
	// Phase 1: half the advisories, the earliest scans; phase 2: the rest,
	// including a modified record (DEBIAN-CVE-2023-0004 a4 replaces a4-old).
	var p1, p2 fixture
	for _, a := range f.Advisories {
		if a.Hash == "a4" || strings.HasPrefix(a.Hash, "b") || a.Hash == "a7" {
			p2.Advisories = append(p2.Advisories, a)
		} else {
			p1.Advisories = append(p1.Advisories, a)
		}
	}
	p1.Ranges, p2.Ranges = f.Ranges, nil // ranges are inert until their advisory row names them
	for _, sc := range f.Scans {
		if sc.At.Equal(day0) {
			p1.Scans = append(p1.Scans, sc)
		} else {
			p2.Scans = append(p2.Scans, sc)
		}
	}
	inP1 := map[string]bool{}
	for _, sc := range p1.Scans {
		inP1[sc.Inv] = true
	}
	for _, p := range f.Packages {
		if inP1[p.Inv] {
			p1.Packages = append(p1.Packages, p)
		} else {
			p2.Packages = append(p2.Packages, p)
		}
	}

	inc := testStore(t)
	p1.load(t, inc)
	runJob(t, inc, Incremental)
	p2.load(t, inc)
	st := runJob(t, inc, Incremental)
	if st.Advisories != 7 {
		t.Errorf("second incremental run matched %d advisory records, want 7", st.Advisories)
	}
	again := runJob(t, inc, Incremental)
	if again.Versions != 0 || again.Advisories != 0 || again.Inventories != 0 || again.VersionFindings != 0 {
		t.Errorf("a run with nothing new did work: %+v", again)
	}

	full := testStore(t)
	f.load(t, full)
	runJob(t, full, Full)

	gotInc, gotFull := hostFindings(t, inc), hostFindings(t, full)
	if !slices.Equal(gotInc, gotFull) {
		t.Errorf("incremental:\n %s\nfull:\n %s", strings.Join(gotInc, "\n "), strings.Join(gotFull, "\n "))
	}
	vi, err := VersionFindings(ctx, inc)
	if err != nil {
		t.Fatal(err)
	}
	vf, err := VersionFindings(ctx, full)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(summarize(vi), summarize(vf)) {
		t.Errorf("version findings differ:\ninc  %v\nfull %v", summarize(vi), summarize(vf))
	}

	// A full run again over the same data changes nothing.
	runJob(t, full, Full)
	if again := hostFindings(t, full); !slices.Equal(again, gotFull) {
		t.Errorf("second full run changed findings")
	}
}

// TestWithdrawnAndModified: a record withdrawn or modified after matching
// stops counting without a new run.
func TestWithdrawnAndModified(t *testing.T) {
	s := testStore(t)
	corpus().load(t, s)
	runJob(t, s, Full)
	later := day3
	(&fixture{Advisories: []fxAdvisory{
		{Source: "alpine-secdb", ID: "CVE-2023-42366", Hash: "b1", Withdrawn: true, Loaded: later},
		{Source: "redhat-csaf", ID: "RHSA-2025:0001", Hash: "c2-new", Loaded: later},
	}}).load(t, s)
	for _, l := range hostFindings(t, s) {
		if strings.Contains(l, "CVE-2023-42366") || strings.Contains(l, "RHSA-2025:0001") {
			t.Errorf("still reported after withdrawal/modification: %s", l)
		}
	}
}

func TestExplain(t *testing.T) {
	s := testStore(t)
	corpus().load(t, s)
	runJob(t, s, Full)
	for _, tc := range []struct {
		host, adv string
		all       bool
		exposed   bool
		lines     []string // substrings that must appear
		absent    []string // substrings that must not
	}{
		{"deb-1", "CVE-2023-0001", false, true, []string{"matched by source package openssl 3.0.9-1", "3.0.9-1 < fixed 3.0.11-1", "agrees",
			"range(s) of other releases or product streams not shown (Debian:11; --all lists them)"}, []string{"range #1 is for Debian:11"}},
		{"deb-1", "CVE-2023-0001", true, true, []string{"range #1 is for Debian:11"}, []string{"not shown"}},
		{"deb-3", "CVE-2023-0001", false, false, []string{"3.0.11-1 = fixed 3.0.11-1", "=> no range covers 3.0.11-1", "agrees"}, nil},
		{"deb-1", "DEBIAN-CVE-2023-0003", false, false, []string{"status not_affected", "a not_affected statement covers"}, nil},
		{"deb-4", "DEBIAN-CVE-2023-0007", false, false, []string{"NOT running"}, nil},
		{"deb-1", "DEBIAN-CVE-2023-0007", false, true, []string{"the running kernel"}, nil},
		{"rh-1", "RHSA-2025:23414", false, false, []string{"no range of RHSA-2025:23414 applies to the ecosystems of this host"}, nil},
		{"rh-1", "RHSA-2025:23414", true, false, []string{"range #0 is for Red Hat:enterprise_linux:6, the package is in Red Hat:enterprise_linux:9"}, nil},
		{"deb-1", "DEBIAN-CVE-2023-0005", false, false, []string{"WITHDRAWN"}, nil},
	} {
		e, err := Explain(context.Background(), s, version.Compare, tc.host, tc.adv, ExplainOptions{All: tc.all})
		if err != nil {
			t.Fatalf("%s %s: %v", tc.host, tc.adv, err)
		}
		var b strings.Builder
		e.WriteTo(&b)
		if e.Exposed != tc.exposed {
			t.Errorf("%s %s: exposed = %v, want %v\n%s", tc.host, tc.adv, e.Exposed, tc.exposed, b.String())
		}
		for _, l := range tc.lines {
			if !strings.Contains(b.String(), l) {
				t.Errorf("%s %s: explanation lacks %q:\n%s", tc.host, tc.adv, l, b.String())
			}
		}
		for _, l := range tc.absent {
			if strings.Contains(b.String(), l) {
				t.Errorf("%s %s: explanation has %q:\n%s", tc.host, tc.adv, l, b.String())
			}
		}
		// Where the analytics views exist (chDB), the finding's resolved
		// severity and its source are shown.
		if schemas.RequireAnalytics(context.Background(), s) == nil && !strings.Contains(tc.adv, "0005") &&
			!strings.Contains(b.String(), "has severity ") {
			t.Errorf("%s %s: no resolved severity:\n%s", tc.host, tc.adv, b.String())
		}
		// Every step number appears once, in order.
		want := 1
		for _, l := range e.Lines {
			if n, _, ok := strings.Cut(l, ". "); ok && n != "" && n[0] >= '0' && n[0] <= '9' {
				if n != fmt.Sprint(want) {
					t.Errorf("%s %s: step %s where %d was due:\n%s", tc.host, tc.adv, n, want, b.String())
				}
				want++
			}
		}
	}
}

// TestExplainFailsClosed: an unknown host or advisory is an error, never
// "NOT EXPOSED"; a hostname names its host.
func TestExplainFailsClosed(t *testing.T) {
	s := testStore(t)
	corpus().load(t, s)
	runJob(t, s, Full)
	ctx := context.Background()
	if _, err := Explain(ctx, s, version.Compare, "nobody", "CVE-2023-0001", ExplainOptions{}); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("unknown host: err = %v, want ErrUnknownHost", err)
	}
	if _, err := Explain(ctx, s, version.Compare, "deb-1", "CVE-2026-45447", ExplainOptions{}); !errors.Is(err, ErrUnknownAdvisory) {
		t.Errorf("unknown advisory: err = %v, want ErrUnknownAdvisory", err)
	}
	if err := s.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_ecosystem", "inventory_hash"}, [][]any{
		{"deb-1", "late", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), "vm", "Debian:12", "inv-gone"},
		{"twin-a", "a", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), "twin", "Debian:12", "x"},
		{"twin-b", "b", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), "twin", "Debian:12", "y"},
	}); err != nil {
		t.Fatal(err)
	}
	if id, err := ResolveHost(ctx, s, "vm"); err != nil || id != "deb-1" {
		t.Errorf("hostname vm: %q, %v; want deb-1", id, err)
	}
	e, err := Explain(ctx, s, version.Compare, "vm", "CVE-2023-0001", ExplainOptions{})
	if err != nil || e.Host != "deb-1" {
		t.Fatalf("explain by hostname: %+v, %v", e, err)
	}
	var amb *AmbiguousHostError
	if _, err := ResolveHost(ctx, s, "twin"); !errors.As(err, &amb) || len(amb.HostIDs) != 2 {
		t.Errorf("hostname of two hosts: %v", err)
	}
	if id, err := ResolveHost(ctx, s, "twin-a"); err != nil || id != "twin-a" {
		t.Errorf("host id: %q, %v", id, err)
	}
}

// TestReadHostFindingsEqualsView: the streamed reader delivers exactly the
// rows of host_findings, kernel state included, in batches smaller than
// the fleet's inventories.
func TestReadHostFindingsEqualsView(t *testing.T) {
	s := testStore(t)
	corpus().load(t, s)
	runJob(t, s, Full)
	want := hostFindings(t, s)
	var got []string
	hosts := map[string]bool{}
	st, err := ReadHostFindings(context.Background(), s, ReadConfig{Inventories: 2, ProgressEvery: -1}, func(h *Host, inv *InventoryFindings) error {
		if hosts[h.HostID] {
			t.Errorf("host %s delivered twice", h.HostID)
		}
		hosts[h.HostID] = true
		if inv.Hash != h.InventoryHash {
			t.Errorf("host %s with inventory %s got the findings of %s", h.HostID, h.InventoryHash, inv.Hash)
		}
		kernel := 0
		for i := range inv.Findings {
			f := &inv.Findings[i]
			if f.File == "" {
				t.Errorf("%s %s %s: no provenance file", h.HostID, f.Name, f.AdvisoryID)
			}
			line := fmt.Sprintf("%s %s=%s %s %s", h.HostID, f.Name, f.Version, f.AdvisoryID, f.Status)
			if k := f.KernelState(h.KernelRunning); k != "" {
				line += " kernel:" + k
				if kernel >= len(inv.Kernel) || inv.Kernel[kernel] != i {
					t.Errorf("%s %s: a kernel image finding missing from Kernel %v", h.HostID, f.Name, inv.Kernel)
				}
				kernel++
			}
			if f.Fixed != "" {
				line += " fixed:" + f.Fixed
			}
			got = append(got, line)
		}
		if kernel != len(inv.Kernel) {
			t.Errorf("%s: Kernel %v lists %d findings, %d are kernel images", h.HostID, inv.Kernel, len(inv.Kernel), kernel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("ReadHostFindings:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if st.HostFindings != uint64(len(want)) || st.Hosts != uint64(len(hosts)) || st.Inventories < 3 {
		t.Errorf("stats %+v: want %d host findings over %d hosts, several inventories", st, len(want), len(hosts))
	}
	var n uint64
	if err := queryUint(context.Background(), s, &n, `SELECT uniqExact(host_id) FROM scans`); err != nil {
		t.Fatal(err)
	}
	if st.Hosts != n {
		t.Errorf("delivered %d hosts, the fleet has %d (hosts without findings count too)", st.Hosts, n)
	}
}
