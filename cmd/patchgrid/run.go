package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/patchgrid/patchgrid/analytics/failon"
	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/analytics/progress"
	"github.com/patchgrid/patchgrid/analytics/refresh"
	"github.com/patchgrid/patchgrid/analytics/report"
	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/ingest/feeds"
	scaninv "github.com/patchgrid/patchgrid/scanner/inventory"
	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/outcome"
)

// runConfig is everything `patchgrid run` needs, from flags.
type runConfig struct {
	store       *storeFlags
	kafka       *kafkaFlags
	feeds       listFlag
	inventories string
	root        string
	endpoints   int
	days        int
	seed        uint64
	brokers     string
	topic       string
	partitions  int
	top         int
	failOn      failon.Threshold
	scope       string
	staleAfter  time.Duration
	// staleAfterSet: --stale-after was given, so the KPI views take it too
	// (kpi_settings); otherwise they keep the limit recorded there.
	staleAfterSet bool
	skipLocal     bool
	cacheDir      string
	plan          *strings.Builder // the plan stage's summary (samplePlan), printed after the report
	// Simulated automation (automate.go): how many due actions of the new
	// plan it plays (0: none), and the patch loop it prints after the plan.
	automate     int
	outcomeTopic string
	loop         *strings.Builder
}

// runRun is the main job on one machine: migrate the store, load feeds,
// scan this machine, simulate a fleet, carry every scan through Kafka into
// ClickHouse, match, and report.
func runRun(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	cfg := runConfig{store: addStoreFlags(fs, env), kafka: addKafkaFlags(fs, env), plan: new(strings.Builder), loop: new(strings.Builder)}
	fs.Var(&cfg.feeds, "feeds", "advisory feed locations: directory, file or URL (repeatable; default: advisories, kev and epss of $PATCHGRID_SHARED_DATA or ~/.local/share/patchgrid/shared when it exists, else the official feed URLs)")
	fs.StringVar(&cfg.inventories, "inventories", "", "directory of real inventories the simulated endpoints start from (default: inventories of $PATCHGRID_SHARED_DATA or ~/.local/share/patchgrid/shared)")
	fs.StringVar(&cfg.root, "root", "/", "filesystem root of the local scan")
	fs.IntVar(&cfg.endpoints, "endpoints", 10000, "simulated endpoints (0: only this machine)")
	fs.IntVar(&cfg.days, "days", 7, "simulated days of scans (one full scan or heartbeat per endpoint and day)")
	fs.Uint64Var(&cfg.seed, "seed", 1, "simulation seed: the same seed gives the same fleet")
	fs.StringVar(&cfg.brokers, "kafka-brokers", "", "Kafka bootstrap brokers (comma-separated); empty starts an in-process broker")
	fs.StringVar(&cfg.topic, "topic", publish.DefaultTopic, "scan topic")
	fs.IntVar(&cfg.partitions, "partitions", 4, "partitions when the topic is created")
	fs.IntVar(&cfg.top, "top", 10, "how many top risks to list")
	fs.Var(&cfg.failOn, "fail-on", failon.Usage()+"; judged on the open findings of the hosts this run scanned (see --scope)")
	fs.DurationVar(&cfg.staleAfter, "stale-after", match.DefaultStaleAfter, "a host whose last scan is older than this is reported stale (never patched or compliant)")
	fs.StringVar(&cfg.scope, "scope", "run", "what --fail-on judges: run (the hosts this run scanned) or fleet (every host in the data dir)")
	fs.StringVar(&cfg.cacheDir, "cache-dir", defaultCacheDir(env), "where downloaded feeds are cached")
	fs.BoolVar(&cfg.skipLocal, "skip-local", false, "do not scan this machine")
	fs.IntVar(&cfg.automate, "automate-actions", 2000, "simulated automation: play at most this many due actions of the new plan on the simulated fleet (outcomes, rescans, verification); 0: none")
	fs.StringVar(&cfg.outcomeTopic, "outcome-topic", outcome.Topic, "deployment outcome topic of the simulated automation")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	fs.Visit(func(f *flag.Flag) { cfg.staleAfterSet = cfg.staleAfterSet || f.Name == "stale-after" })
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "patchgrid run: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if cfg.scope != "run" && cfg.scope != "fleet" {
		fmt.Fprintf(env.stderr, "patchgrid run: --scope %q: want run or fleet\n", cfg.scope)
		return exitUsage
	}
	if cfg.endpoints < 0 || cfg.days < 1 {
		fmt.Fprintf(env.stderr, "patchgrid run: -endpoints must be >= 0 and -days >= 1\n")
		return exitUsage
	}
	log := env.logger(nil)
	sum, err := pipeline(ctx, env, cfg, log)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid run: %v\n", err)
		return exitFailure
	}
	if err := report.Write(env.stdout, sum); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid run: write summary: %v\n", err)
		return exitFailure
	}
	fmt.Fprint(env.stdout, cfg.plan.String())
	fmt.Fprint(env.stdout, cfg.loop.String())
	if cfg.failOn.Enabled() && failOnTripped(cfg, sum) {
		return exitFindings
	}
	return exitOK
}

