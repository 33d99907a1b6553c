package main

import (
	"archive/zip"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	apkver "github.com/knqyf263/go-apk-version"
	debver "github.com/knqyf263/go-deb-version"
	rpmver "github.com/knqyf263/go-rpm-version"

	scaninv "github.com/patchgrid/patchgrid/scanner/inventory"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// versionCorpora are the real versions of the OSV semantic corpus, as in
// schemas/version's own benchmarks, with the peer parser Trivy/Grype-era
// tools use for that scheme (nil: none).
var versionCorpora = []struct {
	eco, file string
	peer      func(string) error
	peerName  string
}{
	{"Debian", "debian-versions-generated.txt", func(s string) error { _, err := debver.NewVersion(s); return err }, "knqyf263/go-deb-version parse"},
	{"Alpine", "alpine-versions-generated.txt", func(s string) error { _, err := apkver.NewVersion(s); return err }, "knqyf263/go-apk-version parse"},
	{"Red Hat", "redhat-versions.txt", func(s string) error { rpmver.NewVersion(s); return nil }, "knqyf263/go-rpm-version parse"},
	{"PyPI", "pypi-versions-generated.txt", nil, ""},
	{"Maven", "maven-versions-generated.txt", nil, ""},
	{"npm", "semver-versions.txt", nil, ""},
}

func corpusVersions(shared, file string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(shared, "versions", "osv-semantic", file))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		for _, v := range []string{f[0], f[2]} {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// stepVersion: keys per second on one core and allocations per key, beside
// a peer parser of the same versions (parsing is the least any comparison
// needs), or, without a peer, beside the allocating convenience Key().
func stepVersion(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	runtime.GOMAXPROCS(1)
	if cfg.Quick {
		// testing.Benchmark reads its run time from the test flags.
		testing.Init()
		if err := flag.Set("test.benchtime", "100ms"); err != nil {
			return err
		}
	}
	for _, c := range versionCorpora {
		cmp, err := version.Lookup(c.eco)
		if err != nil {
			return err
		}
		all, err := corpusVersions(cfg.Shared, c.file)
		if err != nil {
			return err
		}
		var vs []string
		for _, v := range all {
			if _, err := cmp.AppendKey(nil, v); err == nil {
				vs = append(vs, v)
			}
		}
		if len(vs) == 0 {
			return fmt.Errorf("%s: no valid versions in %s", c.eco, c.file)
		}
		r := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 4096)
			for i := 0; i < b.N; i++ {
				buf, _ = cmp.AppendKey(buf[:0], vs[i%len(vs)])
			}
		})
		rate := float64(r.N) / r.T.Seconds()
		allocs := float64(r.MemAllocs) / float64(r.N)
		m := Metric{Name: c.eco + " AppendKey", Value: rate, Unit: "keys/s/core", Better: "higher",
			Note: fmt.Sprintf("%.2f allocs/key, %d distinct versions", allocs, len(vs))}
		if c.peer != nil {
			p := testing.Benchmark(func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					_ = c.peer(vs[i%len(vs)])
				}
			})
			m = ratio(m, "peer: "+c.peerName, float64(p.N)/p.T.Seconds())
		}
		out.Metrics = append(out.Metrics, m,
			Metric{Name: c.eco + " allocations per key", Value: allocs, Unit: "allocs/key", Better: "lower"})
		log.Info("version keys", "ecosystem", c.eco, "keys_per_s", int(rate), "allocs_per_key", allocs, "peer_per_s", int(m.RefValue))
	}
	deb, _ := corpusVersions(cfg.Shared, "debian-versions-generated.txt")
	r := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_, _ = version.Key("Debian:12", deb[i%len(deb)])
		}
	})
	out.Metrics = append(out.Metrics, Metric{Name: "Debian Key (string result)", Value: float64(r.N) / r.T.Seconds(), Unit: "keys/s/core",
		Better: "higher", Note: fmt.Sprintf("%.2f allocs/key", float64(r.MemAllocs)/float64(r.N))})
	return nil
}

