package match

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/version"
)

// TestVerdicts: stale hosts, end-of-life findings and unmatched packages
// (0007_verdicts.sql) on the real store, 2018 server included.
func TestVerdicts(t *testing.T) {
	s := testStore(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_ecosystem", "inventory_hash"}, [][]any{
		{"deb10", "a", now.Add(-10 * 24 * time.Hour), now, "buster", "Debian:10", "inv10"},
		{"deb10", "b", now.Add(-5 * 24 * time.Hour), now, "buster", "Debian:10", "inv10"}, // latest, still 5 days old
		{"deb12", "c", now.Add(-time.Hour), now, "bookworm", "Debian:12", "inv12"},
		{"alp318", "d", now.Add(-2 * time.Hour), now, "alpine", "Alpine:v3.18", "inv318"},
		{"noos", "e", now.Add(-time.Hour), now, "noos", "", "invnoos"},
	}))
	must(s.Insert(ctx, "inventory_packages", []string{"inventory_hash", "ecosystem", "name", "version", "match_name", "match_version", "v_key"}, [][]any{
		{"inv12", "Debian:12", "openssl", "3.0.9-1", "openssl", "3.0.9-1", "k1"},
		{"inv12", "Debian:12", "weird", "!!", "weird", "!!", ""},
		{"inv12", "PyPI", "flask", "1.0", "flask", "1.0", "k2"},
		{"inv10", "Debian:10", "openssl", "1.1.1n-0+deb10u1", "openssl", "1.1.1n-0+deb10u1", "k3"},
		{"invnoos", "Debian", "bash", "5.2.15-2", "bash", "5.2.15-2", "k4"},
		{"invnoos", "Debian", "zlib1g", "1.2.13", "zlib", "1.2.13", "k5"},
	}))
	must(s.Insert(ctx, "affected_ranges", []string{"source", "advisory_id", "record_hash", "ecosystem", "package", "range_idx", "status"}, [][]any{
		{"osv", "DEBIAN-CVE-1", "h", "Debian:12", "openssl", uint16(0), "affected"},
		{"osv", "PYSEC-1", "h", "PyPI", "flask", uint16(0), "affected"},
	}))

	stale, err := StaleHosts(ctx, s, now, 0)
	must(err)
	if len(stale) != 1 || stale[0].HostID != "deb10" || stale[0].Hostname != "buster" {
		t.Errorf("stale (3 days): %+v, want deb10 only", stale)
	}
	if stale, err = StaleHosts(ctx, s, now, 90*time.Minute); err != nil || len(stale) != 2 {
		t.Errorf("stale (90 minutes): %+v %v, want deb10 and alp318", stale, err)
	}

	eol, err := EOLFindings(ctx, s, "")
	must(err)
	var eolHosts []string
	for _, f := range eol {
		eolHosts = append(eolHosts, f.HostID+"="+f.OS)
		if f.Source == "" || f.DaysPastEOL <= 0 {
			t.Errorf("EOL finding without source or age: %+v", f)
		}
	}
	if !slices.Equal(eolHosts, []string{"alp318=Alpine:v3.18", "deb10=Debian:10"}) {
		t.Errorf("EOL findings %v, want Alpine 3.18 and Debian 10 (not Debian 12)", eolHosts)
	}
	if one, err := EOLFindings(ctx, s, "deb12"); err != nil || len(one) != 0 {
		t.Errorf("deb12: %+v %v", one, err)
	}

	// explain says so about the host too.
	must(s.Insert(ctx, "advisories", []string{"source", "advisory_id", "record_hash", "aliases", "severity", "file", "loaded_at"}, [][]any{
		{"osv", "DEBIAN-CVE-1", "h", []string{}, "high", "f", now},
	}))
	e, err := Explain(ctx, s, version.Compare, "buster", "DEBIAN-CVE-1", ExplainOptions{})
	must(err)
	var b strings.Builder
	e.WriteTo(&b)
	for _, l := range []string{"STALE: the last scan is 5 days old", "END OF LIFE: Debian:10 left support on 2024-06-30", "https://endoflife.date/debian"} {
		if !strings.Contains(b.String(), l) {
			t.Errorf("explain deb10 lacks %q:\n%s", l, b.String())
		}
	}

	un, err := UnmatchedPackages(ctx, s, "")
	must(err)
	got := map[string]uint64{}
	for _, u := range un {
		got[u.Reason+"/"+u.Ecosystem] = u.Packages
	}
	want := map[string]uint64{
		"os_release_unknown/Debian":        2,
		"version_not_understood/Debian:12": 1,
		"no_advisories_loaded/Debian:10":   1,
	}
	if len(got) != len(want) {
		t.Errorf("unmatched %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("unmatched %s = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
}
