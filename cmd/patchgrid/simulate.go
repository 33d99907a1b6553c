package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/scanner/simulate"
)

func runSimulate(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	kf := addKafkaFlags(fs, env)
	var (
		endpoints   = fs.Int("endpoints", 10000, "number of simulated endpoints")
		days        = fs.Int("days", 30, "days of timeline")
		scansPerDay = fs.Int("scans-per-day", 1, "scans per host per day (all but the first of a day are heartbeats)")
		seed        = fs.Uint64("seed", 1, "random seed: the same seed and inputs give a byte-identical stream")
		start       = fs.String("start", "2026-01-01", "date of day 0 (UTC, YYYY-MM-DD)")
		invDir      = fs.String("inventories", filepath.Join("..", "shared", "data", "inventories"), "directory of real inventories endpoints start from")
		upgrades    = fs.String("upgrades", "", "upgrade paths TSV (package, candidate, installed); default <inventories>/"+simulate.UpgradesFile)
		waves       = fs.Int("waves", 4, "fix releases the upgrade paths are split into")
		failRate    = fs.Float64("failure-rate", 0.05, "chance that a host's deployment of a wave fails")
		rollback    = fs.Float64("rollback-share", 0.4, "share of failures that install and are rolled back (a regression)")
		driftRate   = fs.Float64("drift-rate", 0.002, "chance per host and day that one package is removed out of band")
		rate        = fs.Float64("rate", 0, "messages per second, with ±20% jitter (0: unlimited)")
		brokers     = fs.String("kafka-brokers", "127.0.0.1:9092", "comma-separated Kafka brokers")
		topic       = fs.String("topic", publish.DefaultTopic, "Kafka topic for scans")
		partitions  = fs.Int("create-topic-partitions", 0, "create the topic with this many partitions if missing (0: expect it to exist)")
		dryRun      = fs.Bool("dry-run", false, "do not publish; write the length-prefixed stream to --out")
		out         = fs.String("out", "", "with --dry-run: file for the stream (default: discard, print only the summary)")
	)
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "patchgrid simulate: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	day0, err := time.Parse("2006-01-02", *start)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid simulate: --start: %v\n", err)
		return exitUsage
	}
	log := env.logger(nil)
	cfg := simulate.Config{
		Endpoints: *endpoints, Days: *days, ScansPerDay: *scansPerDay, Seed: *seed, Start: day0,
		Waves: *waves, FailureRate: orNegative(*failRate), RollbackShare: *rollback, DriftRate: orNegative(*driftRate),
		Logger: log,
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid simulate: %v\n", err)
		return exitUsage
	}
	if *upgrades == "" {
		*upgrades = filepath.Join(*invDir, simulate.UpgradesFile)
	}
	bases, err := simulate.LoadBases(ctx, *invDir, simulate.ReadInventory, log)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid simulate: %v\n", err)
		return exitFailure
	}
	ups, err := simulate.LoadUpgrades(*upgrades)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid simulate: %v\n", err)
		return exitFailure
	}
	fleet, err := simulate.NewFleet(cfg, bases, ups)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid simulate: %v\n", err)
		return exitFailure
	}

	var sink simulate.Sink
	var closeSink func() error
	if *dryRun {
		w := io.Discard
		closeSink = func() error { return nil }
		if *out != "" {
			f, err := os.Create(*out)
			if err != nil {
				fmt.Fprintf(env.stderr, "patchgrid simulate: %v\n", err)
				return exitFailure
			}
			bw := bufio.NewWriterSize(f, 1<<20)
			w = bw
			closeSink = func() error {
				if err := bw.Flush(); err != nil {
					f.Close()
					return err
				}
				return f.Close()
			}
		}
		sink = simulate.WriterSink{W: w}
	} else {
		brokerList := splitList(*brokers)
		kconn, err := kf.config()
		if err != nil {
			fmt.Fprintf(env.stderr, "patchgrid simulate: %v\n", err)
			return exitUsage
		}
		if *partitions > 0 {
			if err := publish.EnsureTopicWith(ctx, kconn, brokerList, *topic, *partitions); err != nil {
				fmt.Fprintf(env.stderr, "patchgrid simulate: %v\n", err)
				return exitFailure
			}
		}
		p, err := publish.New(publish.Config{Brokers: brokerList, Topic: *topic, Conn: kconn})
		if err != nil {
			fmt.Fprintf(env.stderr, "patchgrid simulate: %v\n", err)
			return exitUsage
		}
		sink, closeSink = simulate.PublishSink{P: p}, p.Close
	}
	sum, runErr := fleet.Run(ctx, sink, simulate.RunOptions{Rate: *rate})
	if err := closeSink(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		fmt.Fprintf(env.stderr, "patchgrid simulate: %v\n", runErr)
		return exitFailure
	}
	fmt.Fprintf(env.stdout, "%d messages (%d full scans, %d heartbeats, %d package sets), %d bytes\n",
		sum.Messages, sum.FullScans, sum.Heartbeats, sum.PackageSets, sum.Bytes)
	return exitOK
}

// orNegative maps an explicit 0 to the config's "none" (negative): in
// simulate.Config a zero value means "default".
func orNegative(p float64) float64 {
	if p == 0 {
		return -1
	}
	return p
}