// failOnTripped applies --fail-on to the open findings of the hosts this
// run scanned, or of the whole fleet with --scope fleet.
func failOnTripped(cfg runConfig, sum *report.Summary) bool {
	counts := sum.BySeverity
	if cfg.scope != "fleet" {
		counts = sum.ScannedBySeverity
	}
	for _, c := range counts {
		if c.Findings > 0 && cfg.failOn.Trips(c.Severity) {
			return true
		}
	}
	return false
}

func pipeline(ctx context.Context, env *cliEnv, cfg runConfig, log *slog.Logger) (*report.Summary, error) {
	total := 7
	if cfg.endpoints > 0 && cfg.automate > 0 {
		total++ // automate (automate.go)
	}
	stages := newStages(log, total)

	stages.begin("store")
	st, err := cfg.store.open(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if _, err := schemas.Migrate(ctx, st, log); err != nil {
		return nil, err
	}
	if err := schemas.RequireAnalytics(ctx, st); err != nil {
		return nil, err
	}
	stages.end("backend", st.Backend())

	stages.begin("feeds")
	locations := cfg.feeds
	if len(locations) == 0 {
		locations = defaultFeedLocations()
	}
	// Per-record problems are counted here and listed by `patchgrid feeds
	// load`; hundreds of them would bury the run's own progress.
	feedLog := env.logger(slog.LevelError)
	// Progress (issue 16): feedLog hides the loader's records/s lines, so
	// a long load still logs that it is alive and for how long.
	feedMeter := progress.Start(progress.Config{Log: log, Stage: "feeds", Unit: "locations", Total: int64(len(locations))})
	sums, errs := loadFeeds(ctx, st, cfg.cacheDir, locations, feedLog)
	feedMeter.Stop()
	// Audit trail: what was loaded is recorded even when a location failed.
	if err := recordFeedLoads(ctx, st, env, sums); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("load feeds: %w", err)
	}
	var records, changed, skipped, rangesSkipped uint64
	for _, s := range sums {
		records += s.Records
		changed += s.Loaded + s.Updated
		skipped += s.Skipped
		rangesSkipped += s.RangesSkipped
	}
	stages.end("locations", len(locations), "records", records, "new_or_changed", changed,
		"skipped_records", skipped, "skipped_ranges", rangesSkipped)
	if skipped+rangesSkipped > 0 {
		log.Warn("some feed records or ranges were skipped; `patchgrid feeds load --from LOCATION` lists each with its reason", "locations", strings.Join(locations, ","))
	}

	stages.begin("kafka")
	kconn, err := cfg.kafka.config()
	if err != nil {
		return nil, err
	}
	if kconn.Secure() && cfg.brokers == "" {
		return nil, errors.New("-kafka-tls and -kafka-sasl-* need -kafka-brokers: the in-process broker is plaintext")
	}
	broker, err := startBroker(cfg, log)
	if err != nil {
		return nil, err
	}
	defer broker.close()
	brokers := broker.addrs
	if err := publish.EnsureTopicWith(ctx, kconn, brokers, cfg.topic, cfg.partitions); err != nil {
		return nil, err
	}
	if err := publish.EnsureTopicWith(ctx, kconn, brokers, cfg.topic+".dlq", 1); err != nil {
		return nil, err
	}
	prod, err := publish.New(publish.Config{Brokers: brokers, Topic: cfg.topic, Conn: kconn})
	if err != nil {
		return nil, err
	}
	stages.end("brokers", strings.Join(brokers, ","), "topic", cfg.topic)

	stages.begin("publish")
	var localHost string
	if !cfg.skipLocal {
		scan, err := scaninv.Collect(ctx, scaninv.Config{Root: cfg.root})
		if err != nil {
			prod.Close()
			return nil, fmt.Errorf("scan %s: %w", cfg.root, err)
		}
		for _, w := range scan.Warnings {
			log.Warn("local scan", "warning", w)
		}
		localHost = scan.HostID
		if err := prod.Publish(ctx, scan); err != nil {
			prod.Close()
			return nil, fmt.Errorf("publish local scan: %w", err)
		}
		log.Info("local scan published", "host", scan.Hostname, "os", scan.OS.Ecosystem, "packages", len(scan.Packages))
	}
	var simSum simulate.Summary
	var simHosts []string
	var fleet *simulate.Fleet
	if cfg.endpoints > 0 {
		simSum, simHosts, fleet, err = simulateFleet(ctx, cfg, prod, log)
		if err != nil {
			prod.Close()
			return nil, err
		}
	}
	if err := prod.Close(); err != nil {
		return nil, fmt.Errorf("flush scans to Kafka: %w", err)
	}
	stages.end("messages", simSum.Messages, "full_scans", simSum.FullScans, "heartbeats", simSum.Heartbeats, "bytes", simSum.Bytes)

	stages.begin("ingest")
	ist, err := consumer.Run(ctx, consumer.Config{Brokers: brokers, Kafka: kconn, Topic: cfg.topic, Drain: true, Logger: log}, st)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	broker.release(consumer.DefaultGroupID, cfg.topic)
	stages.end("consumed", ist.Consumed, "scan_rows", ist.ScanRows, "package_rows", ist.PackageRows, "dead_lettered", ist.DeadLettered)

	stages.begin("match")
	job := &match.Job{Store: st, Log: log}
	mst, err := job.Run(ctx, match.Incremental)
	if err != nil {
		return nil, err
	}
	stages.end("versions", mst.Versions, "advisories", mst.Advisories, "inventories", mst.Inventories, "version_findings", mst.VersionFindings)

	stages.begin("refresh")
	if cfg.staleAfterSet {
		if err := kpi.SetStaleAfter(ctx, st, cfg.staleAfter, time.Now()); err != nil {
			return nil, err
		}
	}
	// With the automation stage to come, which refreshes after its
	// rescans, this refresh leaves the KPI snapshots to that one: only
	// finding_risk is read in between (the summary, the plan).
	automate := fleet != nil && cfg.automate > 0
	refreshRecorded := func(deferSnapshots bool) (refresh.Stats, error) {
		rst, err := (&refresh.Job{Store: st, Log: log, DeferSnapshots: deferSnapshots}).Run(ctx, refresh.Incremental)
		if err != nil {
			return rst, err
		}
		return rst, recordRefresh(ctx, st, env, rst)
	}
	rst, err := refreshRecorded(automate)
	if err != nil {
		return nil, err
	}
	stages.end("hosts", rst.Hosts, "advisories", rst.Advisories, "exposed_hosts", rst.ExposedHosts, "exposure_rows", rst.Exposures, "segment_rows", rst.Segments)

	sum, err := report.Build(ctx, st, report.Options{Top: cfg.top, LocalHost: localHost, StaleAfter: cfg.staleAfter})
	if err != nil {
		return nil, err
	}
	sum.DeadLettered = ist.DeadLettered
	if localHost != "" {
		sum.Scanned = append(sum.Scanned, localHost)
	}
	sum.Scanned = append(sum.Scanned, simHosts...)
	if cfg.failOn.Enabled() && cfg.scope != "fleet" {
		if sum.ScannedBySeverity, err = report.SeverityOf(ctx, st, sum.Scanned); err != nil {
			return nil, err
		}
	}
	if err := samplePlan(ctx, st, cfg.plan, cfg.top); err != nil {
		return nil, err
	}
	if automate {
		auto := &automation{st: st, fleet: fleet, broker: broker, kconn: kconn, scanTopic: cfg.topic, outcomeTopic: cfg.outcomeTopic,
			partitions: cfg.partitions, maxActions: cfg.automate, log: log}
		stages.begin("automate")
		loop, err := auto.play(ctx)
		if err != nil {
			return nil, err
		}
		if !auto.refreshed {
			// It played nothing: the snapshots the first refresh left.
			if _, err := refreshRecorded(false); err != nil {
				return nil, err
			}
		}
		writeLoop(cfg.loop, loop, auto)
		if loop != nil {
			stages.end("plan", loop.PlanID, "windows", loop.Windows, "played", loop.Played, "outcomes", loop.Outcomes, "rescans", loop.Rescans)
		} else {
			stages.end("plan", "none")
		}
	}
	return sum, nil
}

