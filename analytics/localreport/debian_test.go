package localreport

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/ingest/feeds"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/schemas"
	schema "github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/version"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// The shared Debian 12 host (host-b, 745 packages) against the
// changelog-derived Debian:12 records: OSV-Scanner reports 5,369
// (package, advisory) pairs over 107 packages and 2,381 ids
// (shared/data/README.md §3).
const (
	hostB      = "debian12-bookworm-host-b"
	hostBFile  = "inventories/dpkg/debian12-bookworm-host-b.status"
	debianZip  = "advisories/debian12-changelog-derived-osv.zip"
	toolVer    = "v0.0.0-test"
	wantPairs  = 5369
	wantPkgs   = 107
	wantAdvIDs = 2381
)

var hostBScanned = time.Date(2025, 5, 20, 0, 0, 0, 0, time.UTC)

// debianStore is a migrated chDB store holding the Debian:12 records.
func debianStore(t *testing.T) (store.Store, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("loads 6,036 records")
	}
	data := testenv.SharedData(t)
	st := testenv.CHDBStore(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := schemas.Migrate(ctx, st, log); err != nil {
		t.Fatal(err)
	}
	l := &feeds.Loader{Store: st, Lookup: func(eco string) (feed.Comparator, error) { return version.Lookup(eco) }, Log: log}
	if _, err := l.Load(ctx, filepath.Join(data, debianZip)); err != nil {
		t.Fatal(err)
	}
	return st, data
}

// hostBScan reads host-b's status file as `scan --dpkg-status FILE --os
// Debian:12` does, with the location it has on the host (not this
// machine's path), so outputs are the same everywhere.
func hostBScan(t *testing.T, data string) *schema.Scan {
	t.Helper()
	pkgs, osInfo, warn, err := FromFiles(context.Background(), Files{DpkgStatus: []string{filepath.Join(data, hostBFile)}}, "debian:12")
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 0 || osInfo.Ecosystem != "Debian:12" || len(pkgs) != 745 {
		t.Fatalf("%d packages, OS %+v, warnings %v", len(pkgs), osInfo, warn)
	}
	for i := range pkgs {
		pkgs[i].Location = "/var/lib/dpkg/status"
	}
	return &schema.Scan{HostID: hostB, ScanID: hostB + "-1", ScannedAt: hostBScanned, OS: osInfo, Packages: pkgs,
		InventoryHash: schema.HashPackages(pkgs)}
}

