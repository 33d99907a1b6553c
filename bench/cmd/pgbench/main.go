// Command pgbench measures patchgrid end to end, each figure beside its
// ceiling (the same work with the layer under test removed) or a peer
// (OSV-Scanner) measured in the same run: on a noisy shared machine only
// ratios taken minutes apart mean anything.
//
// Every step runs in a child process of its own (pgbench -step NAME), so a
// crash or a hang fails that step only, and the kernel's rusage gives each
// step's CPU time and peak RSS. Results go to bench/results/<date>-<machine>.json
// and a table appended to bench/RESULTS.md; history is never overwritten.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config is what every step receives (as JSON, from the parent).
type Config struct {
	Quick       bool   `json:"quick"`
	Endpoints   []int  `json:"endpoints"`    // fleet sizes of the matching steps
	E2EHosts    int    `json:"e2e_hosts"`    // endpoints of the Kafka → ClickHouse step
	KPIHosts    int    `json:"kpi_hosts"`    // endpoints of the KPI fleet (replicated from KPIBase)
	KPIBase     int    `json:"kpi_base"`     // endpoints of the KPI fleet simulated through the pipeline
	KPIDays     int    `json:"kpi_days"`     // simulated days of the KPI fleet
	ExportHosts int    `json:"export_hosts"` // endpoints of the export fixture (findings grow ~5,000 per host)
	Days        int    `json:"days"`         // simulated days (day 0 full, the rest incremental)
	Shared      string `json:"shared"`       // ../shared/data
	Work        string `json:"work"`         // scratch directory of this run
	RunID       string `json:"run_id"`       // names databases and topics
	ClickHouse  string `json:"clickhouse"`   // server host:port ("" when absent)
	Kafka       string `json:"kafka"`        // broker host:port ("" when absent)
	CHDBLib     string `json:"chdb_lib"`     // libchdb.so
	RunDir      string `json:"run_dir"`      // scripts/services.sh's PID files
	OSVScanner  string `json:"osv_scanner"`  // peer binary ("" when it could not be built)
	PeerFleet   int    `json:"peer_fleet"`   // endpoints of the peer comparison fleet
	PeerSample  int    `json:"peer_sample"`  // hosts OSV-Scanner scans
	PeerProcs   int    `json:"peer_procs"`   // OSV-Scanner processes in parallel
	Reps        int    `json:"reps"`         // repetitions of latency measurements
	Arg         string `json:"arg,omitempty"`
}

func main() {
	os.Exit(run())
}

func run() int {
	var (
		quick     = flag.Bool("quick", false, "smoke run (under 2 minutes): tiny fleets, Debian feed only, few repetitions; asserts nothing about speed")
		endpoints = flag.String("endpoints", "", "comma-separated fleet sizes for the matching steps (default 10000,100000; quick 200)")
		out       = flag.String("out", "bench/results", "directory of the JSON results")
		md        = flag.String("md", "bench/RESULTS.md", "markdown file that opens with the current table (latest figure per step)")
		regen     = flag.Bool("regen", false, "only rewrite -md's current table from the results in -out, running nothing")
		shared    = flag.String("shared", "../shared/data", "the shared test corpus")
		only      = flag.String("only", "", "comma-separated step names (prefixes) to run; default all")
		e2eHosts  = flag.Int("e2e-hosts", 0, "endpoints of the ingest_e2e step (default 5000; quick 100)")
		noSvc     = flag.Bool("no-services", false, "do not start ClickHouse/Kafka (steps that need them are recorded as skipped)")
		timeout   = flag.Duration("step-timeout", 20*time.Minute, "a step running longer is killed and recorded as failed")
		maxRSS    = flag.Int("step-max-rss", 6000, "a step whose RSS passes this many MB is killed and recorded as failed (0: no limit)")
		step      = flag.String("step", "", "internal: run one step in this process")
		cfgJSON   = flag.String("config", "", "internal: the step's config as JSON")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *step != "" {
		var cfg Config
		if err := json.Unmarshal([]byte(*cfgJSON), &cfg); err != nil {
			fmt.Fprintf(os.Stderr, "pgbench: -config: %v\n", err)
			return 2
		}
		return runChild(ctx, *step, cfg, log.With("step", *step))
	}

	if *regen {
		table, err := currentTable(*out)
		if err == nil {
			err = writeResultsMD(*md, table)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "pgbench -regen: %v\n", err)
			return 1
		}
		return 0
	}

	sizes, err := parseSizes(*endpoints, *quick)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgbench: -endpoints: %v\n", err)
		return 2
	}
	sharedAbs, err := filepath.Abs(*shared)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgbench: %v\n", err)
		return 2
	}
	if fi, err := os.Stat(sharedAbs); err != nil || !fi.IsDir() {
		fmt.Fprintf(os.Stderr, "pgbench: shared corpus %s not found (-shared)\n", sharedAbs)
		return 2
	}
	o := orchestrator{
		log: log, quick: *quick, sizes: sizes, shared: sharedAbs, outDir: *out, mdPath: *md,
		only: splitList(*only), services: !*noSvc, stepTimeout: *timeout, maxRSSMB: *maxRSS, e2eHosts: *e2eHosts,
	}
	if *e2eHosts < 0 {
		fmt.Fprintf(os.Stderr, "pgbench: -e2e-hosts %d: want a positive endpoint count\n", *e2eHosts)
		return 2
	}
	if err := o.run(ctx); err != nil {
		log.Error("pgbench failed", "err", err)
		return 1
	}
	return 0
}

func parseSizes(s string, quick bool) ([]int, error) {
	if s == "" {
		if quick {
			return []int{200}, nil
		}
		return []int{10000, 100000}, nil
	}
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive endpoint count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
