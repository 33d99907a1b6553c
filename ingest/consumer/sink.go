package consumer

// The generic core: a consumer for topics whose every message is one row of
// one table (deployment outcomes, ingest/outcomes). It keeps the contract of
// the scan consumer and shares its machinery (the consumer group, the
// dead-letter writer and its headers, classify, retry, drain mode, the
// metrics), but fetches with the group fetch of fetch.go: a batch is committed only after its rows are inserted or its
// messages are in the DLQ; a message that does not decode, that the sink's
// check refuses, or whose row the store refuses for good is dead-lettered
// with the reason while the rest of its batch loads; temporary store
// failures are waited out. The scan consumer (Run) keeps its own pipeline
// because of what only scans have: package sets shared between messages,
// stored once and dead-lettered together.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/segmentio/kafka-go"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// ReasonInvalid is the dead-letter reason of a message a sink could not
// decode, unless the sink's error is a *Rejection with a reason of its own.
const ReasonInvalid = "invalid"

// Rejection is a sink's refusal of one message: Reason goes to the
// dead-letter header HeaderReason, the whole error to HeaderError.
// Retrying the same message cannot help.
type Rejection struct {
	Reason string
	Err    error
}

func (r *Rejection) Error() string { return r.Reason + ": " + r.Err.Error() }
func (r *Rejection) Unwrap() error { return r.Err }

// Reject returns a *Rejection.
func Reject(reason string, err error) error { return &Rejection{Reason: reason, Err: err} }

// Sink is what RunSink loads: messages of type T, one row each.
type Sink[T any] interface {
	// Table and Columns name what Row fills.
	Table() string
	Columns() []string
	// NewDecoder returns a function decoding one message value. Each of
	// the cfg.DecodeWorkers goroutines has its own, so a decoder may keep
	// what it decoded last (a string repeated from message to message
	// need not be allocated again). An error dead-letters the message
	// (reason: a *Rejection's, else ReasonInvalid).
	NewDecoder() func(value []byte) (T, error)
	// Check vets decoded items against the store at once (a query per
	// call at most, not per message): the decoders call it for each chunk
	// they decoded (up to fetchChunk items, several chunks at once), so
	// that checking overlaps the insert of the previous batch. It returns
	// one error per item: nil loads it, anything else dead-letters it (a
	// *Rejection names the reason). Its own error means the store could
	// not be asked: the items are checked again with the rest of their
	// batch, retried with backoff; rows are never loaded unchecked.
	Check(ctx context.Context, items []T) ([]error, error)
	// Rows are the rows of checked items (one per item, in order, of
	// Columns), stamped with when they were received; decoders call it
	// for the items of a chunk that Check accepted. A chunk's rows are
	// built at once so that a sink can share memory between them (one
	// backing array; values repeated from row to row boxed once).
	Rows(items []T, received time.Time) [][]any
}

// SinkStats counts what one RunSink did.
type SinkStats struct {
	Consumed     int64 // messages fetched
	DeadLettered int64
	Rows         int64 // rows inserted (redeliveries included)
	Batches      int64
}

// sinkItem is one fetched message of a sink's batch. The whole message is
// kept: sink messages are small, and a dead-letter write needs it.
type sinkItem[T any] struct {
	m    kafka.Message
	gen  *generation // the group generation that fetched it, which commits it
	item T
	err  error // decode error or the check's refusal: dead-lettered, no row
	row  []any // the checked item's row; nil while unchecked
}

// Messages travel from the partition fetchers (fetch.go) through the
// decoders to the batch in chunks, not one by one: with a one-pass decoder
// a message costs about a microsecond to decode, less than handing it
// between goroutines (and, on a busy machine, waking the thread that runs
// them) three times. A chunk holds one partition's messages of one
// generation; it closes when it holds fetchChunk messages or at the end of
// a fetch response (nothing more is there yet), so a trickle of messages
// still moves at once.
const (
	fetchChunk = 1024
	// chunksAhead bounds the chunks between fetch and batch (memory:
	// about chunksAhead·fetchChunk messages).
	chunksAhead = 8
)

// sinkChunk is fetched messages on their way through a decoder; done is
// closed once all are decoded, checked and their rows built.
type sinkChunk[T any] struct {
	items []sinkItem[T]
	done  chan struct{}
	// refs counts the batches holding items of the chunk, plus one while
	// the loop hands its items out; at zero it is reused (loop only).
	refs int
}

