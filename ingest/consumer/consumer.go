package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
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

// ReasonStoreRejected is the dead-letter reason of a message that decoded
// but whose rows the store refused for good (a value a column cannot hold,
// a column the table lost): HeaderError carries the store's error.
const ReasonStoreRejected = "store_rejected"

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
	client *kafka.Client // drain checks and re-fetching rejected messages
	dec    inventory.Decoder
	rows   *rowBuilder // the loop's, for redecode
	m      *consumerMetrics
	hashes *hashSet
	stats  Stats

	batch *batch // being filled by the loop
	spare *batch // the other buffer, free when no insert is in flight

	// At most one batch is being inserted (and then committed) by the
	// inserter goroutine while the loop fills the next: inserts overlap
	// decoding, memory stays bounded by two batches, and batches are
	// committed in the order they were filled.
	toInsert chan *batch
	inserted chan flushResult
	inFlight bool
}

// batch is what has been fetched since the last commit.
type batch struct {
	msgs      []kafka.Message // every fetched message, dead-lettered ones too; positions only
	spans     []span          // per message: its rows
	rejected  []int           // messages the store refused, dead-lettered by the inserter
	lostSets  []string        // package sets whose rows the store refused
	scans     [][]any
	packages  [][]any
	newHashes []string // package sets inserted by this batch
	bytes     int      // string bytes held by scans and packages (BatchBytes)
	started   time.Time
	badKeys   int
}

// span is which rows of a batch one message contributed.
type span struct {
	scan         int    // index into scans; -1: none (dead-lettered at decode)
	pkgLo, pkgHi int    // package rows [pkgLo, pkgHi), when it carried its package set's
	hash         string // a full scan's inventory hash; "" for heartbeats
	// orphan: a full scan relying on a set that the previous batch
	// carried and had refused (see finish); dead-lettered with it.
	orphan bool
}

func (b *batch) rows() int { return len(b.scans) + len(b.packages) }

func (b *batch) reset() {
	clear(b.msgs)
	b.msgs = b.msgs[:0]
	clear(b.spans)
	b.spans = b.spans[:0]
	b.rejected = b.rejected[:0]
	clear(b.lostSets)
	b.lostSets = b.lostSets[:0]
	clear(b.scans)
	b.scans = b.scans[:0]
	clear(b.packages)
	b.packages = b.packages[:0]
	clear(b.newHashes)
	b.newHashes = b.newHashes[:0]
	b.bytes, b.badKeys = 0, 0
}

// flushResult is the inserter's answer for one batch.
type flushResult struct {
	b                     *batch
	err                   error
	elapsed               time.Duration
	scanRows, packageRows int // inserted: the batch's, less the rejected messages'
}

// Run consumes cfg.Topic as a member of cfg.GroupID and loads every scan
// into st until ctx is cancelled (then it flushes and commits what it has,
// within cfg.ShutdownTimeout) or, with cfg.Drain, until the group has
// committed everything the topic held when Run started. It returns an error
// only for failures it cannot retry past (bad config, the topic's metadata
// in drain mode, a closed reader); a broker outage is waited out.
//
// Messages flow through three stages: a fetcher, cfg.DecodeWorkers
// decoders (which also build the package rows), and the loop that batches
// them in fetch order and hands full batches to one inserter goroutine.
func Run(ctx context.Context, cfg Config, st store.Store) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With("component", "ingest", "topic", cfg.Topic, "group", cfg.GroupID)
	conn, err := cfg.Kafka.Open()
	if err != nil {
		return Stats{}, fmt.Errorf("ingest: %w", err)
	}
	transport := conn.Transport("patchgrid-ingest")
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: transport}

	var targets *drainTargets
	if cfg.Drain {
		targets = readDrainTargets(ctx, client, cfg.Topic)
		defer targets.stop()
	}

	kafkaLog := log.With("source", "kafka-go")
	c := &consumer{
		cfg:    cfg,
		log:    log,
		st:     st,
		client: client,
		reader: kafka.NewReader(kafka.ReaderConfig{
			Brokers:          cfg.Brokers,
			Dialer:           conn.Dialer("patchgrid-ingest"),
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
				kafkaLog.Log(ctx, kafkaErrorLevel(args), fmt.Sprintf(msg, args...))
			}),
		}),
		dlq: &kafka.Writer{
			Addr:         kafka.TCP(cfg.Brokers...),
			Topic:        cfg.DLQTopic,
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 5 * time.Millisecond,
			Transport:    transport,
		},
		m:        newConsumerMetrics(cfg.Metrics),
		hashes:   newHashSet(cfg.KnownHashes),
		batch:    &batch{},
		spare:    &batch{},
		toInsert: make(chan *batch),
		inserted: make(chan flushResult, 1),
	}
	defer c.dlq.Close()
	defer c.reader.Close()

	// The inserter outlives the loop only until toInsert is closed; it
	// runs on its own context so that a batch handed over just before
	// cancellation still gets cfg.ShutdownTimeout to land (see shutdown).
	insCtx, stopIns := context.WithCancel(context.WithoutCancel(ctx))
	var insWG sync.WaitGroup
	insWG.Add(1)
	go func() {
		defer insWG.Done()
		c.inserter(insCtx, ctx)
	}()
	err = c.loop(ctx, targets)
	close(c.toInsert)
	stopIns()
	insWG.Wait()
	log.Info("ingest stopped", "consumed", c.stats.Consumed, "dead_lettered", c.stats.DeadLettered,
		"scan_rows", c.stats.ScanRows, "package_rows", c.stats.PackageRows, "err", err)
	return c.stats, err
}