// stepFeeds: the feeds Loader on the shared corpus into a fresh chDB,
// beside reading and decompressing the same files (the I/O floor).
func stepFeeds(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	locs := benchFeedLocations(cfg)
	t0 := time.Now()
	var raw int64
	for _, loc := range locs {
		n, err := readAll(loc)
		if err != nil {
			return err
		}
		raw += n
	}
	floor := time.Since(t0)
	dir := filepath.Join(cfg.Work, "feeds")
	defer os.RemoveAll(dir)
	st, err := openCHDB(ctx, cfg, dir, log)
	if err != nil {
		return err
	}
	defer st.Close()
	t0 = time.Now()
	records, err := loadFeeds(ctx, st, locs, log)
	if err != nil {
		return err
	}
	d := time.Since(t0)
	log.Info("feeds loaded", "records", records, "took", d.Round(time.Millisecond), "read_floor", floor.Round(time.Millisecond))
	out.Info["records"], out.Info["uncompressed_bytes"] = records, raw
	out.Metrics = append(out.Metrics,
		ratio(Metric{Name: "feed load time", Value: d.Seconds(), Unit: "s", Better: "lower",
			Note: fmt.Sprintf("%d records, %.0f records/s, into chDB", records, float64(records)/d.Seconds())},
			"ceiling: read + decompress the same files", floor.Seconds()))
	return nil
}

// readAll reads and decompresses every file under path, returning the bytes.
func readAll(path string) (int64, error) {
	var total int64
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n, err := readOne(p)
		total += n
		return err
	})
	return total, err
}

func readOne(p string) (int64, error) {
	if strings.HasSuffix(p, ".zip") {
		z, err := zip.OpenReader(p)
		if err != nil {
			return 0, err
		}
		defer z.Close()
		var n int64
		for _, f := range z.File {
			r, err := f.Open()
			if err != nil {
				return n, err
			}
			k, err := io.Copy(io.Discard, r)
			r.Close()
			n += k
			if err != nil {
				return n, err
			}
		}
		return n, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".gz") || strings.HasSuffix(p, ".tgz") {
		g, err := gzip.NewReader(f)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p, err)
		}
		r = g
	}
	return io.Copy(io.Discard, r)
}

// scannerInventories are the real inventories the scanner step reads, one
// child process each (so peak RSS is per endpoint scan), plus this machine.
func scannerInventories(quick bool) []string {
	if quick {
		return []string{"dpkg/debian12-bookworm-host-b.status", "local:/"}
	}
	return []string{
		"dpkg/debian12-bookworm-host-b.status",
		"dpkg/claircore-texlive.status",
		"apk/scalibr-alpine3.18.installed",
		"rpm/claircore-ubi9_ubi-6270e0fc80cc9b3025076e80-amd64.rpm-manifest.json",
		"sbom/claircore-ubi_latest.spdx.json.gz",
		"local:/",
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stepScanner: CPU per endpoint scan of one real inventory (scanner/inventory),
// beside the CPU of just reading the file's bytes.
func stepScanner(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	budget := 3 * time.Second
	if cfg.Quick {
		budget = time.Second
	}
	var scan func() (int, error)
	var rawPaths []string
	if root, ok := strings.CutPrefix(cfg.Arg, "local:"); ok {
		scan = func() (int, error) {
			s, err := scaninv.Collect(ctx, scaninv.Config{Root: root})
			if err != nil {
				return 0, err
			}
			return len(s.Packages), nil
		}
		for _, p := range []string{"var/lib/dpkg/status", "lib/apk/db/installed", "var/lib/rpm/rpmdb.sqlite"} {
			if _, err := os.Stat(filepath.Join(root, p)); err == nil {
				rawPaths = append(rawPaths, filepath.Join(root, p))
			}
		}
	} else {
		path := filepath.Join(cfg.Shared, "inventories", cfg.Arg)
		scan = func() (int, error) {
			f, err := scaninv.ReadFile(ctx, path)
			if err != nil {
				return 0, err
			}
			return len(f.Packages), nil
		}
		rawPaths = []string{path}
	}
	pkgs, err := scan() // warm-up: page cache, lazy init
	if err != nil {
		return err
	}
	measure := func(f func() error) (time.Duration, int, error) {
		c0, t0, n := cpuTime(), time.Now(), 0
		for n < 3 || time.Since(t0) < budget {
			if err := f(); err != nil {
				return 0, n, err
			}
			n++
		}
		return (cpuTime() - c0) / time.Duration(n), n, nil
	}
	per, iters, err := measure(func() error { _, err := scan(); return err })
	if err != nil {
		return err
	}
	floor, _, err := measure(func() error {
		for _, p := range rawPaths {
			if _, err := readOne(p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	log.Info("scanner", "inventory", cfg.Arg, "packages", pkgs, "cpu_ms_per_scan", round(ms(per), 2), "iterations", iters)
	out.Info["packages"], out.Info["iterations"] = pkgs, iters
	out.Metrics = append(out.Metrics, ratio(Metric{Name: "CPU per endpoint scan", Value: ms(per), Unit: "ms", Better: "lower",
		Note: fmt.Sprintf("%d packages; peak RSS is the step's", pkgs)}, "ceiling: read (and decompress) the same file(s)", ms(floor)))
	return nil
}