func TestDebianHostReport(t *testing.T) {
	st, data := debianStore(t)
	s := hostBScan(t, data)
	ctx := context.Background()
	r, err := Build(ctx, st, s, []string{"debian12-bookworm-host-b.status"}, Options{Now: func() time.Time { return hostBScanned }})
	if err != nil {
		t.Fatal(err)
	}
	if r.Summary.Findings != wantPairs || r.Summary.PackagesAffected != wantPkgs || r.Summary.Advisories != wantAdvIDs || !r.Complete {
		t.Fatalf("summary %+v complete=%v; OSV-Scanner: %d pairs, %d packages, %d ids", r.Summary, r.Complete, wantPairs, wantPkgs, wantAdvIDs)
	}

	t.Run("golden", func(t *testing.T) {
		for _, g := range []struct{ format, file string }{
			{"table", hostB + ".table.golden"},
			{"sarif", hostB + ".sarif.golden.gz"},
			{"cyclonedx", hostB + ".cdx.golden.gz"},
		} {
			var b bytes.Buffer
			if err := Write(&b, r, g.format, toolVer, TableOptions{}); err != nil {
				t.Fatalf("%s: %v", g.format, err)
			}
			golden(t, filepath.Join("testdata", g.file), b.Bytes())
		}
	})

	t.Run("schemas", func(t *testing.T) {
		var sb, cb bytes.Buffer
		if err := WriteSARIF(&sb, r, toolVer); err != nil {
			t.Fatal(err)
		}
		if err := WriteCycloneDX(&cb, r, toolVer); err != nil {
			t.Fatal(err)
		}
		validate(t, sarifSchema(t), "SARIF", sb.Bytes())
		validate(t, cycloneDXSchema(t), "CycloneDX", cb.Bytes())
	})

	// The fleet path for the same host: the inventory stored as ingest
	// stores it, the fleet matching job, then host_findings.
	t.Run("fleet", func(t *testing.T) {
		storeScan(t, st, s)
		if _, err := (&match.Job{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Run(ctx, match.Full); err != nil {
			t.Fatal(err)
		}
		sameFindings(t, r, fleetPairs(t, st, hostB))
	})

	// A live host reports its running kernel: findings on other installed
	// kernel images are not counted, as in the fleet's figures.
	t.Run("kernels", func(t *testing.T) {
		img := func(abi, v string) schema.Package {
			return schema.Package{Ecosystem: "Debian:12", Name: "linux-image-" + abi, Version: v, Arch: "amd64", SourceName: "linux", SourceVersion: v}
		}
		pkgs := []schema.Package{img("6.1.0-37-amd64", "6.1.187-1"), img("6.1.0-36-amd64", "6.1.180-1"),
			{Ecosystem: "Debian:12", Name: "zip", Version: "3.0-13", Arch: "amd64", SourceName: "zip"}}
		k := &schema.Scan{HostID: "kernel-host", ScanID: "kernel-host-1", ScannedAt: hostBScanned, OS: s.OS, Packages: pkgs,
			KernelRunning: "6.1.0-37-amd64", InventoryHash: schema.HashPackages(pkgs)}
		kr, err := Build(ctx, st, k, []string{"test"}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		running, other := 0, 0
		for _, f := range kr.Findings {
			if f.Package.Name == "linux-image-6.1.0-36-amd64" {
				t.Fatalf("finding on the kernel that is not running: %+v", f)
			}
			if f.KernelState == "running" {
				running++
			}
		}
		for _, f := range kr.NotRunningKernel {
			if f.Package.Name != "linux-image-6.1.0-36-amd64" || f.KernelState != "not_running" {
				t.Fatalf("not-running list holds %+v", f)
			}
			other++
		}
		if running == 0 || other == 0 || kr.Summary.NotRunningKernel != other {
			t.Fatalf("%d running-kernel findings, %d not running, summary %+v", running, other, kr.Summary)
		}
		storeScan(t, st, k)
		if _, err := (&match.Job{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Run(ctx, match.Incremental); err != nil {
			t.Fatal(err)
		}
		sameFindings(t, kr, fleetPairs(t, st, "kernel-host"))
	})
}

// sameFindings compares the report's findings with the fleet's.
func sameFindings(t *testing.T, r *Report, fleet []string) {
	t.Helper()
	var local []string
	for _, f := range r.Findings {
		local = append(local, fmt.Sprintf("%s %s %s/%s fixed=%s", f.Package.Name, f.Package.Version, f.Match.Source, f.Match.AdvisoryID, f.Match.Fixed))
	}
	slices.Sort(local)
	local = slices.Compact(local)
	if len(local) == 0 || !slices.Equal(local, fleet) {
		t.Errorf("local report (%d) and fleet path (%d) disagree", len(local), len(fleet))
		for _, d := range symmetricDiff(local, fleet, 20) {
			t.Log(d)
		}
	}
}

// storeScan writes the scan's rows the way ingest does (schemas/inventory's
// match name, version and key).
func storeScan(t *testing.T, st store.Store, s *schema.Scan) {
	t.Helper()
	ctx := context.Background()
	var rows [][]any
	for i := range s.Packages {
		p := &s.Packages[i]
		k, err := version.Key(p.Ecosystem, p.MatchVersion())
		if err != nil {
			k = ""
		}
		rows = append(rows, []any{s.InventoryHash, p.Ecosystem, p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion,
			p.MatchName(), p.MatchVersion(), k, p.Location})
	}
	if err := st.Insert(ctx, "inventory_packages", []string{"inventory_hash", "ecosystem", "name", "version", "arch", "source_name",
		"source_version", "match_name", "match_version", "v_key", "location"}, rows); err != nil {
		t.Fatal(err)
	}
	if err := st.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "os_ecosystem", "kernel_running", "inventory_hash", "package_count"},
		[][]any{{s.HostID, s.ScanID, s.ScannedAt, s.ScannedAt, s.OS.Ecosystem, s.KernelRunning, s.InventoryHash, uint32(len(s.Packages))}}); err != nil {
		t.Fatal(err)
	}
}

// fleetPairs are the host's exposing findings as the fleet views give them.
func fleetPairs(t *testing.T, st store.Store, host string) []string {
	t.Helper()
	rows, err := st.Query(context.Background(), `SELECT DISTINCT name, version, source, advisory_id, fixed FROM host_findings
WHERE host_id = ? AND kernel_state != 'not_running'`, host)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n, v, src, id, fixed string
		if err := rows.Scan(&n, &v, &src, &id, &fixed); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s %s/%s fixed=%s", n, v, src, id, fixed))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func symmetricDiff(a, b []string, max int) []string {
	var out []string
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			out = append(out, "only local: "+x)
		}
	}
	for _, x := range b {
		if _, ok := slices.BinarySearch(a, x); !ok {
			out = append(out, "only fleet: "+x)
		}
	}
	if len(out) > max {
		out = append(out[:max], "…")
	}
	return out
}

// golden compares got with the file (gzip-compressed when it ends in .gz:
// the SARIF and CycloneDX documents of a real host are megabytes), or
// rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	gz := strings.HasSuffix(path, ".gz")
	if *update {
		out := got
		if gz {
			var b bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression) // no name, no mtime: the same bytes every time
			zw.Write(got)
			zw.Close()
			out = b.Bytes()
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if gz {
		zr, err := gzip.NewReader(bytes.NewReader(want))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if want, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Errorf("%s differs (run with -update if intended), first at line %d:\n got: %q\nwant: %q", path, i+1, g, w)
			return
		}
	}
}