// simulateFleet publishes cfg.endpoints endpoints over cfg.days days, and
// returns the fleet for the automation stage.
func simulateFleet(ctx context.Context, cfg runConfig, prod *publish.Producer, log *slog.Logger) (simulate.Summary, []string, *simulate.Fleet, error) {
	dir := cfg.inventories
	if dir == "" {
		shared, ok := sharedData()
		if !ok {
			return simulate.Summary{}, nil, nil, errors.New("no --inventories directory given and no shared corpus ($PATCHGRID_SHARED_DATA, ~/.local/share/patchgrid/shared): the simulated endpoints need real inventories to start from (or use --endpoints 0)")
		}
		dir = filepath.Join(shared, "inventories")
	}
	bases, err := simulate.LoadBases(ctx, dir, simulate.ReadInventory, log)
	if err != nil {
		return simulate.Summary{}, nil, nil, err
	}
	var upgrades []simulate.Upgrade
	up := filepath.Join(dir, "dpkg", "debian12-bookworm-host-b.upgrades.tsv")
	if _, err := os.Stat(up); err == nil {
		if upgrades, err = simulate.LoadUpgrades(up); err != nil {
			return simulate.Summary{}, nil, nil, err
		}
	}
	fleet, err := simulate.NewFleet(simulate.Config{
		Endpoints: cfg.endpoints, Days: cfg.days, Seed: cfg.seed, Logger: log,
		// The timeline ends today, so SLA clocks and "open now" are meaningful.
		Start: time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -(cfg.days - 1)),
	}, bases, upgrades)
	if err != nil {
		return simulate.Summary{}, nil, nil, err
	}
	hosts := make([]string, len(fleet.Endpoints))
	for i := range fleet.Endpoints {
		hosts[i] = fleet.Endpoints[i].HostID
	}
	sum, err := fleet.Run(ctx, simulate.PublishSink{P: prod}, simulate.RunOptions{})
	return sum, hosts, fleet, err
}