// sinkBatch points at its items in their chunks: copying items (a Kafka
// message and a decoded value each, hundreds of bytes) into a batch's own
// array cost more than decoding them.
type sinkBatch[T any] struct {
	items   []*sinkItem[T]
	chunks  []*sinkChunk[T] // the chunks items point into
	bytes   int
	started time.Time
}

type sinkRun[T any] struct {
	*consumer // shared machinery: DLQ writer, client, metrics, retry (not its reader)
	fetch     *groupFetch
	sink      Sink[T]
	rowsM     *metrics.Counter

	mu    sync.Mutex // the loop and the inserter both count
	stats SinkStats
}

// RunSink consumes cfg.Topic as a member of cfg.GroupID and loads every
// message into st through sink, until ctx is cancelled or, with cfg.Drain,
// until the group has committed everything the topic held at start.
// metricsPrefix names its Prometheus series (prefix_messages_consumed_total,
// ...; the scan consumer's are patchgrid_ingest_*). Of cfg, BatchRows
// (messages), BatchBytes (message bytes), EagerRows, FlushInterval,
// DecodeWorkers, MaxWait, the timeouts and UnclassifiedAttempts apply;
// KnownHashes is the scan consumer's. Errors are as Run's.
func RunSink[T any](ctx context.Context, cfg Config, st store.Store, sink Sink[T], metricsPrefix string) (SinkStats, error) {
	if err := cfg.Validate(); err != nil {
		return SinkStats{}, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With("component", "ingest", "topic", cfg.Topic, "group", cfg.GroupID)
	conn, err := cfg.Kafka.Open()
	if err != nil {
		return SinkStats{}, fmt.Errorf("ingest %s: %w", cfg.Topic, err)
	}
	transport := conn.Transport("patchgrid-ingest")
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: transport}
	var targets *drainTargets
	if cfg.Drain {
		targets = readDrainTargets(ctx, client, cfg.Topic)
		defer targets.stop()
	}
	m := newCoreMetrics(cfg.Metrics, metricsPrefix)
	fetch, err := newGroupFetch(ctx, cfg, conn.Dialer("patchgrid-ingest"), log, m.retries)
	if err != nil {
		return SinkStats{}, fmt.Errorf("ingest %s: %w", cfg.Topic, err)
	}
	r := &sinkRun[T]{
		consumer: &consumer{
			cfg:    cfg,
			log:    log,
			st:     st,
			client: client,
			dlq: &kafka.Writer{
				Addr:         kafka.TCP(cfg.Brokers...),
				Topic:        cfg.DLQTopic,
				Balancer:     &kafka.Hash{},
				RequiredAcks: kafka.RequireAll,
				BatchTimeout: 5 * time.Millisecond,
				Transport:    transport,
			},
			m: m,
		},
		fetch: fetch,
		sink:  sink,
		rowsM: m.rowsInserted(sink.Table()),
	}
	defer r.dlq.Close()
	// Closing the group membership leaves the group (its partitions go to
	// another member at once); loop has stopped fetching and waited for
	// the last commit by then.
	defer r.fetch.Close()
	err = r.loop(ctx, targets)
	s := r.snapshot()
	log.Info("ingest stopped", "consumed", s.Consumed, "dead_lettered", s.DeadLettered, "rows", s.Rows, "err", err)
	return s, err
}

