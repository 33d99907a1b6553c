package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Dead-letter record headers. The record keeps the original key and value.
const (
	HeaderReason    = "patchgrid-dlq-reason"    // inventory.Reason (bad_magic, truncated, invalid, ...)
	HeaderError     = "patchgrid-dlq-error"     // the full error text
	HeaderTopic     = "patchgrid-dlq-topic"     // where the message was consumed from
	HeaderPartition = "patchgrid-dlq-partition" // decimal
	HeaderOffset    = "patchgrid-dlq-offset"    // decimal
	HeaderGroup     = "patchgrid-dlq-group"
)

// drainCheckEvery spaces the group-offset requests of drain mode.
const drainCheckEvery = 300 * time.Millisecond

// Tables written, from schemas/migrations/0001_inventory.sql.
const (
	scansTable    = "scans"
	packagesTable = "inventory_packages"
)

// Stats counts what one Run did.
type Stats struct {
	Consumed           int64 // messages fetched
	DeadLettered       int64
	ScanRows           int64 // rows inserted into scans (redeliveries included)
	PackageRows        int64 // rows inserted into inventory_packages
	SkippedPackageSets int64 // full scans whose package set was already stored
	VersionKeyErrors   int64 // packages stored with v_key ''
	Batches            int64
}

type consumer struct {
	cfg    Config
	log    *slog.Logger
	st     store.Store
	reader *kafka.Reader
	dlq    *kafka.Writer
	m      *consumerMetrics
	rows   *rowBuilder
	dec    inventory.Decoder
	known  *hashLRU
	stats  Stats

	batch batch
}

// batch is what has been fetched since the last commit.
type batch struct {
	msgs      []kafka.Message // every fetched message, dead-lettered ones too
	scans     [][]any
	packages  [][]any
	newHashes map[string]struct{} // package sets inserted by this batch
	bytes     int
	started   time.Time
	badKeys   int
}

func (b *batch) rows() int { return len(b.scans) + len(b.packages) }

func (b *batch) reset() {
	clear(b.msgs)
	b.msgs = b.msgs[:0]
	clear(b.scans)
	b.scans = b.scans[:0]
	clear(b.packages)
	b.packages = b.packages[:0]
	clear(b.newHashes)
	b.bytes, b.badKeys = 0, 0
}

// Run consumes cfg.Topic as a member of cfg.GroupID and loads every scan
// into st until ctx is cancelled (then it flushes and commits what it has,
// within cfg.ShutdownTimeout) or, with cfg.Drain, until the group has
// committed everything the topic held when Run started. It returns an error
// only for failures it cannot retry past (bad config, the topic's metadata
// in drain mode, a closed reader); a broker outage is waited out.
func Run(ctx context.Context, cfg Config, st store.Store) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With("component", "ingest", "topic", cfg.Topic, "group", cfg.GroupID)

	var drainTo map[int]int64
	if cfg.Drain {
		var err error
		if drainTo, err = highWaterMarks(ctx, cfg.Brokers, cfg.Topic); err != nil {
			return Stats{}, err
		}
		log.Info("draining", "high_water_marks", drainTo)
	}

	kafkaLog := log.With("source", "kafka-go")
	c := &consumer{
		cfg: cfg,
		log: log,
		st:  st,
		reader: kafka.NewReader(kafka.ReaderConfig{
			Brokers:          cfg.Brokers,
			GroupID:          cfg.GroupID,
			Topic:            cfg.Topic,
			MinBytes:         1,
			MaxBytes:         16 << 20,
			MaxWait:          cfg.MaxWait,
			StartOffset:      kafka.FirstOffset,
			CommitInterval:   0, // CommitMessages is synchronous: we commit only after inserting
			SessionTimeout:   cfg.SessionTimeout,
			RebalanceTimeout: cfg.RebalanceTimeout,
			ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
				kafkaLog.Warn(fmt.Sprintf(msg, args...))
			}),
		}),
		dlq: &kafka.Writer{
			Addr:         kafka.TCP(cfg.Brokers...),
			Topic:        cfg.DLQTopic,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 5 * time.Millisecond,
		},
		m:     newConsumerMetrics(cfg.Metrics),
		rows:  newRowBuilder(),
		known: newHashLRU(cfg.KnownHashes),
		batch: batch{newHashes: map[string]struct{}{}},
	}
	defer c.dlq.Close()
	defer c.reader.Close()
	err := c.loop(ctx, drainTo)
	log.Info("ingest stopped", "consumed", c.stats.Consumed, "dead_lettered", c.stats.DeadLettered,
		"scan_rows", c.stats.ScanRows, "package_rows", c.stats.PackageRows, "err", err)
	return c.stats, err
}

