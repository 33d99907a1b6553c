package match

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/scanner/inventory/dpkg"
	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// The fleet benchmarks build a synthetic fleet from the real Debian 12
// host-b inventory: each distinct inventory applies a random subset of the
// host's 136 real pending upgrades (apt list --upgradable), and hosts are
// spread over the distinct inventories. Advisories are the 6,036 real
// changelog-derived Debian:12 records. Sizes: PATCHGRID_BENCH_HOSTS (default
// 10000) hosts over PATCHGRID_BENCH_INVENTORIES (default 200) inventories.

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func buildFleet(b *testing.B, s store.Store) (hosts, invs int) {
	b.Helper()
	hosts, invs = envInt("PATCHGRID_BENCH_HOSTS", 10000), envInt("PATCHGRID_BENCH_INVENTORIES", 200)
	data := testenv.SharedData(b)
	loadFeeds(b, s, filepath.Join(data, "advisories"), "debian12-changelog-derived-osv.zip")
	base := extractFile(b, dpkg.Extractor{}, filepath.Join(data, "inventories/dpkg/debian12-bookworm-host-b.status"),
		extract.Distro{ID: "debian", VersionID: "12", Ecosystem: "Debian:12"})
	upgrades := map[string]string{}
	f, err := os.Open(filepath.Join(data, "inventories/dpkg/debian12-bookworm-host-b.upgrades.tsv"))
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Split(sc.Text(), "\t"); len(fs) >= 2 && fs[0] != "package" {
			upgrades[fs[0]] = fs[1]
		}
	}
	f.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	var pkgRows [][]any
	for i := range invs {
		inv := fmt.Sprintf("inv-%04d", i)
		for _, p := range base {
			if cand, ok := upgrades[p.Name]; ok && rng.IntN(2) == 0 {
				if p.SourceVersion == "" || p.SourceVersion == p.Version {
					p.SourceVersion = ""
				} else {
					p.SourceVersion = cand
				}
				p.Version = cand
			}
			k, _ := version.Key(p.Ecosystem, p.MatchVersion())
			pkgRows = append(pkgRows, []any{inv, p.Ecosystem, p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.MatchName(), p.MatchVersion(), k, p.Location})
		}
		if len(pkgRows) > 50000 || i == invs-1 {
			if err := s.Insert(ctx, "inventory_packages", []string{"inventory_hash", "ecosystem", "name", "version", "arch", "source_name",
				"source_version", "match_name", "match_version", "v_key", "location"}, pkgRows); err != nil {
				b.Fatal(err)
			}
			pkgRows = pkgRows[:0]
		}
	}
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var scanRows [][]any
	for h := range hosts {
		scanRows = append(scanRows, []any{fmt.Sprintf("host-%05d", h), fmt.Sprintf("scan-%05d", h), at, at, "Debian:12", fmt.Sprintf("inv-%04d", h%invs)})
	}
	if err := s.Insert(ctx, "scans", []string{"host_id", "scan_id", "scanned_at", "received_at", "os_ecosystem", "inventory_hash"}, scanRows); err != nil {
		b.Fatal(err)
	}
	return hosts, invs
}

func countHostFindings(b *testing.B, s store.Store) uint64 {
	var n uint64
	if err := queryUint(context.Background(), s, &n, `SELECT count() FROM host_findings`); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkFleetFull is one full recompute of the whole fleet.
func BenchmarkFleetFull(b *testing.B) {
	s := testStore(b)
	hosts, _ := buildFleet(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	var st Stats
	for range b.N {
		var err error
		if st, err = (&Job{Store: s}).Run(context.Background(), Full); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(hosts)*float64(b.N)/b.Elapsed().Seconds(), "hosts/s")
	b.ReportMetric(float64(st.Versions), "versions")
	b.ReportMetric(float64(countHostFindings(b, s)), "host_findings")
}

// BenchmarkIncrementalOneAdvisory is the incremental run after one new
// advisory record for a package every host has (openssl).
func BenchmarkIncrementalOneAdvisory(b *testing.B) {
	s := testStore(b)
	buildFleet(b, s)
	if _, err := (&Job{Store: s}).Run(context.Background(), Full); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		id := fmt.Sprintf("BENCH-%d-%d", time.Now().UnixNano(), i)
		(&fixture{
			Advisories: []fxAdvisory{{Source: "osv", ID: id, Hash: id, File: "bench", Loaded: time.Now().UTC()}},
			Ranges:     []Range{rng("osv", id, id, "Debian:12", "openssl", 0, StatusAffected, "dpkg", "0", "3.0.99-1", "")},
		}).load(b, s)
		b.StartTimer()
		st, err := (&Job{Store: s}).Run(context.Background(), Incremental)
		if err != nil {
			b.Fatal(err)
		}
		if st.Advisories != 1 {
			b.Fatalf("incremental run matched %d advisory records, want 1", st.Advisories)
		}
	}
}

// BenchmarkReadHostFindings reads every host's findings of the fleet
// through ReadHostFindings and computes each host's kernel states, as the
// bench step match:<n> does.
func BenchmarkReadHostFindings(b *testing.B) {
	s := testStore(b)
	hosts, _ := buildFleet(b, s)
	if _, err := (&Job{Store: s}).Run(context.Background(), Full); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var st ReadStats
	for range b.N {
		var err error
		st, err = ReadHostFindings(context.Background(), s, ReadConfig{ProgressEvery: -1}, func(h *Host, inv *InventoryFindings) error {
			for _, i := range inv.Kernel {
				_ = inv.Findings[i].KernelState(h.KernelRunning)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if st.Hosts != uint64(hosts) {
		b.Fatalf("read %d hosts, the fleet has %d", st.Hosts, hosts)
	}
	b.ReportMetric(float64(hosts)*float64(b.N)/b.Elapsed().Seconds(), "hosts/s")
	b.ReportMetric(float64(st.HostFindings), "host_findings")
}
