package match

import (
	"context"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// Test fixtures: small advisory and inventory sets written straight into
// the feed and inventory tables, with keys from schemas/version as the
// loaders compute them.

type fxAdvisory struct {
	Source, ID, Hash string
	Withdrawn        bool
	Aliases          []string
	Severity, File   string
	Loaded           time.Time
}

type fxPackage struct {
	Inv, Eco, Name, Version, Arch, SrcName, SrcVersion, Location string
}

func (p fxPackage) matchName() string {
	if p.SrcName != "" {
		return p.SrcName
	}
	return p.Name
}

func (p fxPackage) matchVersion() string {
	if p.SrcVersion != "" {
		return p.SrcVersion
	}
	return p.Version
}

type fxScan struct {
	Host, Scan string
	At         time.Time
	Eco        string
	Kernel     string
	Inv        string
}

type fixture struct {
	Advisories []fxAdvisory
	Ranges     []Range
	Packages   []fxPackage
	Scans      []fxScan
}

func keyOrEmpty(eco, v string) string {
	if v == "" {
		return ""
	}
	k, err := version.Key(eco, v)
	if err != nil {
		return ""
	}
	return k
}

func (f *fixture) load(t testing.TB, s store.Store) {
	t.Helper()
	ctx := context.Background()
	if len(f.Ranges) > 0 {
		var rows [][]any
		for _, r := range f.Ranges {
			ik := ""
			if r.Introduced != "0" {
				ik = keyOrEmpty(r.Ecosystem, r.Introduced)
			}
			rows = append(rows, []any{r.Source, r.AdvisoryID, r.RecordHash, r.Ecosystem, r.Package, r.Idx, r.Type, r.Status, r.Comparator,
				r.Introduced, ik, r.Fixed, keyOrEmpty(r.Ecosystem, r.Fixed), r.LastAffected, keyOrEmpty(r.Ecosystem, r.LastAffected), r.FixPublished})
		}
		if err := s.Insert(ctx, "affected_ranges", []string{"source", "advisory_id", "record_hash", "ecosystem", "package", "range_idx",
			"range_type", "status", "comparator", "introduced", "introduced_key", "fixed", "fixed_key", "last_affected",
			"last_affected_key", "fix_published"}, rows); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.Advisories) > 0 {
		var rows [][]any
		for _, a := range f.Advisories {
			var cves []string
			for _, x := range append([]string{a.ID}, a.Aliases...) {
				if len(x) > 4 && x[:4] == "CVE-" {
					cves = append(cves, x)
				}
			}
			loaded := a.Loaded
			if loaded.IsZero() {
				loaded = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			}
			rows = append(rows, []any{a.Source, a.ID, a.Hash, boolU8(a.Withdrawn), a.Aliases, cves, a.Severity, a.File, loaded})
		}
		if err := s.Insert(ctx, "advisories", []string{"source", "advisory_id", "record_hash", "withdrawn", "aliases", "cves",
			"severity", "file", "loaded_at"}, rows); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.Packages) > 0 {
		var rows [][]any
		for _, p := range f.Packages {
			rows = append(rows, []any{p.Inv, p.Eco, p.Name, p.Version, p.Arch, p.SrcName, p.SrcVersion, p.matchName(), p.matchVersion(),
				keyOrEmpty(p.Eco, p.matchVersion()), p.Location})
		}
		if err := s.Insert(ctx, "inventory_packages", []string{"inventory_hash", "ecosystem", "name", "version", "arch",
			"source_name", "source_version", "match_name", "match_version", "v_key", "location"}, rows); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.Scans) > 0 {
		var rows [][]any
		for _, sc := range f.Scans {
			rows = append(rows, []any{sc.Host, sc.Scan, sc.At, sc.At, sc.Host + ".example", sc.Eco, sc.Kernel, sc.Inv})
		}
		if err := s.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "hostname", "os_ecosystem",
			"kernel_running", "inventory_hash"}, rows); err != nil {
			t.Fatal(err)
		}
	}
}