func (c *consumer) loop(ctx context.Context, drainTo map[int]int64) error {
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	msgs := make(chan kafka.Message, 256)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		backoff := 100 * time.Millisecond
		for {
			m, err := c.reader.FetchMessage(fetchCtx)
			if err != nil {
				if fetchCtx.Err() != nil || errors.Is(err, io.EOF) {
					fetchErr <- err
					return
				}
				// The broker is down or the group is rebalancing: the
				// reader reconnects on the next fetch.
				c.m.retries.Inc()
				c.log.Warn("fetch failed; retrying", "backoff", backoff, "err", err)
				select {
				case <-time.After(backoff):
				case <-fetchCtx.Done():
				}
				backoff = min(2*backoff, c.cfg.RetryBackoffMax)
				continue
			}
			backoff = 100 * time.Millisecond
			select {
			case msgs <- m:
			case <-fetchCtx.Done():
				return
			}
		}
	}()

	tick := time.NewTicker(min(c.cfg.FlushInterval/4+time.Millisecond, 250*time.Millisecond))
	defer tick.Stop()
	progress := newProgress(c.cfg.ProgressInterval)
	var lastDrainCheck time.Time
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				err := <-fetchErr
				if ctx.Err() != nil {
					return c.shutdown()
				}
				return fmt.Errorf("fetch from %s: %w", c.cfg.Topic, err)
			}
			if err := c.add(ctx, m); err != nil {
				return c.shutdownAfter(err)
			}
			if c.batch.rows() >= c.cfg.BatchRows || c.batch.bytes >= c.cfg.BatchBytes {
				if err := c.flush(ctx); err != nil {
					return c.shutdownAfter(err)
				}
			}
		case now := <-tick.C:
			if len(c.batch.msgs) > 0 && now.Sub(c.batch.started) >= c.cfg.FlushInterval {
				if err := c.flush(ctx); err != nil {
					return c.shutdownAfter(err)
				}
			}
			if progress.due(now) {
				c.logProgress(progress, now)
			}
			if drainTo != nil && len(c.batch.msgs) == 0 && now.Sub(lastDrainCheck) >= drainCheckEvery {
				lastDrainCheck = now
				done, err := drained(ctx, c.cfg.Brokers, c.cfg.GroupID, c.cfg.Topic, drainTo)
				if err != nil {
					// Usual while the group's coordinator is still loading.
					c.log.Debug("checking drain progress", "err", err)
				} else if done {
					c.log.Info("topic drained up to the high-water marks seen at start")
					return nil
				}
			}
		case <-ctx.Done():
			return c.shutdown()
		}
	}
}

// shutdownAfter is shutdown for a loop that stopped on err: a cancelled
// context is a normal stop.
func (c *consumer) shutdownAfter(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return c.shutdown()
	}
	return err
}

