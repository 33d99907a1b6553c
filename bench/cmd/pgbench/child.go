package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/ingest/feeds"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// stepFunc runs one step in this (child) process.
type stepFunc func(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error

var stepFuncs = map[string]stepFunc{
	"version":    stepVersion,
	"feeds":      stepFeeds,
	"scanner":    stepScanner,
	"ingest_e2e": stepIngestE2E,
	"match":      stepMatch,
	"kpi":        stepKPI,
	"export":     stepExport,
	"api":        stepAPI,
	"plan":       stepPlan,
	"peer_osv":   stepPeerOSV,
	// deployment outcome ingest (issue 13)
	"outcome_ingest": stepOutcomeIngest,
	// `make run` with its defaults, against its ceilings (issue 16)
	"make_run": stepMakeRun,
	// deployment verification and ring gates (issue 13)
	"verify": stepVerify,
}

// runChild runs a step and prints its output as one JSON line on stdout,
// also when it fails (the figures gathered so far are kept).
func runChild(ctx context.Context, name string, cfg Config, log *slog.Logger) int {
	f, ok := stepFuncs[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "pgbench: unknown step %q\n", name)
		return 2
	}
	out := StepOutput{Info: map[string]any{}}
	err := f(ctx, cfg, log, &out)
	code := 0
	if err != nil {
		out.Info["error"] = err.Error()
		log.Error("step failed", "err", err)
		code = 1
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	return code
}

// benchFeedLocations is the corpus the matching steps load: the whole
// shared corpus, or only the Debian feed in a quick run.
func benchFeedLocations(cfg Config) []string {
	deb := filepath.Join(cfg.Shared, "advisories", "debian12-changelog-derived-osv.zip")
	if cfg.Quick {
		return []string{deb}
	}
	return []string{filepath.Join(cfg.Shared, "advisories"), filepath.Join(cfg.Shared, "kev"), filepath.Join(cfg.Shared, "epss")}
}

func openCHDB(ctx context.Context, cfg Config, dir string, log *slog.Logger) (store.Store, error) {
	st, err := store.Open(ctx, store.Config{Backend: "chdb", DataDir: dir, CHDBLib: cfg.CHDBLib, Database: "patchgrid"})
	if err != nil {
		return nil, err
	}
	if _, err := schemas.Migrate(ctx, st, quiet(log)); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// quiet drops info-level chatter of the layers under test.
func quiet(log *slog.Logger) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("step", "child")
}

func versionLookup(eco string) (feed.Comparator, error) { return version.Lookup(eco) }

// loadFeeds loads locations into st and returns the records read.
func loadFeeds(ctx context.Context, st store.Store, locations []string, log *slog.Logger) (uint64, error) {
	// Per-record problems of the corpus are the feeds' business, not the
	// benchmark's: only errors are shown.
	l := &feeds.Loader{Store: st, Lookup: versionLookup,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	var records uint64
	for _, loc := range locations {
		sums, err := l.Load(ctx, loc)
		for _, s := range sums {
			records += s.Records
		}
		if err != nil {
			return records, fmt.Errorf("load %s: %w", loc, err)
		}
	}
	return records, nil
}

// fleetInputs are the simulator's starting points: real inventories and
// the real upgrade paths of host-b.
type fleetInputs struct {
	bases    []simulate.Base
	upgrades []simulate.Upgrade
}

func loadFleetInputs(ctx context.Context, cfg Config, onlyHostB bool, log *slog.Logger) (fleetInputs, error) {
	var in fleetInputs
	dir := filepath.Join(cfg.Shared, "inventories")
	var err error
	if onlyHostB {
		b, rerr := simulate.ReadInventory(ctx, filepath.Join(dir, "dpkg", "debian12-bookworm-host-b.status"))
		if rerr != nil {
			return in, rerr
		}
		b.Name = "debian12-bookworm-host-b.status"
		in.bases = []simulate.Base{b}
	} else if in.bases, err = simulate.LoadBases(ctx, dir, simulate.ReadInventory, quiet(log)); err != nil {
		return in, err
	}
	in.upgrades, err = simulate.LoadUpgrades(filepath.Join(dir, "dpkg", "debian12-bookworm-host-b.upgrades.tsv"))
	return in, err
}

func newFleet(in fleetInputs, endpoints, days int, log *slog.Logger) (*simulate.Fleet, error) {
	return simulate.NewFleet(simulate.Config{
		Endpoints: endpoints, Days: days, Seed: 7, Logger: quiet(log),
		// The timeline ends today so that "open now" and SLA clocks mean something.
		Start: time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -(days - 1)),
	}, in.bases, in.upgrades)
}

// producerConfig is publish's defaults: what the product runs with.
func producerConfig(brokers []string, topic string) publish.Config {
	return publish.Config{Brokers: brokers, Topic: topic}
}

// pausingSink forwards the stream to a producer and stops after the first
// pauseAt messages until resume is closed: the day boundary between the
// full match (day 0) and the incremental one (the days after).
type pausingSink struct {
	next    simulate.Sink
	pauseAt int64
	sent    int64
	paused  chan struct{} // closed when the boundary is reached
	resume  chan struct{}
}

func (s *pausingSink) Send(ctx context.Context, batch []simulate.Message) error {
	if s.sent < s.pauseAt && s.sent+int64(len(batch)) >= s.pauseAt {
		k := s.pauseAt - s.sent
		if k > 0 {
			if err := s.next.Send(ctx, batch[:k]); err != nil {
				return err
			}
		}
		s.sent += k
		batch = batch[k:]
		close(s.paused)
		select {
		case <-s.resume:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if len(batch) == 0 {
		return nil
	}
	s.sent += int64(len(batch))
	return s.next.Send(ctx, batch)
}

// fleetStore is a chDB store holding a simulated fleet carried through an
// in-process Kafka by the real producer and consumer.
type fleetStore struct {
	st      store.Store
	cluster *kfake.Cluster
	brokers []string
	topic   string
	prod    *publish.Producer
	fleet   *simulate.Fleet
}

func (f *fleetStore) close() {
	if f.prod != nil {
		f.prod.Close()
	}
	if f.cluster != nil {
		f.cluster.Close()
	}
}

func startInProcessKafka(ctx context.Context, topic string) (*kfake.Cluster, []string, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, nil, fmt.Errorf("start in-process Kafka: %w", err)
	}
	brokers := c.ListenAddrs()
	for _, t := range []struct {
		name string
		n    int
	}{{topic, 4}, {topic + ".dlq", 1}} {
		if err := publish.EnsureTopic(ctx, brokers, t.name, t.n); err != nil {
			c.Close()
			return nil, nil, err
		}
	}
	return c, brokers, nil
}

// fleetKafka gives a fleet step its topic: on the real broker when one is
// up (disk-backed: an in-process broker holds every message in memory,
// about 1 GB per 10,000 full scans), else in-process. cleanup deletes the
// topics or stops the broker.
func fleetKafka(ctx context.Context, cfg Config, name string, log *slog.Logger) (topic string, brokers []string, cleanup func(), err error) {
	if cfg.Kafka == "" {
		topic = "pgbench.scans"
		c, brokers, err := startInProcessKafka(ctx, topic)
		if err != nil {
			return "", nil, nil, err
		}
		return topic, brokers, c.Close, nil
	}
	topic = "pgbench." + cfg.RunID + "." + name
	brokers = []string{cfg.Kafka}
	cleanup = func() {
		if err := deleteTopics(cfg.Kafka, topic, topic+".dlq"); err != nil {
			log.Warn("delete topics", "topic", topic, "err", err)
		}
	}
	for _, t := range []struct {
		name string
		n    int
	}{{topic, 4}, {topic + ".dlq", 1}} {
		if err := publish.EnsureTopic(ctx, brokers, t.name, t.n); err != nil {
			cleanup()
			return "", nil, nil, err
		}
	}
	return topic, brokers, cleanup, nil
}

func ingest(ctx context.Context, st store.Store, brokers []string, topic string, log *slog.Logger) (consumer.Stats, error) {
	return consumer.Run(ctx, consumer.Config{Brokers: brokers, Topic: topic, GroupID: "pgbench", Drain: true,
		Logger: quiet(log), ProgressInterval: -1}, st)
}

// percentile of sorted durations (nearest rank).
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fixtureDir is the chDB store the KPI and export steps share (the first
// of them builds it).
func fixtureDir(cfg Config) string {
	return filepath.Join(cfg.Work, fmt.Sprintf("kpi-fleet-%d", cfg.KPIHosts))
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