func boolU8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// current returns the ranges that count: those of each advisory's latest
// loaded record, not withdrawn (what `advisories FINAL` yields).
func (f *fixture) current() []Range {
	type id struct{ source, adv string }
	latest := map[id]fxAdvisory{}
	for _, a := range f.Advisories {
		k := id{a.Source, a.ID}
		if cur, ok := latest[k]; !ok || !a.Loaded.Before(cur.Loaded) {
			latest[k] = a
		}
	}
	var out []Range
	for _, r := range f.Ranges {
		a, ok := latest[id{r.Source, r.AdvisoryID}]
		if ok && !a.Withdrawn && a.Hash == r.RecordHash {
			out = append(out, r)
		}
	}
	return out
}

// versions returns the distinct match versions of the fixture's packages.
func (f *fixture) versions() []Version {
	var out []Version
	for _, p := range f.Packages {
		out = append(out, Version{p.Eco, p.matchName(), p.matchVersion()})
	}
	return out
}

var (
	day0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	day1 = day0.Add(24 * time.Hour)
	day2 = day1.Add(24 * time.Hour)
	day3 = day2.Add(24 * time.Hour)
)

func rng(source, id, hash, eco, pkg string, idx uint16, status, cmp, intro, fixed, last string) Range {
	typ := "ECOSYSTEM"
	if intro != "" && intro == last {
		typ = "VERSIONS"
	}
	return Range{Source: source, AdvisoryID: id, RecordHash: hash, Ecosystem: eco, Package: pkg, Idx: idx, Type: typ,
		Status: status, Comparator: cmp, Introduced: intro, Fixed: fixed, LastAffected: last, FixPublished: time.Unix(0, 0).UTC()}
}