func (r *sinkRun[T]) snapshot() SinkStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *sinkRun[T]) count(f func(s *SinkStats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// loop runs a fetcher and cfg.DecodeWorkers decoders (which also check
// their chunks and build the rows, see prepare), batches their messages
// here in fetch order, and hands batches to one inserter goroutine, whose
// inserted batches one committer goroutine commits: fetching, decoding
// and checking overlap inserting, and inserting overlaps committing. At
// most two batches are in memory (as Run does for scans).
func (r *sinkRun[T]) loop(ctx context.Context, targets *drainTargets) error {
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	// fetched carries chunks in fetch order; decoders finish them in any
	// order. free returns chunks no batch holds any more, for reuse: up
	// to those of two full batches and the chunks ahead.
	fetched := make(chan *sinkChunk[T], chunksAhead)
	work := make(chan *sinkChunk[T], chunksAhead)
	free := make(chan *sinkChunk[T], chunksAhead+2+2*(r.cfg.BatchRows/fetchChunk+1))
	release := func(c *sinkChunk[T]) {
		if c.refs--; c.refs == 0 {
			select {
			case free <- c:
			default:
			}
		}
	}
	var decoders sync.WaitGroup
	for range r.cfg.DecodeWorkers {
		decoders.Go(func() {
			var buf []T
			decode := r.sink.NewDecoder()
			for c := range work {
				for i := range c.items {
					it := &c.items[i]
					it.item, it.err = decode(it.m.Value)
				}
				buf = r.prepare(fetchCtx, c.items, buf)
				close(c.done)
			}
		})
	}
	go func() {
		defer close(fetched)
		defer close(work)
		r.fetch.run(fetchCtx, func(g *generation, _ int) partitionSink {
			return &chunker[T]{stop: fetchCtx, gen: g, fetched: fetched, work: work, free: free}
		})
	}()
	defer func() {
		stopFetch()
		for range fetched {
		}
		decoders.Wait()
	}()

	// The inserter runs on a context that outlives cancellation by
	// cfg.ShutdownTimeout, so the batch handed over last still lands.
	insCtx, stopIns := context.WithCancel(context.WithoutCancel(ctx))
	defer stopIns()
	toInsert := make(chan *sinkBatch[T])
	inserted := make(chan error, 1)
	// The committer commits inserted batches, in order, while the
	// inserter inserts the next one: a synchronous commit is a round trip
	// to the group coordinator (tens of milliseconds on a busy broker)
	// during which the inserter would idle. A batch is committed only
	// after its insert all the same. pending counts batches inserted and
	// not yet committed; committed tells the loop one was.
	toCommit := make(chan []commitSet, 1)
	committed := make(chan struct{}, 1)
	var pending atomic.Int64
	var comWG sync.WaitGroup
	comWG.Go(func() {
		cctx, cancel := context.WithCancel(insCtx)
		defer cancel()
		stop := context.AfterFunc(ctx, func() { time.AfterFunc(r.cfg.ShutdownTimeout, cancel) })
		defer stop()
		for sets := range toCommit {
			// A commit that keeps failing is given up on: the rows are
			// stored, and redelivering them changes nothing (the sink's
			// table replaces them).
			for _, cs := range sets {
				if err := r.fetch.commit(cctx, r.retry, cs.gen, cs.offsets); err != nil {
					r.log.Warn("commit failed; messages will be redelivered", "partitions", len(cs.offsets), "err", err)
				}
			}
			r.m.batches.Inc()
			r.count(func(s *SinkStats) { s.Batches++ })
			pending.Add(-1)
			select {
			case committed <- struct{}{}:
			default:
			}
		}
	})
	defer comWG.Wait()
	defer close(toCommit)
	var insWG sync.WaitGroup
	insWG.Add(1)
	go func() {
		defer insWG.Done()
		for b := range toInsert {
			bctx, cancel := context.WithCancel(insCtx)
			stop := context.AfterFunc(ctx, func() {
				t := time.AfterFunc(r.cfg.ShutdownTimeout, cancel)
				context.AfterFunc(bctx, func() { t.Stop() })
			})
			start := time.Now()
			sets, err := r.flush(bctx, b)
			stop()
			cancel()
			r.m.batchSeconds.Update(time.Since(start).Seconds())
			if err == nil {
				pending.Add(1)
				toCommit <- sets
			}
			inserted <- err
		}
	}()
	defer func() {
		close(toInsert)
		insWG.Wait()
	}()

	cur, spare := &sinkBatch[T]{}, &sinkBatch[T]{}
	inFlight := false
	wait := func(ctx context.Context) error {
		if !inFlight {
			return nil
		}
		select {
		case err := <-inserted:
			inFlight = false
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	submit := func(ctx context.Context) error {
		if len(cur.items) == 0 {
			return nil
		}
		if err := wait(ctx); err != nil {
			return err
		}
		// The batch the inserter finished is free again.
		for _, c := range spare.chunks {
			release(c)
		}
		clear(spare.items)
		clear(spare.chunks)
		spare.items, spare.chunks, spare.bytes = spare.items[:0], spare.chunks[:0], 0
		select {
		case toInsert <- cur:
		case <-ctx.Done():
			return ctx.Err()
		}
		inFlight = true
		cur, spare = spare, cur
		return nil
	}
	// shutdown lets the batch in flight land and flushes the pending one
	// with a fresh deadline; failing loses nothing (uncommitted messages are
	// redelivered).
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), r.cfg.ShutdownTimeout)
		defer cancel()
		err := wait(sctx)
		if err == nil {
			if err = submit(sctx); err == nil {
				err = wait(sctx)
			}
		}
		if err != nil {
			r.log.Warn("final flush failed; its messages will be redelivered", "err", err)
		}
		return nil
	}
	stopAfter := func(err error) error {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return shutdown()
		}
		return err
	}

	// insertedNext follows the inserter's report err of its batch: rather
	// than idle until the next chunk, the inserter takes the batch that
	// waits, if it is worth an insert.
	insertedNext := func(err error) error {
		if err != nil {
			return err
		}
		if len(cur.items) >= r.cfg.EagerRows {
			return submit(ctx)
		}
		return nil
	}

	tick := time.NewTicker(min(r.cfg.FlushInterval/4+time.Millisecond, 250*time.Millisecond))
	defer tick.Stop()
	progress := newProgress(r.cfg.ProgressInterval)
	var lastDrainCheck time.Time
	drainTo, stop, err := targets.await(ctx, r.log)
	if stop {
		return err
	}
	drain := newDrainTracker(drainTo)
	checkDrained := func(now time.Time) bool {
		if drainTo == nil || len(cur.items) > 0 || inFlight || pending.Load() > 0 {
			return false
		}
		lastDrainCheck = now
		done, err := drained(ctx, r.client, r.cfg.GroupID, r.cfg.Topic, drainTo)
		if err != nil {
			r.log.Debug("checking drain progress", "err", err)
			return false
		}
		if done {
			r.log.Info("topic drained up to the high-water marks seen at start")
		}
		return done
	}
	for {
		select {
		case c, ok := <-fetched:
			if !ok {
				if ctx.Err() != nil {
					return shutdown()
				}
				return fmt.Errorf("fetch from %s: the consumer group was closed", r.cfg.Topic)
			}
			// While the decoders finish the chunk, the inserter may finish
			// its batch: it takes the next one at once.
			for decoded := false; !decoded; {
				select {
				case <-c.done:
					decoded = true
				case err := <-inserted:
					inFlight = false
					if err := insertedNext(err); err != nil {
						return stopAfter(err)
					}
				case <-ctx.Done():
					return shutdown()
				}
			}
			r.count(func(s *SinkStats) { s.Consumed += int64(len(c.items)) })
			r.m.consumed.Add(len(c.items))
			c.refs = 1
			for i := range c.items {
				it := &c.items[i]
				r.m.consumedB.Add(len(it.m.Value))
				r.m.observeLag(it.m.Partition, it.m.Offset, it.m.HighWaterMark)
				if len(cur.items) == 0 {
					cur.started = time.Now()
				}
				cur.items = append(cur.items, it)
				if n := len(cur.chunks); n == 0 || cur.chunks[n-1] != c {
					cur.chunks = append(cur.chunks, c)
					c.refs++
				}
				cur.bytes += len(it.m.Key) + len(it.m.Value)
				// As in Run: a batch goes when full, when the drain targets
				// are reached, or early when the inserter would idle.
				reached := drain.fetched(it.m.Partition, it.m.Offset)
				full := len(cur.items) >= r.cfg.BatchRows || cur.bytes >= r.cfg.BatchBytes
				eager := !inFlight && len(cur.items) >= r.cfg.EagerRows
				if reached || full || eager {
					if err := submit(ctx); err != nil {
						return stopAfter(err)
					}
				}
			}
			release(c)
		case err := <-inserted:
			inFlight = false
			if err := insertedNext(err); err != nil {
				return stopAfter(err)
			}
			if drain.reached() && checkDrained(time.Now()) {
				return nil
			}
		case <-committed:
			if drain.reached() && checkDrained(time.Now()) {
				return nil
			}
		case now := <-tick.C:
			if len(cur.items) > 0 && now.Sub(cur.started) >= r.cfg.FlushInterval {
				if err := submit(ctx); err != nil {
					return stopAfter(err)
				}
			}
			if progress.due(now) {
				s := r.snapshot()
				rate := float64(s.Consumed-progress.consumed) / now.Sub(progress.last).Seconds()
				r.log.Info("ingest progress", "msgs_per_s", int64(rate), "consumed", s.Consumed, "lag", r.m.Lag(),
					"rows", s.Rows, "dead_lettered", s.DeadLettered)
				progress.last, progress.consumed = now, s.Consumed
			}
			if now.Sub(lastDrainCheck) >= drainCheckEvery && checkDrained(now) {
				return nil
			}
		case <-ctx.Done():
			return shutdown()
		}
	}
}