// shutdown flushes the pending batch with a fresh deadline, since the run's
// context is gone. Failing here loses nothing: uncommitted messages are
// redelivered.
func (c *consumer) shutdown() error {
	if len(c.batch.msgs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
	defer cancel()
	if err := c.flush(ctx); err != nil {
		c.log.Warn("final flush failed; its messages will be redelivered", "messages", len(c.batch.msgs), "err", err)
	}
	return nil
}

// add decodes one message into the batch, or dead-letters it. A message
// joins the batch (and so is committed with it) only once it is either
// decoded or safely in the DLQ.
func (c *consumer) add(ctx context.Context, m kafka.Message) error {
	c.stats.Consumed++
	c.m.consumed.Inc()
	c.m.consumedB.Add(len(m.Value))
	c.m.observeLag(m.Partition, m.Offset, m.HighWaterMark)

	s, err := c.dec.Decode(m.Value)
	reason := string(inventory.ReasonOf(err))
	if err == nil {
		if err = checkScan(s); err != nil {
			reason = string(inventory.ReasonInvalid)
		}
	}
	if err != nil {
		if reason == "" {
			reason = "undecodable"
		}
		if err := c.deadLetter(ctx, m, reason, err); err != nil {
			return err
		}
	}
	if len(c.batch.msgs) == 0 {
		c.batch.started = time.Now()
	}
	c.batch.msgs = append(c.batch.msgs, m)
	c.batch.bytes += len(m.Value)
	if err != nil {
		return nil
	}

	c.batch.scans = append(c.batch.scans, scanRow(s, inventory.SchemaVersion, c.cfg.Now()))
	if s.Heartbeat {
		return nil
	}
	if _, pending := c.batch.newHashes[s.InventoryHash]; pending || c.known.Contains(s.InventoryHash) {
		c.stats.SkippedPackageSets++
		c.m.skippedSets.Inc()
		return nil
	}
	var bad int
	c.batch.packages, bad = c.rows.packageRows(c.batch.packages, s)
	c.batch.newHashes[s.InventoryHash] = struct{}{}
	if bad > 0 {
		c.batch.badKeys += bad
		c.log.Warn("versions without a version key; stored with v_key ''", "host_id", s.HostID, "scan_id", s.ScanID,
			"inventory_hash", s.InventoryHash, "packages", bad)
	}
	return nil
}

// deadLetter writes m to the DLQ topic, retrying until it succeeds or ctx
// ends: the message is committed with its batch, so it must not be lost.
func (c *consumer) deadLetter(ctx context.Context, m kafka.Message, reason string, cause error) error {
	c.log.Warn("dead-lettering message", "partition", m.Partition, "offset", m.Offset, "reason", reason, "err", cause)
	rec := kafka.Message{
		Key:   m.Key,
		Value: m.Value,
		Headers: append(append([]kafka.Header(nil), m.Headers...),
			kafka.Header{Key: HeaderReason, Value: []byte(reason)},
			kafka.Header{Key: HeaderError, Value: []byte(cause.Error())},
			kafka.Header{Key: HeaderTopic, Value: []byte(m.Topic)},
			kafka.Header{Key: HeaderPartition, Value: []byte(strconv.Itoa(m.Partition))},
			kafka.Header{Key: HeaderOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
			kafka.Header{Key: HeaderGroup, Value: []byte(c.cfg.GroupID)},
		),
	}
	err := c.retry(ctx, "dead-letter write", 0, func(ctx context.Context) error {
		return c.dlq.WriteMessages(ctx, rec)
	})
	if err != nil {
		return err
	}
	c.stats.DeadLettered++
	c.m.deadLettered(reason).Inc()
	return nil
}

// flush inserts the batch, then commits its messages. Package rows go in
// before the scans that reference them, so a scan row is never visible
// without its package set.
func (c *consumer) flush(ctx context.Context) error {
	b := &c.batch
	start := time.Now()
	if len(b.packages) > 0 {
		if err := c.retry(ctx, "insert "+packagesTable, 0, func(ctx context.Context) error {
			return c.st.Insert(ctx, packagesTable, packageColumns, b.packages)
		}); err != nil {
			return err
		}
	}
	if len(b.scans) > 0 {
		if err := c.retry(ctx, "insert "+scansTable, 0, func(ctx context.Context) error {
			return c.st.Insert(ctx, scansTable, scanColumns, b.scans)
		}); err != nil {
			return err
		}
	}
	for h := range b.newHashes {
		c.known.Add(h)
	}
	// A commit that keeps failing is given up on: the rows are stored, so
	// redelivery of these messages changes nothing.
	if err := c.retry(ctx, "commit", 5, func(ctx context.Context) error {
		return c.reader.CommitMessages(ctx, b.msgs...)
	}); err != nil {
		if ctx.Err() != nil {
			return err
		}
		c.log.Warn("commit failed; messages will be redelivered", "messages", len(b.msgs), "err", err)
	}

	elapsed := time.Since(start)
	c.m.batchSeconds.Update(elapsed.Seconds())
	c.m.batches.Inc()
	c.m.scanRows.Add(len(b.scans))
	c.m.packageRows.Add(len(b.packages))
	c.m.badKeys.Add(b.badKeys)
	c.stats.Batches++
	c.stats.ScanRows += int64(len(b.scans))
	c.stats.PackageRows += int64(len(b.packages))
	c.stats.VersionKeyErrors += int64(b.badKeys)
	c.log.Debug("batch loaded", "messages", len(b.msgs), "scan_rows", len(b.scans), "package_rows", len(b.packages),
		"seconds", elapsed.Seconds())
	b.reset()
	return nil
}

// retry calls f until it succeeds, ctx ends, or (attempts > 0) it failed
// that many times, backing off exponentially up to cfg.RetryBackoffMax.
func (c *consumer) retry(ctx context.Context, what string, attempts int, f func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	for n := 1; ; n++ {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if attempts > 0 && n >= attempts {
			return fmt.Errorf("%s: %d attempts: %w", what, n, err)
		}
		c.m.retries.Inc()
		c.log.Warn("retrying", "what", what, "attempt", n, "backoff", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		backoff = min(2*backoff, c.cfg.RetryBackoffMax)
	}
}

type progress struct {
	every    time.Duration
	last     time.Time
	consumed int64
}

func newProgress(every time.Duration) *progress { return &progress{every: every, last: time.Now()} }

func (p *progress) due(now time.Time) bool { return p.every > 0 && now.Sub(p.last) >= p.every }

func (c *consumer) logProgress(p *progress, now time.Time) {
	rate := float64(c.stats.Consumed-p.consumed) / now.Sub(p.last).Seconds()
	c.log.Info("ingest progress", "msgs_per_s", int64(rate), "consumed", c.stats.Consumed, "lag", c.m.Lag(),
		"scan_rows", c.stats.ScanRows, "package_rows", c.stats.PackageRows, "dead_lettered", c.stats.DeadLettered,
		"known_hashes", c.known.Len())
	p.last, p.consumed = now, c.stats.Consumed
}