// corpus is the fixture both matchers must agree on: every rule of the
// matching semantics has a case here.
func corpus() *fixture {
	const deb, deb11 = "Debian:12", "Debian:11"
	const alp = "Alpine:v3.16"
	const rh9, rh6 = "Red Hat:enterprise_linux:9", "Red Hat:enterprise_linux:6"
	return &fixture{
		Advisories: []fxAdvisory{
			{Source: "osv", ID: "DEBIAN-CVE-2023-0001", Hash: "a1", Aliases: []string{"CVE-2023-0001"}, Severity: "high", File: "debian.zip!DEBIAN-CVE-2023-0001.json"},
			{Source: "osv", ID: "DEBIAN-CVE-2023-0002", Hash: "a2", Aliases: []string{"CVE-2023-0002"}, Severity: "low", File: "debian.zip!2.json"},
			{Source: "osv", ID: "DEBIAN-CVE-2023-0003", Hash: "a3", Severity: "medium", File: "debian.zip!3.json"},
			{Source: "osv", ID: "DEBIAN-CVE-2023-0004", Hash: "a4-old", Severity: "medium", File: "old", Loaded: day0},
			{Source: "osv", ID: "DEBIAN-CVE-2023-0004", Hash: "a4", Severity: "medium", File: "new", Loaded: day1},
			{Source: "osv", ID: "DEBIAN-CVE-2023-0005", Hash: "a5", Withdrawn: true, File: "withdrawn"},
			{Source: "osv", ID: "DEBIAN-CVE-2023-0006", Hash: "a6", File: "wnf"},
			{Source: "osv", ID: "DEBIAN-CVE-2023-0007", Hash: "a7", File: "linux"},
			{Source: "alpine-secdb", ID: "CVE-2023-42366", Hash: "b1", File: "3.16/main/busybox.json"},
			{Source: "alpine-secdb", ID: "CVE-2022-30065", Hash: "b2", File: "3.16/main/busybox.json"},
			{Source: "alpine-secdb", ID: "CVE-2022-28391", Hash: "b3", File: "3.16/main/busybox.json"},
			{Source: "alpine-secdb", ID: "CVE-2023-45853", Hash: "b4", File: "3.16/main/zlib.json"},
			{Source: "alpine-secdb", ID: "CVE-2023-0464", Hash: "b5", File: "3.16/main/openssl.json"},
			{Source: "redhat-csaf", ID: "RHSA-2025:23414", Hash: "c1", File: "rhsa-2025_23414.json"},
			{Source: "redhat-csaf", ID: "RHSA-2025:0001", Hash: "c2", File: "rhsa-2025_0001.json"},
			{Source: "osv", ID: "GO-2021-0113", Hash: "g1", Aliases: []string{"CVE-2020-28852"}, File: "go.tar.gz!GO-2021-0113.json"},
			{Source: "osv", ID: "PYSEC-2023-1", Hash: "p1", File: "pypa"},
		},
		Ranges: []Range{
			// installed == fixed is fixed; 3.0.9-1 affected.
			rng("osv", "DEBIAN-CVE-2023-0001", "a1", deb, "openssl", 0, StatusAffected, "dpkg", "0", "3.0.11-1", ""),
			// the same advisory for another release never matches Debian:12 hosts.
			rng("osv", "DEBIAN-CVE-2023-0001", "a1", deb11, "openssl", 1, StatusAffected, "dpkg", "0", "3.0.99-1", ""),
			// unfixed: every version.
			rng("osv", "DEBIAN-CVE-2023-0002", "a2", deb, "openssl", 0, StatusUnfixed, "dpkg", "0", "", ""),
			// an affected range cancelled by a not_affected statement.
			rng("osv", "DEBIAN-CVE-2023-0003", "a3", deb, "openssl", 0, StatusAffected, "dpkg", "0", "9", ""),
			rng("osv", "DEBIAN-CVE-2023-0003", "a3", deb, "openssl", 1, StatusNotAffected, "dpkg", "0", "", ""),
			// modified record: only a4's ranges count.
			rng("osv", "DEBIAN-CVE-2023-0004", "a4-old", deb, "openssl", 0, StatusAffected, "dpkg", "0", "9", ""),
			rng("osv", "DEBIAN-CVE-2023-0004", "a4", deb, "openssl", 0, StatusAffected, "dpkg", "3.0.10-1", "3.0.12-1", ""),
			rng("osv", "DEBIAN-CVE-2023-0004", "a4", deb, "openssl", 1, StatusAffected, "dpkg", "3.0.9-1", "", "3.0.9-1"),
			// withdrawn: nothing.
			rng("osv", "DEBIAN-CVE-2023-0005", "a5", deb, "openssl", 0, StatusAffected, "dpkg", "0", "9", ""),
			rng("osv", "DEBIAN-CVE-2023-0006", "a6", deb, "glibc", 0, StatusWillNotFix, "dpkg", "0", "", ""),
			rng("osv", "DEBIAN-CVE-2023-0007", "a7", deb, "linux", 0, StatusAffected, "dpkg", "0", "6.1.90-1", ""),
			// apk: r17 > r7; the "0" key as a not_affected statement.
			rng("alpine-secdb", "CVE-2023-42366", "b1", alp, "busybox", 0, StatusAffected, "apk", "", "1.35.0-r18", ""),
			rng("alpine-secdb", "CVE-2022-30065", "b2", alp, "busybox", 0, StatusAffected, "apk", "", "1.35.0-r15", ""),
			rng("alpine-secdb", "CVE-2022-28391", "b3", alp, "busybox", 0, StatusAffected, "apk", "", "1.35.0-r7", ""),
			rng("alpine-secdb", "CVE-2023-45853", "b4", alp, "zlib", 0, StatusNotAffected, "apk", "", "", ""),
			rng("alpine-secdb", "CVE-2023-0464", "b5", alp, "openssl", 0, StatusAffected, "apk", "", "1.1.1t-r1", ""),
			// rpm: a RHEL 6 fix never applies to RHEL 9; epochs count.
			rng("redhat-csaf", "RHSA-2025:23414", "c1", rh6, "bind", 0, StatusAffected, "rpm", "", "32:9.8.2-0.68.rc1.el6_10.17", ""),
			rng("redhat-csaf", "RHSA-2025:0001", "c2", rh9, "bind", 0, StatusAffected, "rpm", "", "32:9.16.23-24.el9_5.3", ""),
			rng("osv", "GO-2021-0113", "g1", "Go", "golang.org/x/text", 0, StatusAffected, "go", "0", "0.3.7", ""),
			rng("osv", "PYSEC-2023-1", "p1", "PyPI", "werkzeug", 0, StatusAffected, "pep440", "0", "0.15.3", ""),
		},
		Packages: []fxPackage{
			{Inv: "inv-deb-old", Eco: deb, Name: "libssl3", Version: "3.0.9-1", Arch: "amd64", SrcName: "openssl"},
			{Inv: "inv-deb-old", Eco: deb, Name: "openssl", Version: "3.0.9-1", Arch: "amd64"},
			{Inv: "inv-deb-old", Eco: deb, Name: "libc6", Version: "2.36-9+deb12u4", Arch: "amd64", SrcName: "glibc"},
			{Inv: "inv-deb-old", Eco: deb, Name: "linux-image-6.1.0-18-amd64", Version: "6.1.76-1", Arch: "amd64", SrcName: "linux"},
			{Inv: "inv-deb-old", Eco: deb, Name: "linux-image-6.1.0-21-amd64", Version: "6.1.90-1", Arch: "amd64", SrcName: "linux"},
			{Inv: "inv-deb-old", Eco: deb, Name: "weird", Version: "not a version!", Arch: "amd64"},
			{Inv: "inv-deb-mid", Eco: deb, Name: "libssl3", Version: "3.0.10-2", Arch: "amd64", SrcName: "openssl"},
			{Inv: "inv-deb-new", Eco: deb, Name: "libssl3", Version: "3.0.11-1", Arch: "amd64", SrcName: "openssl"},
			{Inv: "inv-deb-new", Eco: deb, Name: "libc6", Version: "2.36-9+deb12u4", Arch: "amd64", SrcName: "glibc"},
			{Inv: "inv-alp", Eco: alp, Name: "busybox", Version: "1.35.0-r17", Arch: "x86_64", SrcName: "busybox"},
			{Inv: "inv-alp", Eco: alp, Name: "zlib", Version: "1.2.12-r3", Arch: "x86_64", SrcName: "zlib"},
			{Inv: "inv-alp", Eco: alp, Name: "libcrypto1.1", Version: "1.1.1q-r0", Arch: "x86_64", SrcName: "openssl"},
			{Inv: "inv-rh9", Eco: rh9, Name: "bind-libs", Version: "32:9.16.23-24.el9_5", Arch: "x86_64", SrcName: "bind", SrcVersion: "32:9.16.23-24.el9_5"},
			{Inv: "inv-app", Eco: "Go", Name: "golang.org/x/text", Version: "0.3.6", Location: "go.mod"},
			{Inv: "inv-app", Eco: "PyPI", Name: "werkzeug", Version: "0.11", Location: "requirements.txt"},
		},
		Scans: []fxScan{
			{Host: "deb-1", Scan: "d1-s0", At: day0, Eco: deb, Kernel: "6.1.0-18-amd64", Inv: "inv-deb-old"},
			{Host: "deb-1", Scan: "d1-s1", At: day1, Eco: deb, Kernel: "6.1.0-18-amd64", Inv: "inv-deb-new"},
			{Host: "deb-1", Scan: "d1-s2", At: day2, Eco: deb, Kernel: "6.1.0-18-amd64", Inv: "inv-deb-old"},
			{Host: "deb-2", Scan: "d2-s0", At: day0, Eco: deb, Kernel: "6.1.0-21-amd64", Inv: "inv-deb-old"},
			{Host: "deb-2", Scan: "d2-s1", At: day2, Eco: deb, Kernel: "6.1.0-21-amd64", Inv: "inv-deb-mid"},
			{Host: "deb-3", Scan: "d3-s0", At: day0, Eco: deb, Kernel: "6.1.0-18-amd64", Inv: "inv-deb-old"},
			{Host: "deb-3", Scan: "d3-s1", At: day1, Eco: deb, Kernel: "6.1.0-18-amd64", Inv: "inv-deb-new"},
			{Host: "deb-4", Scan: "d4-s0", At: day1, Eco: deb, Kernel: "6.1.0-21-amd64", Inv: "inv-deb-old"},
			{Host: "alp-1", Scan: "a1-s0", At: day1, Eco: alp, Inv: "inv-alp"},
			{Host: "rh-1", Scan: "r1-s0", At: day1, Eco: rh9, Kernel: "5.14.0-503.el9.x86_64", Inv: "inv-rh9"},
			{Host: "app-1", Scan: "p1-s0", At: day1, Inv: "inv-app"},
		},
	}
}