// chunker is the partitionSink of one partition of one generation: it
// fills chunks and hands each to the loop (fetched, in fetch order) and to
// a decoder (work).
type chunker[T any] struct {
	stop          context.Context
	gen           *generation
	fetched, work chan<- *sinkChunk[T]
	free          <-chan *sinkChunk[T]
	cur           *sinkChunk[T]
}

func (c *chunker[T]) add(m kafka.Message) bool {
	if c.cur == nil {
		select {
		case c.cur = <-c.free:
			clear(c.cur.items)
			c.cur.items = c.cur.items[:0]
		default:
			c.cur = &sinkChunk[T]{items: make([]sinkItem[T], 0, fetchChunk)}
		}
		c.cur.done = make(chan struct{})
	}
	// The item is filled in place: the chunk's items are zero past its
	// length (cleared on reuse) and it never grows past fetchChunk, so
	// this writes two fields rather than copying a whole item (message,
	// decoded value, row) into it.
	n := len(c.cur.items)
	c.cur.items = c.cur.items[:n+1]
	it := &c.cur.items[n]
	it.m, it.gen = m, c.gen
	if len(c.cur.items) >= fetchChunk {
		return c.flush()
	}
	return true
}

// flush hands the chunk over, unless the fetch stops or the generation
// ends first (then the chunk is dropped: nothing of it was committed, so
// its messages are fetched again).
func (c *chunker[T]) flush() bool {
	if c.cur == nil || len(c.cur.items) == 0 {
		return true
	}
	select {
	case c.fetched <- c.cur:
	case <-c.stop.Done():
		return false
	case <-c.gen.ctx.Done():
		return false
	}
	c.work <- c.cur // never blocks for long: decoders drain work until it is closed
	c.cur = nil
	return true
}

