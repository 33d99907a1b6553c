package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/analytics/refresh"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// peerDays is the peer fleet's timeline: long enough for the upgrade waves
// to leave hosts in different states.
const peerDays = 7

// stepPeerOSV runs OSV-Scanner offline, one process per host (how it is
// used), on a sample of a host-b fleet, and patchgrid's fleet matching on
// the whole fleet, then compares findings per (package, advisory).
func stepPeerOSV(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	dbDir := filepath.Join(cfg.Work, "osvdb")
	if err := buildOSVDB(cfg, dbDir); err != nil {
		return fmt.Errorf("build OSV database: %w", err)
	}
	in, err := loadFleetInputs(ctx, cfg, true, log)
	if err != nil {
		return err
	}
	fleet, err := newFleet(in, cfg.PeerFleet, peerDays, log)
	if err != nil {
		return err
	}
	last := peerDays - 1
	sample := make([]int, 0, cfg.PeerSample)
	for k := range min(cfg.PeerSample, cfg.PeerFleet) {
		sample = append(sample, k*cfg.PeerFleet/min(cfg.PeerSample, cfg.PeerFleet))
	}
	hostDirs := make([]string, len(sample))
	for k, i := range sample {
		hostDirs[k] = filepath.Join(cfg.Work, "peer-hosts", fmt.Sprint(i))
		if err := writeDpkgRoot(hostDirs[k], fleet.PackagesOn(i, last)); err != nil {
			return err
		}
	}

	// The peer: S processes, PeerProcs at a time.
	osvFindings := make([]map[pair]string, len(sample))
	var mu sync.Mutex
	var maxRSS, cpu float64
	var firstErr error
	jobs := make(chan int)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range cfg.PeerProcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				f, rss, c, err := runOSVScanner(ctx, cfg.OSVScanner, dbDir, hostDirs[k])
				mu.Lock()
				osvFindings[k] = f
				maxRSS = max(maxRSS, rss)
				cpu += c
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for k := range sample {
		jobs <- k
	}
	close(jobs)
	wg.Wait()
	osvD := time.Since(t0)
	if firstErr != nil {
		return fmt.Errorf("osv-scanner: %w", firstErr)
	}
	osvRate := float64(len(sample)) / osvD.Seconds()
	log.Info("osv-scanner done", "hosts", len(sample), "procs", cfg.PeerProcs, "took", osvD.Round(time.Millisecond), "hosts_per_s", round(osvRate, 3))

	// patchgrid: the whole fleet through Kafka into chDB, one full match.
	dir := filepath.Join(cfg.Work, "peer-chdb")
	defer os.RemoveAll(dir)
	st, err := openCHDB(ctx, cfg, dir, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := loadFeeds(ctx, st, []string{filepath.Join(cfg.Shared, "advisories", "debian12-changelog-derived-osv.zip")}, log); err != nil {
		return err
	}
	topic := "pgbench.peer"
	cluster, brokers, err := startInProcessKafka(ctx, topic)
	if err != nil {
		return err
	}
	defer cluster.Close()
	prod, err := publish.New(producerConfig(brokers, topic))
	if err != nil {
		return err
	}
	t1 := time.Now()
	_, err = fleet.Run(ctx, simulate.PublishSink{P: prod}, simulate.RunOptions{ProgressInterval: -1})
	if cerr := prod.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if _, err := ingest(ctx, st, brokers, topic, log); err != nil {
		return err
	}
	ingD := time.Since(t1)
	t1 = time.Now()
	if _, err := (&match.Job{Store: st, Log: quiet(log)}).Run(ctx, match.Full); err != nil {
		return err
	}
	matchD := time.Since(t1)
	pgRate := float64(cfg.PeerFleet) / matchD.Seconds()
	// The match stores findings per distinct inventory; per-host findings
	// with their risk come from a refresh (analytics/refresh). OSV-Scanner's
	// output is per host, so the comparable figure includes the refresh
	// and reading every host's findings once.
	t1 = time.Now()
	if _, err := (&refresh.Job{Store: st, Log: quiet(log)}).Run(ctx, refresh.Full); err != nil {
		return err
	}
	fanned, err := walkFindings(ctx, st)
	if err != nil {
		return err
	}
	fanD := time.Since(t1)
	log.Info("patchgrid fleet match done", "hosts", cfg.PeerFleet, "match", matchD.Round(time.Millisecond),
		"read_all_host_findings", fanD.Round(time.Millisecond), "host_findings", fanned, "ingest", ingD.Round(time.Millisecond))

	pgFindings := make([]map[pair]string, len(sample))
	for k, i := range sample {
		rows, err := risk.Findings(ctx, st, risk.Filter{HostID: fleet.Endpoints[i].HostID}, nil)
		if err != nil {
			return err
		}
		t, err := export.ReadTable(rows, 0)
		if err != nil {
			return err
		}
		pc, ac, vc, fc := t.Column("package"), t.Column("advisory_id"), t.Column("installed_version"), t.Column("fixed_version")
		m := map[pair]string{}
		for _, r := range t.Rows {
			m[pair{fmt.Sprint(r[pc]), fmt.Sprint(r[ac])}] = fmt.Sprintf("%v (fixed %v)", r[vc], r[fc])
		}
		pgFindings[k] = m
	}

	agree := compareFindings(osvFindings, pgFindings, fleet, sample, last)
	for k, v := range agree {
		out.Info[k] = v
	}
	out.Info["sampled_hosts"] = len(sample)
	out.Info["fleet_hosts"] = cfg.PeerFleet
	out.Info["osv_db"] = "Debian (debian12-changelog-derived-osv.zip) and Go (go-vulndb-osv.tar.gz, repacked flat)"
	out.Metrics = append(out.Metrics,
		Metric{Name: "osv_scanner_hosts_per_s", Value: osvRate, Unit: "hosts/s", Better: "higher",
			Note: fmt.Sprintf("%d hosts, %d processes in parallel, max RSS %.0f MB per process, %.1f CPU s per host", len(sample), cfg.PeerProcs, maxRSS, cpu/float64(len(sample)))},
		ratio(Metric{Name: "patchgrid fleet match hosts/s (same fleet)", Value: pgRate, Unit: "hosts/s", Better: "higher",
			Note: fmt.Sprintf("%d hosts × %d days; full match %.1fs (ingest via in-process Kafka %.1fs not included)", cfg.PeerFleet, peerDays, matchD.Seconds(), ingD.Seconds())},
			"peer: OSV-Scanner v2.5.0 offline", osvRate),
		ratio(Metric{Name: "patchgrid match + read every host's findings, hosts/s", Value: float64(cfg.PeerFleet) / (matchD + fanD).Seconds(), Unit: "hosts/s", Better: "higher",
			Note: fmt.Sprintf("full refresh, then %d host findings read through risk.Findings, in %.1fs", fanned, fanD.Seconds())},
			"peer: OSV-Scanner v2.5.0 offline", osvRate),
		ratio(Metric{Name: "patchgrid ingest+match+read hosts/s (same fleet)", Value: float64(cfg.PeerFleet) / (ingD + matchD + fanD).Seconds(), Unit: "hosts/s", Better: "higher",
			Note: fmt.Sprintf("all %d days of scans published and consumed", peerDays)},
			"peer: OSV-Scanner v2.5.0 offline", osvRate),
		ratio(Metric{Name: "findings agreement", Value: float64(agree["pairs_both"].(int)), Unit: "pairs", Better: "higher",
			Note: fmt.Sprintf("%d only in OSV-Scanner, %d only in patchgrid", agree["pairs_osv_only"], agree["pairs_patchgrid_only"])},
			"peer: union of (host, package, advisory) pairs", float64(agree["pairs_union"].(int))),
	)
	return nil
}

type pair struct{ pkg, id string }

func walkFindings(ctx context.Context, st store.Store) (int64, error) {
	rows, err := risk.Findings(ctx, st, risk.Filter{}, nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

// compareFindings counts (host, package, advisory) agreement and lists each
// distinct difference once, with how many sampled hosts show it.
func compareFindings(osv, pg []map[pair]string, fleet *simulate.Fleet, sample []int, day int) map[string]any {
	type diffKey struct{ side, pkg, id, installed string }
	diffs := map[diffKey]int{}
	both, osvOnly, pgOnly := 0, 0, 0
	for k := range sample {
		installed := map[string]string{}
		for _, p := range fleet.PackagesOn(sample[k], day) {
			installed[p.Name] = p.Version
		}
		for p := range osv[k] {
			if _, ok := pg[k][p]; ok {
				both++
			} else {
				osvOnly++
				diffs[diffKey{"OSV-Scanner only", p.pkg, p.id, installed[p.pkg]}]++
			}
		}
		for p, v := range pg[k] {
			if _, ok := osv[k][p]; !ok {
				pgOnly++
				diffs[diffKey{"patchgrid only", p.pkg, p.id, v}]++
			}
		}
	}
	list := make([]map[string]any, 0, len(diffs))
	for d, n := range diffs {
		list = append(list, map[string]any{"side": d.side, "package": d.pkg, "advisory": d.id, "installed": d.installed, "hosts": n,
			"explanation": "unexplained by the harness: see the notes in bench/RESULTS.md"})
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a["package"] != b["package"] {
			return a["package"].(string) < b["package"].(string)
		}
		return a["advisory"].(string) < b["advisory"].(string)
	})
	const maxListed = 200
	listed := list
	if len(listed) > maxListed {
		listed = listed[:maxListed]
	}
	return map[string]any{"pairs_both": both, "pairs_osv_only": osvOnly, "pairs_patchgrid_only": pgOnly,
		"pairs_union": both + osvOnly + pgOnly, "distinct_differences": len(list), "differences": listed}
}

// buildOSVDB lays out the local database OSV-Scanner v2.5.0 reads:
// DIR/osv-scalibr/<Ecosystem>/all.zip, each a flat zip of OSV JSON.
func buildOSVDB(cfg Config, dir string) error {
	deb := filepath.Join(dir, "osv-scalibr", "Debian")
	if err := os.MkdirAll(deb, 0o755); err != nil {
		return err
	}
	src, err := os.ReadFile(filepath.Join(cfg.Shared, "advisories", "debian12-changelog-derived-osv.zip"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(deb, "all.zip"), src, 0o644); err != nil {
		return err
	}
	goDir := filepath.Join(dir, "osv-scalibr", "Go")
	if err := os.MkdirAll(goDir, 0o755); err != nil {
		return err
	}
	return repackFlat(filepath.Join(cfg.Shared, "advisories", "go-vulndb-osv.tar.gz"), filepath.Join(goDir, "all.zip"))
}

func repackFlat(tgz, dst string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	g, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", tgz, err)
	}
	o, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer o.Close()
	z := zip.NewWriter(o)
	tr := tar.NewReader(g)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tgz, err)
		}
		if h.Typeflag != tar.TypeReg || !strings.HasSuffix(h.Name, ".json") {
			continue
		}
		w, err := z.Create(filepath.Base(h.Name))
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, tr); err != nil {
			return err
		}
	}
	if err := z.Close(); err != nil {
		return err
	}
	return o.Close()
}