// runBroker is the run's Kafka: the configured brokers, or an in-process
// one (fake: kfake, which keeps every message in memory).
type runBroker struct {
	addrs []string
	fake  *kfake.Cluster // nil for configured brokers
	log   *slog.Logger
}

// startBroker returns the configured brokers, or starts an in-process one.
// The in-process broker speaks the Kafka protocol, so publish and ingest run
// the same code as against a cluster.
func startBroker(cfg runConfig, log *slog.Logger) (*runBroker, error) {
	if cfg.brokers != "" {
		return &runBroker{addrs: strings.Split(cfg.brokers, ","), log: log}, nil
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, fmt.Errorf("start in-process Kafka broker: %w", err)
	}
	return &runBroker{addrs: c.ListenAddrs(), fake: c, log: log}, nil
}

func (b *runBroker) close() {
	if b.fake != nil {
		b.fake.Close()
	}
}

// release drops from the in-process broker the messages of topic that
// group has committed, as retention would on a real broker, and returns
// the memory they held to the operating system. Committed means stored
// (offsets are committed only after a durable insert), so nothing is lost;
// and the store's refresh that follows is the run's peak of memory, during
// which the Go heap allocates too little to trigger a collection: at `make
// run` size the broker held 447 MB for 250 MB of scans, and the garbage of
// publishing and ingesting them about as much again, both resident through
// every refresh. A configured broker keeps its own retention.
func (b *runBroker) release(group, topic string) {
	if b.fake == nil {
		return
	}
	info := b.fake.GroupInfo(group)
	if info == nil {
		return
	}
	var dropped int64
	for p, c := range info.Commits[topic] {
		if err := b.fake.DeleteRecords(topic, p, c.Offset); err != nil {
			// Only memory is at stake: the run goes on.
			b.log.Warn("in-process broker: dropping consumed messages", "topic", topic, "partition", p, "offset", c.Offset, "err", err)
			continue
		}
		dropped += c.Offset
	}
	debug.FreeOSMemory()
	b.log.Debug("in-process broker: consumed messages dropped", "topic", topic, "group", group, "through_offsets", dropped)
}