// prepare checks the decoded items of a chunk and builds the rows of
// those accepted, in the decoder that decoded them, so that checking and
// building rows overlap the insert of the batch before (the inserter only
// inserts). A refused item gets the refusal as its err and is
// dead-lettered like an undecodable one. When Check fails (the store
// cannot be asked, or the fetch is stopping), the items stay unchecked and
// flush checks them with the rest of their batch, retrying. buf is scratch
// space, returned for reuse.
func (r *sinkRun[T]) prepare(ctx context.Context, items []sinkItem[T], buf []T) []T {
	clear(buf)
	buf = buf[:0]
	for i := range items {
		if items[i].err == nil {
			buf = append(buf, items[i].item)
		}
	}
	if len(buf) == 0 {
		return buf
	}
	verdicts, err := r.sink.Check(ctx, buf)
	if err != nil || len(verdicts) != len(buf) {
		return buf
	}
	accepted := buf[:0] // compacted in place: k only grows
	k := 0
	for i := range items {
		it := &items[i]
		if it.err != nil {
			continue
		}
		if verdicts[k] != nil {
			it.err = verdicts[k]
		} else {
			accepted = append(accepted, buf[k])
		}
		k++
	}
	if len(accepted) == 0 {
		return buf
	}
	rows := r.sink.Rows(accepted, r.cfg.Now())
	if len(rows) != len(accepted) {
		return buf // flush reports the sink's bug
	}
	k = 0
	for i := range items {
		if it := &items[i]; it.err == nil {
			it.row = rows[k]
			k++
		}
	}
	return buf
}