// job is one fetched message on its way through a decoder. done is closed
// when res, err, pkgRows and badKeys are set.
type job struct {
	m        kafka.Message
	res      inventory.Decoded
	err      error
	pkgRows  [][]any
	pkgBytes int // string bytes the package rows hold
	badKeys  int
	done     chan struct{}
}

// decodeJobs decodes jobs until in is closed. Each decoder has its own
// Decoder and rowBuilder (neither is safe for concurrent use). Package
// rows are built here, off the loop, unless the set is already stored or
// pending, in which case the packages are not even materialized.
func (c *consumer) decodeJobs(in <-chan *job) {
	var dec inventory.Decoder
	rows := newRowBuilder()
	opt := inventory.DecodeOptions{SkipPackages: c.hashes.Has}
	for j := range in {
		j.res, j.err = dec.DecodeWith(j.m.Value, opt)
		if j.err == nil {
			j.err = checkScan(j.res.Scan)
		}
		if s := j.res.Scan; j.err == nil && !s.Heartbeat && !j.res.PackagesSkipped {
			j.pkgRows, j.badKeys = rows.packageRows(make([][]any, 0, len(s.Packages)), s)
			j.pkgBytes = packageRowBytes(s)
		}
		close(j.done)
	}
}

func (c *consumer) loop(ctx context.Context, targets *drainTargets) error {
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	// ordered carries jobs in fetch order; decoders finish them in any
	// order. Its capacity bounds the messages between fetch and batch.
	workers := c.cfg.DecodeWorkers
	ordered := make(chan *job, 4*workers)
	work := make(chan *job, 4*workers)
	fetchErr := make(chan error, 1)
	var decoders sync.WaitGroup
	for range workers {
		decoders.Add(1)
		go func() {
			defer decoders.Done()
			c.decodeJobs(work)
		}()
	}
	go func() {
		defer close(ordered)
		defer close(work)
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
			j := &job{m: m, done: make(chan struct{})}
			select {
			case ordered <- j:
			case <-fetchCtx.Done():
				fetchErr <- fetchCtx.Err()
				return
			}
			work <- j // never blocks for long: decoders drain work until it is closed
		}
	}()
	// Decoders stop once the fetcher closed work; wait for them so that
	// none outlives Run.
	defer func() {
		stopFetch()
		for range ordered {
		}
		decoders.Wait()
	}()

	tick := time.NewTicker(min(c.cfg.FlushInterval/4+time.Millisecond, 250*time.Millisecond))
	defer tick.Stop()
	progress := newProgress(c.cfg.ProgressInterval)
	var lastDrainCheck time.Time
	drainTo, stop, err := targets.await(ctx, c.log)
	if stop {
		return err
	}
	drain := newDrainTracker(drainTo)
	// checkDrained asks the group coordinator whether everything up to
	// the drain targets is committed; only worth asking with nothing of
	// ours pending.
	checkDrained := func(now time.Time) bool {
		if drainTo == nil || len(c.batch.msgs) > 0 || c.inFlight {
			return false
		}
		lastDrainCheck = now
		done, err := drained(ctx, c.client, c.cfg.GroupID, c.cfg.Topic, drainTo)
		if err != nil {
			// Usual while the group's coordinator is still loading.
			c.log.Debug("checking drain progress", "err", err)
			return false
		}
		if done {
			c.log.Info("topic drained up to the high-water marks seen at start")
		}
		return done
	}
	for {
		select {
		case j, ok := <-ordered:
			if !ok {
				err := <-fetchErr
				if ctx.Err() != nil {
					return c.shutdown()
				}
				return fmt.Errorf("fetch from %s: %w", c.cfg.Topic, err)
			}
			select {
			case <-j.done:
			case <-ctx.Done():
				return c.shutdown()
			}
			if err := c.add(ctx, j); err != nil {
				return c.shutdownAfter(err)
			}
			// Reaching the drain targets flushes at once: nothing more is
			// coming that the run waits for, so waiting out FlushInterval
			// would only add latency.
			reached := drain.fetched(j.m.Partition, j.m.Offset)
			full := c.batch.rows() >= c.cfg.BatchRows || c.batch.bytes >= c.cfg.BatchBytes
			eager := !c.inFlight && c.batch.rows() >= c.cfg.EagerRows
			if reached || full || eager {
				if err := c.submit(ctx); err != nil {
					return c.shutdownAfter(err)
				}
			}
		case r := <-c.inserted:
			if err := c.finish(r); err != nil {
				return c.shutdownAfter(err)
			}
			if drain.reached() && checkDrained(time.Now()) {
				return nil
			}
		case now := <-tick.C:
			if len(c.batch.msgs) > 0 && now.Sub(c.batch.started) >= c.cfg.FlushInterval {
				if err := c.submit(ctx); err != nil {
					return c.shutdownAfter(err)
				}
			}
			if progress.due(now) {
				c.logProgress(progress, now)
			}
			if now.Sub(lastDrainCheck) >= drainCheckEvery && checkDrained(now) {
				return nil
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

// shutdown lets the batch in flight land and flushes the pending one, with
// a fresh deadline, since the run's context is gone. Failing here loses
// nothing: uncommitted messages are redelivered.
func (c *consumer) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
	defer cancel()
	if err := c.wait(ctx); err != nil {
		c.log.Warn("batch in flight failed at shutdown; its messages will be redelivered", "err", err)
		return nil
	}
	n := len(c.batch.msgs)
	if n == 0 {
		return nil
	}
	err := c.submit(ctx)
	if err == nil {
		err = c.wait(ctx)
	}
	if err != nil {
		c.log.Warn("final flush failed; its messages will be redelivered", "messages", n, "err", err)
	}
	return nil
}

// add puts one decoded message into the batch, or dead-letters it. A
// message joins the batch (and so is committed with it) only once it is
// either decoded or safely in the DLQ.
func (c *consumer) add(ctx context.Context, j *job) error {
	m := j.m
	c.stats.Consumed++
	c.m.consumed.Inc()
	c.m.consumedB.Add(len(m.Value))
	c.m.observeLag(m.Partition, m.Offset, m.HighWaterMark)

	err := j.err
	if err != nil {
		reason := string(inventory.ReasonOf(err))
		if reason == "" {
			// checkScan's rules, beyond what the decoder checks.
			reason = string(inventory.ReasonInvalid)
		}
		if err := c.deadLetter(ctx, m, reason, err); err != nil {
			return err
		}
	}
	b := c.batch
	if len(b.msgs) == 0 {
		b.started = time.Now()
	}
	// Only the position is needed to commit: the value, often a package
	// list the batch will not insert, is not kept.
	b.msgs = append(b.msgs, kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset})
	b.spans = append(b.spans, span{scan: -1})
	if err != nil {
		return nil
	}

	s := j.res.Scan
	sp := &b.spans[len(b.spans)-1]
	sp.scan, sp.pkgLo, sp.pkgHi = len(b.scans), len(b.packages), len(b.packages)
	b.scans = append(b.scans, scanRow(s, j.res.PackageCount, uint16(j.res.Version), c.cfg.Now()))
	b.bytes += scanRowBytes(s)
	if s.Heartbeat {
		return nil
	}
	sp.hash = s.InventoryHash
	// Claim catches sets that became pending since the decoder looked.
	claimed := c.hashes.Claim(s.InventoryHash)
	if claimed && j.res.PackagesSkipped {
		// The set was stored or pending when decoded and is neither now:
		// the batch that held it had it refused (see settle), or the LRU
		// forgot it. Decode again so this message carries the rows (in
		// the second case a redundant insert).
		if err := c.redecode(j); err != nil {
			c.hashes.Release([]string{s.InventoryHash})
			c.log.Warn("package set not decodable; scan stored without it", "host_id", s.HostID, "scan_id", s.ScanID, "err", err)
			claimed = false
		}
	}
	if !claimed {
		c.stats.SkippedPackageSets++
		c.m.skippedSets.Inc()
		return nil
	}
	b.packages = append(b.packages, j.pkgRows...)
	sp.pkgHi = len(b.packages)
	b.bytes += j.pkgBytes
	b.newHashes = append(b.newHashes, s.InventoryHash)
	if j.badKeys > 0 {
		b.badKeys += j.badKeys
		c.log.Warn("versions without a version key; stored with v_key ''", "host_id", s.HostID, "scan_id", s.ScanID,
			"inventory_hash", s.InventoryHash, "packages", j.badKeys)
	}
	return nil
}

// redecode decodes j's message again with its packages, building their
// rows (in the loop: rare, see add).
func (c *consumer) redecode(j *job) error {
	if c.rows == nil {
		c.rows = newRowBuilder()
	}
	s, err := c.dec.Decode(j.m.Value)
	if err != nil {
		return err
	}
	j.pkgRows, j.badKeys = c.rows.packageRows(make([][]any, 0, len(s.Packages)), s)
	j.pkgBytes = packageRowBytes(s)
	return nil
}

// deadLetter writes m to the DLQ topic and counts it.
func (c *consumer) deadLetter(ctx context.Context, m kafka.Message, reason string, cause error) error {
	if err := c.writeDLQ(ctx, m, reason, cause); err != nil {
		return err
	}
	c.stats.DeadLettered++
	return nil
}

// writeDLQ writes m to the DLQ topic, retrying until it succeeds or ctx
// ends: the message is committed with its batch, so it must not be lost.
// It is safe for concurrent use (the loop and the inserter both call it).
func (c *consumer) writeDLQ(ctx context.Context, m kafka.Message, reason string, cause error) error {
	c.log.Warn("dead-lettering message", "partition", m.Partition, "offset", m.Offset, "reason", reason, "err", cause)
	rec := c.dlqRecord(m, reason, cause)
	err := c.retry(ctx, "dead-letter write", 0, func(ctx context.Context) error {
		return c.dlq.WriteMessages(ctx, rec)
	})
	if err != nil {
		return err
	}
	c.m.deadLettered(reason).Inc()
	return nil
}

// dlqRecord is m's dead-letter record: its key, value and headers, and
// headers saying why and where from.
func (c *consumer) dlqRecord(m kafka.Message, reason string, cause error) kafka.Message {
	return kafka.Message{
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
}

// submit hands the pending batch to the inserter, first waiting for the
// batch in flight (so at most one is), and starts filling the other buffer.
func (c *consumer) submit(ctx context.Context) error {
	if len(c.batch.msgs) == 0 {
		return nil
	}
	if err := c.wait(ctx); err != nil {
		return err
	}
	select {
	case c.toInsert <- c.batch:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.inFlight = true
	c.batch, c.spare = c.spare, c.batch
	return nil
}

// wait blocks until the batch in flight, if any, is inserted and committed.
func (c *consumer) wait(ctx context.Context) error {
	if !c.inFlight {
		return nil
	}
	select {
	case r := <-c.inserted:
		return c.finish(r)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish accounts for a batch the inserter is done with and frees its
// buffer. Its package sets become known only now that they are stored.
func (c *consumer) finish(r flushResult) error {
	c.inFlight = false
	b := r.b
	if r.err != nil {
		return r.err
	}
	if len(b.rejected) > 0 {
		// A refused package set is not stored: the next message that
		// carries it tries again.
		lost := make(map[string]bool, len(b.lostSets))
		for _, h := range b.lostSets {
			lost[h] = true
		}
		b.newHashes = slices.DeleteFunc(b.newHashes, func(h string) bool { return lost[h] })
		c.hashes.Release(b.lostSets)
		// Full scans already batched behind this one skipped the set
		// while it was pending: they share its fate.
		for i := range c.batch.spans {
			if sp := &c.batch.spans[i]; sp.hash != "" && sp.pkgHi == sp.pkgLo && lost[sp.hash] {
				sp.orphan = true
			}
		}
		c.stats.DeadLettered += int64(len(b.rejected))
	}
	c.hashes.Stored(b.newHashes)
	c.m.batchSeconds.Update(r.elapsed.Seconds())
	c.m.batches.Inc()
	c.m.scanRows.Add(r.scanRows)
	c.m.packageRows.Add(r.packageRows)
	c.m.badKeys.Add(b.badKeys)
	c.stats.Batches++
	c.stats.ScanRows += int64(r.scanRows)
	c.stats.PackageRows += int64(r.packageRows)
	c.stats.VersionKeyErrors += int64(b.badKeys)
	c.log.Debug("batch loaded", "messages", len(b.msgs), "scan_rows", r.scanRows, "package_rows", r.packageRows,
		"rejected", len(b.rejected), "seconds", r.elapsed.Seconds())
	b.reset()
	return nil
}

// inserter inserts and commits the batches it is handed, one at a time, in
// order. ctx bounds its retries; runCtx is the run's: once that is done, a
// batch is given cfg.ShutdownTimeout more, then abandoned (uncommitted, so
// redelivered).
func (c *consumer) inserter(ctx, runCtx context.Context) {
	for b := range c.toInsert {
		bctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(runCtx, func() {
			t := time.AfterFunc(c.cfg.ShutdownTimeout, cancel)
			context.AfterFunc(bctx, func() { t.Stop() })
		})
		start := time.Now()
		err := c.flush(bctx, b)
		stop()
		cancel()
		r := flushResult{b: b, err: err, elapsed: time.Since(start), scanRows: len(b.scans), packageRows: len(b.packages)}
		for _, i := range b.rejected {
			r.scanRows--
			// Rows of a refused set are not stored; a refused scan's
			// package rows went in before it (insertRows).
			if sp := b.spans[i]; sp.pkgHi > sp.pkgLo && slices.Contains(b.lostSets, sp.hash) {
				r.packageRows -= sp.pkgHi - sp.pkgLo
			}
		}
		c.inserted <- r
	}
}

// flush inserts the batch, then commits its messages. Package rows go in
// before the scans that reference them, so a scan row is never visible
// without its package set. Rows the store refuses for good are traced back
// to their messages (see settle), which are dead-lettered; the rest go in
// and the whole batch is committed, so a bad message never stalls its
// partition.
func (c *consumer) flush(ctx context.Context, b *batch) error {
	var loaded []int
	orphans := false
	for i, sp := range b.spans {
		switch {
		case sp.orphan:
			orphans = true
			cause := fmt.Errorf("package set %s was refused by the store with the message that carried it", sp.hash)
			if err := c.reject(ctx, b, i, cause); err != nil {
				return err
			}
		case sp.scan >= 0:
			loaded = append(loaded, i)
		}
	}
	packages, scans := b.packages, b.scans
	if orphans {
		packages, scans = rowsOf(b, loaded)
	}
	err := c.insertRows(ctx, packages, scans, c.cfg.UnclassifiedAttempts)
	if err != nil {
		var ie *insertError
		if !errors.As(err, &ie) {
			return err // ctx ended
		}
		if err := c.settle(ctx, b, loaded, ie); err != nil {
			return err
		}
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
	return nil
}

// insertError is an insert that retrying will not fix: a permanent error,
// or an unclassified one that kept failing.
type insertError struct {
	table string
	class errClass
	scope errScope
	err   error
}

func (e *insertError) Error() string {
	return fmt.Sprintf("insert %s (%s error): %v", e.table, e.class, e.err)
}

func (e *insertError) Unwrap() error { return e.err }

// insertRows inserts package rows, then scan rows, retrying temporary
// errors with backoff until ctx ends, and unclassified ones up to
// unknownAttempts times. It returns ctx's error or an *insertError.
func (c *consumer) insertRows(ctx context.Context, packages, scans [][]any, unknownAttempts int) error {
	backoff := 100 * time.Millisecond
	unknown := 0
	for n := 1; ; n++ {
		table, err := packagesTable, error(nil)
		if len(packages) > 0 {
			err = c.st.Insert(ctx, packagesTable, packageColumns, packages)
			if err == nil {
				packages = nil // stored: a retry of the scans does not repeat them
			}
		}
		if err == nil && len(scans) > 0 {
			table, err = scansTable, c.st.Insert(ctx, scansTable, scanColumns, scans)
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("insert %s: %w", table, ctx.Err())
		}
		class, scope := classify(err)
		c.m.insertErrors(class).Inc()
		if class == classUnknown {
			unknown++
		}
		if class == classPermanent || (class == classUnknown && unknown >= unknownAttempts) {
			return &insertError{table: table, class: class, scope: scope, err: err}
		}
		c.m.retries.Inc()
		c.log.Warn("insert failed; retrying", "table", table, "class", class, "attempt", n, "backoff", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("insert %s: %w", table, ctx.Err())
		}
		backoff = min(2*backoff, c.cfg.RetryBackoffMax)
	}
}

// rowsOf returns the rows of the messages idx, in order.
func rowsOf(b *batch, idx []int) (packages, scans [][]any) {
	for _, i := range idx {
		sp := b.spans[i]
		packages = append(packages, b.packages[sp.pkgLo:sp.pkgHi]...)
		scans = append(scans, b.scans[sp.scan])
	}
	return packages, scans
}

// rowOwner is the message among idx whose rows, laid out as rowsOf lays
// them out, hold row of table; -1 when none does.
func rowOwner(b *batch, idx []int, table string, row int) int {
	if row < 0 {
		return -1
	}
	for _, i := range idx {
		n := 1 // one scan row per message
		if sp := b.spans[i]; table == packagesTable {
			n = sp.pkgHi - sp.pkgLo
		}
		if row < n {
			return i
		}
		row -= n
	}
	return -1
}

// settle finds the messages among idx whose rows failed with ie,
// dead-letters them, and inserts the rows of the others. A row error names
// its row; a statement error (a column the table lacks) condemns every
// message with rows in that table; anything else is bisected, so k bad
// messages among n cost about 2k·log2(n) inserts. An unclassified error
// has already persisted when settle starts, so its inserts try such an
// error once rather than cfg.UnclassifiedAttempts times.
//
// Messages of one package set move together: in a batch, only the first
// full scan with a set carries its rows, and the others rely on them. When
// the set's rows are refused, all its full scans are dead-lettered (their
// sets are the same rows); heartbeats, which only say that the host is
// alive, are loaded. When a scan row is refused, the package rows were
// stored before it (insertRows), so only that message goes.
func (c *consumer) settle(ctx context.Context, b *batch, idx []int, ie *insertError) error {
	for {
		var culprits []int
		var re *store.RowError
		owner := -1
		if ie.scope == scopeRow && errors.As(ie, &re) {
			owner = rowOwner(b, idx, ie.table, re.Row)
		}
		switch {
		case owner >= 0:
			culprits = []int{owner}
		case ie.scope == scopeStatement:
			for _, i := range idx {
				if ie.table == scansTable || b.spans[i].pkgHi > b.spans[i].pkgLo {
					culprits = append(culprits, i)
				}
			}
		default:
			units := packageSetUnits(b, idx)
			if len(units) == 1 && ie.table == scansTable {
				// The set's rows are stored: its scans stand alone.
				units = units[:0]
				for _, i := range idx {
					units = append(units, []int{i})
				}
			}
			if len(units) > 1 {
				half := len(units) / 2
				for _, part := range [][][]int{units[:half], units[half:]} {
					sub := slices.Concat(part...)
					p, s := rowsOf(b, sub)
					err := c.insertRows(ctx, p, s, 1)
					var pie *insertError
					if errors.As(err, &pie) {
						err = c.settle(ctx, b, sub, pie)
					}
					if err != nil {
						return err
					}
				}
				return nil
			}
			culprits = units[0]
		}
		// Sets, not slices: a statement error condemns a whole batch.
		bad := make(map[int]bool, len(culprits))
		lost := make(map[string]bool, len(b.lostSets))
		for _, h := range b.lostSets {
			lost[h] = true
		}
		for _, i := range culprits {
			bad[i] = true
			if h := b.spans[i].hash; ie.table == packagesTable && h != "" && !lost[h] {
				lost[h] = true
				b.lostSets = append(b.lostSets, h)
			}
		}
		var rest []int
		for _, i := range idx {
			if h := b.spans[i].hash; bad[i] || (h != "" && lost[h]) {
				if err := c.reject(ctx, b, i, ie); err != nil {
					return err
				}
				continue
			}
			rest = append(rest, i)
		}
		idx = rest
		if len(idx) == 0 {
			return nil
		}
		p, s := rowsOf(b, idx)
		err := c.insertRows(ctx, p, s, 1)
		if err == nil {
			return nil
		}
		if !errors.As(err, &ie) {
			return err
		}
	}
}

// packageSetUnits groups idx for bisection: the full scans of one package
// set together (in a batch only the first carries the set's rows),
// everything else alone.
func packageSetUnits(b *batch, idx []int) [][]int {
	var units [][]int
	bySet := map[string]int{}
	for _, i := range idx {
		h := b.spans[i].hash
		if u, ok := bySet[h]; ok && h != "" {
			units[u] = append(units[u], i)
			continue
		}
		if h != "" {
			bySet[h] = len(units)
		}
		units = append(units, []int{i})
	}
	return units
}

// reject dead-letters message i of b, whose rows the store refused. The
// batch keeps positions only, so the message is fetched again by its offset
// (a rare path; holding every value would multiply a batch's memory).
func (c *consumer) reject(ctx context.Context, b *batch, i int, cause error) error {
	pos := b.msgs[i]
	var m kafka.Message
	err := c.retry(ctx, "re-fetch rejected message", 0, func(ctx context.Context) error {
		var err error
		m, err = c.refetch(ctx, pos)
		return err
	})
	if err != nil {
		return err
	}
	if err := c.writeDLQ(ctx, m, ReasonStoreRejected, cause); err != nil {
		return err
	}
	b.rejected = append(b.rejected, i)
	return nil
}

// refetch reads the message at pos's topic, partition and offset.
func (c *consumer) refetch(ctx context.Context, pos kafka.Message) (kafka.Message, error) {
	res, err := c.client.Fetch(ctx, &kafka.FetchRequest{
		Topic: pos.Topic, Partition: pos.Partition, Offset: pos.Offset, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: time.Second,
	})
	if err != nil {
		return kafka.Message{}, fmt.Errorf("fetch %s/%d@%d: %w", pos.Topic, pos.Partition, pos.Offset, err)
	}
	if res.Error != nil {
		return kafka.Message{}, fmt.Errorf("fetch %s/%d@%d: %w", pos.Topic, pos.Partition, pos.Offset, res.Error)
	}
	for {
		r, err := res.Records.ReadRecord()
		if err != nil {
			return kafka.Message{}, fmt.Errorf("fetch %s/%d@%d: message not in the response: %w", pos.Topic, pos.Partition, pos.Offset, err)
		}
		if r.Offset < pos.Offset {
			continue // a compressed record batch starts before the offset asked for
		}
		m := kafka.Message{Topic: pos.Topic, Partition: pos.Partition, Offset: r.Offset, Time: r.Time}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
		if m.Key, err = readBytes(r.Key); err == nil {
			m.Value, err = readBytes(r.Value)
		}
		if err != nil {
			return kafka.Message{}, fmt.Errorf("fetch %s/%d@%d: %w", pos.Topic, pos.Partition, pos.Offset, err)
		}
		return m, nil
	}
}

func readBytes(b kafka.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	defer b.Close()
	return io.ReadAll(b)
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
		"known_hashes", c.hashes.Len())
	p.last, p.consumed = now, c.stats.Consumed
}