// sharedData is the local corpus of feeds and inventories:
// $PATCHGRID_SHARED_DATA, else $XDG_DATA_HOME/patchgrid/shared
// (~/.local/share/patchgrid/shared), when it is a directory. It never
// depends on the working directory; `make run` points PATCHGRID_SHARED_DATA
// at the repository's ../shared/data, and the configuration file can name
// feed locations (key feeds) and inventories (key inventories) instead.
func sharedData() (string, bool) {
	dir := os.Getenv("PATCHGRID_SHARED_DATA")
	if dir == "" {
		base := os.Getenv("XDG_DATA_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", false
			}
			base = filepath.Join(home, ".local", "share")
		}
		dir = filepath.Join(base, "patchgrid", "shared")
	}
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return filepath.Clean(dir), true
	}
	return "", false
}

// defaultFeedLocations is the shared corpus when present, else the official
// URLs (see README "Feeds").
func defaultFeedLocations() []string {
	if shared, ok := sharedData(); ok {
		return []string{filepath.Join(shared, "advisories"), filepath.Join(shared, "kev"), filepath.Join(shared, "epss")}
	}
	return feeds.OnlineURLs(feeds.DefaultOSVEcosystems)
}

// stages logs the pipeline's progress: which stage of how many, and how long
// each took.
type stages struct {
	log     *slog.Logger
	total   int
	n       int
	name    string
	started time.Time
}

func newStages(log *slog.Logger, total int) *stages { return &stages{log: log, total: total} }

func (s *stages) begin(name string) {
	s.n++
	s.name, s.started = name, time.Now()
	s.log.Info(fmt.Sprintf("[%d/%d] %s", s.n, s.total, name))
}

func (s *stages) end(attrs ...any) {
	attrs = append(attrs, "took", time.Since(s.started).Round(time.Millisecond))
	s.log.Info(fmt.Sprintf("[%d/%d] %s done", s.n, s.total, s.name), attrs...)
}
