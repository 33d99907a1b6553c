package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/ingest/outcomes"
	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/outcome"
)

func runIngest(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	kf := addKafkaFlags(fs, env)
	var (
		brokers     = fs.String("kafka-brokers", "127.0.0.1:9092", "comma-separated Kafka brokers")
		outcomesF   = fs.Bool("outcomes", false, "consume deployment outcomes (topic "+outcome.Topic+", group "+outcomes.DefaultGroupID+") instead of scans")
		topic       = fs.String("topic", consumer.DefaultTopic, "Kafka topic of scans (with --outcomes: of outcomes, default "+outcome.Topic+")")
		dlq         = fs.String("dlq-topic", "", "dead-letter topic (default <topic>.dlq)")
		group       = fs.String("group", consumer.DefaultGroupID, "consumer group; instances of one group share the partitions (with --outcomes default "+outcomes.DefaultGroupID+")")
		partitions  = fs.Int("create-topic-partitions", 0, "create the topic and the dead-letter topic with this many partitions if missing (0: expect them to exist)")
		batchRows   = fs.Int("batch-rows", 100000, "insert when a batch holds this many rows (outcomes: messages)")
		batchBytes  = fs.Int("batch-bytes", 32<<20, "insert when a batch holds about this many bytes of row data")
		flushEvery  = fs.Duration("flush-interval", time.Second, "insert a batch at the latest this long after its first message")
		knownHashes = fs.Int("known-hashes", 200000, "inventory hashes remembered as stored (their packages are not inserted again)")
		drain       = fs.Bool("drain", false, "exit once the group has committed everything the topic held at start")
		migrate     = fs.Bool("migrate", true, "apply schema migrations before consuming")
		metricsAddr = fs.String("metrics-addr", "127.0.0.1:9464", "serve Prometheus metrics on http://ADDR/metrics ('' disables)")
	)
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "patchgrid ingest: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	kconn, err := kf.config()
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid ingest: %v\n", err)
		return exitUsage
	}
	if *outcomesF {
		// The scan defaults do not apply to outcomes; explicit flags do.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["topic"] {
			*topic = outcome.Topic
		}
		if !set["group"] {
			*group = outcomes.DefaultGroupID
		}
	}
	log := env.logger(nil)
	set := metrics.NewSet()
	cfg := consumer.Config{
		Brokers: splitList(*brokers), Kafka: kconn, Topic: *topic, DLQTopic: *dlq, GroupID: *group,
		BatchRows: *batchRows, BatchBytes: *batchBytes, FlushInterval: *flushEvery, KnownHashes: *knownHashes,
		Drain: *drain, Logger: log, Metrics: set,
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid ingest: %v\n", err)
		return exitUsage
	}
	if *partitions > 0 {
		dlqTopic := *dlq
		if dlqTopic == "" {
			dlqTopic = *topic + ".dlq"
		}
		for _, t := range []string{*topic, dlqTopic} {
			if err := publish.EnsureTopicWith(ctx, kconn, cfg.Brokers, t, *partitions); err != nil {
				fmt.Fprintf(env.stderr, "patchgrid ingest: %v\n", err)
				return exitFailure
			}
		}
	}
	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid ingest: %v\n", err)
		return exitFailure
	}
	defer st.Close()
	if *migrate {
		if _, err := schemas.Migrate(ctx, st, log); err != nil {
			fmt.Fprintf(env.stderr, "patchgrid ingest: %v\n", err)
			return exitFailure
		}
	}
	if *metricsAddr != "" {
		stop, err := serveMetrics(*metricsAddr, set, log)
		if err != nil {
			fmt.Fprintf(env.stderr, "patchgrid ingest: %v\n", err)
			return exitFailure
		}
		defer stop()
	}
	if *outcomesF {
		_, err = outcomes.Run(ctx, cfg, st)
	} else {
		_, err = consumer.Run(ctx, cfg, st)
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid ingest: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// serveMetrics serves set in Prometheus text format until stop is called.
func serveMetrics(addr string, set *metrics.Set, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		set.WritePrometheus(w)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