// flush dead-letters the batch's undecodable messages and those the sink's
// check refuses, inserts the rows of the others (dead-lettering those the
// store refuses for good), and returns the offsets whose commit commits
// the whole batch (the committer's job, once flush has returned).
// Dead-letter writes precede the commit, so a crash in between only
// repeats some of them. Items the decoders could not check (prepare) are
// checked here.
func (r *sinkRun[T]) flush(ctx context.Context, b *sinkBatch[T]) ([]commitSet, error) {
	load := make([]int, 0, len(b.items))
	rows := make([][]any, 0, len(b.items))
	var unchecked []int
	var items []T
	var dead []deadLetter
	for i, it := range b.items {
		switch {
		case it.err != nil:
			dead = append(dead, deadLetter{it.m, it.err})
		case it.row != nil:
			load = append(load, i)
			rows = append(rows, it.row)
		default:
			unchecked = append(unchecked, i)
			items = append(items, it.item)
		}
	}
	if len(items) > 0 {
		var verdicts []error
		err := r.retry(ctx, "check "+r.sink.Table()+" batch", 0, func(ctx context.Context) error {
			var err error
			verdicts, err = r.sink.Check(ctx, items)
			if err == nil && len(verdicts) != len(items) {
				// A sink bug: never load unchecked rows.
				return fmt.Errorf("check returned %d verdicts for %d items", len(verdicts), len(items))
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		// Keep the accepted items and their indexes, in place.
		idx := unchecked[:0]
		accepted := items[:0]
		for k, i := range unchecked {
			if verdicts[k] != nil {
				dead = append(dead, deadLetter{b.items[i].m, verdicts[k]})
				continue
			}
			idx = append(idx, i)
			accepted = append(accepted, items[k])
		}
		if len(accepted) > 0 {
			more := r.sink.Rows(accepted, r.cfg.Now())
			if len(more) != len(accepted) {
				return nil, fmt.Errorf("sink built %d rows for %d items", len(more), len(accepted))
			}
			load, rows = append(load, idx...), append(rows, more...)
		}
	}
	if len(rows) > 0 {
		if err := r.sinkDeadLetters(ctx, dead); err != nil {
			return nil, err
		}
		dead = nil
		if err := r.insertSettle(ctx, b, load, rows, r.cfg.UnclassifiedAttempts); err != nil {
			return nil, err
		}
	}
	if err := r.sinkDeadLetters(ctx, dead); err != nil {
		return nil, err
	}
	return commitSets(b.items), nil
}

// commitSet is what to commit through one generation: partition → the
// next offset to read.
type commitSet struct {
	gen     *generation
	offsets map[int]int64
}

// commitSets are the commits that commit items: per generation that
// fetched some (usually one; two across a rebalance), each partition's
// offset past its last item.
func commitSets[T any](items []*sinkItem[T]) []commitSet {
	var sets []commitSet
	k := -1 // the set of the previous item's generation
	for _, it := range items {
		if k < 0 || sets[k].gen != it.gen {
			k = slices.IndexFunc(sets, func(s commitSet) bool { return s.gen == it.gen })
			if k < 0 {
				sets = append(sets, commitSet{gen: it.gen, offsets: map[int]int64{}})
				k = len(sets) - 1
			}
		}
		if next := it.m.Offset + 1; next > sets[k].offsets[it.m.Partition] {
			sets[k].offsets[it.m.Partition] = next
		}
	}
	return sets
}

// insertSettle inserts rows (those of the messages idx of b) and, when the
// store refuses them for good, finds the messages at fault: the row a
// store.RowError names, every message for an error about the statement (a
// column the table lacks), else by bisection (k bad rows among n cost
// about 2k·log2(n) inserts). Those are dead-lettered with reason
// store_rejected and the rest is inserted.
func (r *sinkRun[T]) insertSettle(ctx context.Context, b *sinkBatch[T], idx []int, rows [][]any, unknownAttempts int) error {
	if len(rows) == 0 {
		return nil
	}
	err := r.insertTable(ctx, rows, unknownAttempts)
	if err == nil {
		r.rowsM.Add(len(rows))
		r.count(func(s *SinkStats) { s.Rows += int64(len(rows)) })
		return nil
	}
	var ie *insertError
	if !errors.As(err, &ie) {
		return err // ctx ended
	}
	var re *store.RowError
	switch {
	case ie.scope == scopeRow && errors.As(ie, &re) && re.Row >= 0 && re.Row < len(rows):
		if err := r.sinkDeadLetter(ctx, b.items[idx[re.Row]].m, Reject(ReasonStoreRejected, ie)); err != nil {
			return err
		}
		// Full slice expressions: the appends copy instead of shifting
		// the caller's slices.
		return r.insertSettle(ctx, b, append(idx[:re.Row:re.Row], idx[re.Row+1:]...),
			append(rows[:re.Row:re.Row], rows[re.Row+1:]...), 1)
	case ie.scope == scopeStatement || len(rows) == 1:
		for _, i := range idx {
			if err := r.sinkDeadLetter(ctx, b.items[i].m, Reject(ReasonStoreRejected, ie)); err != nil {
				return err
			}
		}
		return nil
	}
	// An unclassified error has persisted already: the halves try once.
	half := len(rows) / 2
	if err := r.insertSettle(ctx, b, idx[:half], rows[:half], 1); err != nil {
		return err
	}
	return r.insertSettle(ctx, b, idx[half:], rows[half:], 1)
}

// insertTable inserts rows into the sink's table, retrying temporary
// errors with backoff until ctx ends and unclassified ones up to
// unknownAttempts times. It returns ctx's error or an *insertError.
func (r *sinkRun[T]) insertTable(ctx context.Context, rows [][]any, unknownAttempts int) error {
	table := r.sink.Table()
	backoff := 100 * time.Millisecond
	unknown := 0
	for n := 1; ; n++ {
		err := r.st.Insert(ctx, table, r.sink.Columns(), rows)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("insert %s: %w", table, ctx.Err())
		}
		class, scope := classify(err)
		r.m.insertErrors(class).Inc()
		if class == classUnknown {
			unknown++
		}
		if class == classPermanent || (class == classUnknown && unknown >= unknownAttempts) {
			return &insertError{table: table, class: class, scope: scope, err: err}
		}
		r.m.retries.Inc()
		r.log.Warn("insert failed; retrying", "table", table, "class", class, "attempt", n, "backoff", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("insert %s: %w", table, ctx.Err())
		}
		backoff = min(2*backoff, r.cfg.RetryBackoffMax)
	}
}

// deadLetter is a message to dead-letter and why.
type deadLetter struct {
	m     kafka.Message
	cause error
}

// reasonOf is the dead-letter reason of cause: a *Rejection's, else
// ReasonInvalid.
func reasonOf(cause error) string {
	var rej *Rejection
	if errors.As(cause, &rej) {
		return rej.Reason
	}
	return ReasonInvalid
}

// sinkDeadLetter writes m to the DLQ with the reason of cause.
func (r *sinkRun[T]) sinkDeadLetter(ctx context.Context, m kafka.Message, cause error) error {
	if err := r.writeDLQ(ctx, m, reasonOf(cause), cause); err != nil {
		return err
	}
	r.count(func(s *SinkStats) { s.DeadLettered++ })
	return nil
}

// sinkDeadLetters writes a batch's refused messages to the DLQ in one
// request, retried until it succeeds or ctx ends (they are committed with
// the batch, so they must not be lost): a storm of refusals (automation
// reporting for a plan that does not exist) costs one round trip per
// batch, not one per message. One warning per reason is logged.
func (r *sinkRun[T]) sinkDeadLetters(ctx context.Context, dead []deadLetter) error {
	if len(dead) == 0 {
		return nil
	}
	recs := make([]kafka.Message, len(dead))
	byReason := map[string]int{}
	first := map[string]deadLetter{}
	for i, d := range dead {
		reason := reasonOf(d.cause)
		recs[i] = r.dlqRecord(d.m, reason, d.cause)
		if byReason[reason]++; byReason[reason] == 1 {
			first[reason] = d
		}
	}
	for reason, n := range byReason {
		d := first[reason]
		r.log.Warn("dead-lettering messages", "reason", reason, "messages", n,
			"first_partition", d.m.Partition, "first_offset", d.m.Offset, "first_err", d.cause)
	}
	err := r.retry(ctx, "dead-letter write", 0, func(ctx context.Context) error {
		return r.dlq.WriteMessages(ctx, recs...)
	})
	if err != nil {
		return err
	}
	for reason, n := range byReason {
		r.m.deadLettered(reason).Add(n)
	}
	r.count(func(s *SinkStats) { s.DeadLettered += int64(len(dead)) })
	return nil
}