// writeDpkgRoot writes a host's package list as a dpkg status file under
// root/var/lib/dpkg/status, with a Debian 12 os-release beside it.
func writeDpkgRoot(root string, pkgs []inventory.Package) error {
	if err := os.MkdirAll(filepath.Join(root, "var", "lib", "dpkg"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		return err
	}
	osRelease := "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n"
	if err := os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte(osRelease), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	for _, p := range pkgs {
		fmt.Fprintf(&b, "Package: %s\nStatus: install ok installed\n", p.Name)
		if p.Arch != "" {
			fmt.Fprintf(&b, "Architecture: %s\n", p.Arch)
		}
		if p.SourceName != "" && (p.SourceName != p.Name || (p.SourceVersion != "" && p.SourceVersion != p.Version)) {
			if p.SourceVersion != "" && p.SourceVersion != p.Version {
				fmt.Fprintf(&b, "Source: %s (%s)\n", p.SourceName, p.SourceVersion)
			} else {
				fmt.Fprintf(&b, "Source: %s\n", p.SourceName)
			}
		}
		fmt.Fprintf(&b, "Version: %s\n\n", p.Version)
	}
	return os.WriteFile(filepath.Join(root, "var", "lib", "dpkg", "status"), []byte(b.String()), 0o644)
}

// runOSVScanner scans one host root offline and returns its (package,
// advisory) findings, the process's peak RSS (MB) and CPU seconds.
func runOSVScanner(ctx context.Context, bin, dbDir, root string) (map[pair]string, float64, float64, error) {
	cmd := exec.CommandContext(ctx, bin, "scan", "source", "--offline", "--format", "json", "--local-db-path", dbDir,
		"-L", "dpkg-status:"+filepath.Join(root, "var", "lib", "dpkg", "status"))
	cmd.Dir = root
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var rss, cpu float64
	if ps := cmd.ProcessState; ps != nil {
		cpu = (ps.UserTime() + ps.SystemTime()).Seconds()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			rss = float64(ru.Maxrss) / 1024
		}
		// Exit code 1 means "vulnerabilities found".
		if ps.ExitCode() == 1 {
			err = nil
		}
	}
	if err != nil {
		return nil, rss, cpu, fmt.Errorf("%s: %w: %s", root, err, lastLines(stderr.String(), 5))
	}
	var res struct {
		Results []struct {
			Packages []struct {
				Package struct {
					Name          string `json:"name"` // the source package for Debian
					OSPackageName string `json:"os_package_name"`
					Version       string `json:"version"`
				} `json:"package"`
				Vulnerabilities []struct {
					ID string `json:"id"`
				} `json:"vulnerabilities"`
			} `json:"packages"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
		return nil, rss, cpu, fmt.Errorf("%s: osv-scanner output: %w", root, err)
	}
	m := map[pair]string{}
	for _, r := range res.Results {
		for _, p := range r.Packages {
			// patchgrid reports the installed (binary) package.
			name := p.Package.OSPackageName
			if name == "" {
				name = p.Package.Name
			}
			for _, v := range p.Vulnerabilities {
				m[pair{name, v.ID}] = p.Package.Version
			}
		}
	}
	return m, rss, cpu, nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " / ")
}
