package consumer

// The group fetch: how a sink reads its topic. kafka-go's Reader hands
// each message from its partition goroutine to the caller through a
// channel, one at a time, and copies it twice on the way; for messages of
// a few hundred bytes that cost about as much CPU as decoding them (a
// third of the outcome consumer's CPU time in the bench profile). Here
// the same consumer-group protocol (kafka.ConsumerGroup: join, sync,
// heartbeats, leaving the group on Close) assigns the partitions, and one
// goroutine per assigned partition reads whole fetch responses (up to
// fetchMaxBytes) from the partition leader with Conn.ReadBatch, appending
// messages straight into the chunks the decoders take.
//
// Commits go through the generation that fetched the messages
// (Generation.CommitOffsets), after the insert as before. A rebalance ends
// the generation: its partition goroutines stop, and commits of its
// messages still in the pipeline are refused by the coordinator (a
// stale generation) and dropped; those messages are fetched again by
// whichever member owns their partition now, and their rows, stored once
// already, replace themselves. Nothing is committed that was not stored.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/segmentio/kafka-go"
)

const (
	// fetchMaxBytes bounds one fetch response of one partition: large,
	// so that a backlog comes in a few round trips (a 200,000-outcome
	// topic of 4 partitions in one fetch each).
	fetchMaxBytes = 16 << 20
	// fetchReadTimeout bounds the wait for the next bytes of a fetch
	// response, renewed every fetchDeadlineEvery messages. Reading pauses
	// while the pipeline is full (the store being slow); a pause longer
	// than this only costs a reconnect and a fetch of the same offsets.
	fetchReadTimeout   = time.Minute
	fetchDeadlineEvery = 256
	// fetchDialTimeout bounds connecting to a partition's leader and
	// finding its offsets.
	fetchDialTimeout = 10 * time.Second
)

// generation is a consumer-group generation of this member; ctx is done
// when it ends (a rebalance, the broker lost, or the group closed).
type generation struct {
	*kafka.Generation
	ctx context.Context
}

func (g *generation) live() bool { return g.ctx.Err() == nil }

// partitionSink receives the messages of one partition of one generation,
// in offset order, from that partition's goroutine.
type partitionSink interface {
	// add takes m; false means stop fetching (the fetch is being
	// stopped). m is passed by value: behind a pointer it escaped to the
	// heap, an allocation of 150 bytes per message for the collector.
	add(m kafka.Message) bool
	// flush hands over what add buffered: the fetch response is
	// exhausted, nothing more is there right now. false: stop fetching.
	flush() bool
}

// groupFetch is this member's view of the group: it joins cfg.GroupID for
// cfg.Topic and fetches the partitions each generation assigns it.
type groupFetch struct {
	cfg     Config
	dialer  *kafka.Dialer
	group   *kafka.ConsumerGroup
	log     *slog.Logger
	retries *metrics.Counter
}

// newGroupFetch prepares the group membership; joining happens in run.
// Close must be called to leave the group.
func newGroupFetch(ctx context.Context, cfg Config, dialer *kafka.Dialer, log *slog.Logger, retries *metrics.Counter) (*groupFetch, error) {
	kafkaLog := log.With("source", "kafka-go")
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:               cfg.GroupID,
		Brokers:          cfg.Brokers,
		Dialer:           dialer,
		Topics:           []string{cfg.Topic},
		SessionTimeout:   cfg.SessionTimeout,
		RebalanceTimeout: cfg.RebalanceTimeout,
		StartOffset:      kafka.FirstOffset,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			kafkaLog.Log(ctx, kafkaErrorLevel(args), fmt.Sprintf(msg, args...))
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("consumer group %s of topic %s: %w", cfg.GroupID, cfg.Topic, err)
	}
	return &groupFetch{cfg: cfg, dialer: dialer, group: group, log: log, retries: retries}, nil
}

// Close leaves the group (its partitions go to other members at once) and
// ends the current generation: commits through it fail from then on.
func (f *groupFetch) Close() error { return f.group.Close() }

// run takes part in the group's generations and fetches each one's
// partitions into the sinks newSink makes, until stop ends; it returns
// once no partition goroutine can call a sink any more. The generation
// stays live after run returns (until a rebalance or Close), so that the
// messages fetched last can still be committed.
func (f *groupFetch) run(stop context.Context, newSink func(g *generation, partition int) partitionSink) {
	backoff := 100 * time.Millisecond
	for stop.Err() == nil {
		kg, err := f.group.Next(stop)
		if err != nil {
			if stop.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return
			}
			// The coordinator is unreachable or the group rebalancing:
			// the group rejoins by itself.
			f.retries.Inc()
			f.log.Warn("joining the consumer group failed; retrying", "backoff", backoff, "err", err)
			sleepCtx(stop, backoff)
			backoff = min(2*backoff, f.cfg.RetryBackoffMax)
			continue
		}
		backoff = 100 * time.Millisecond
		live, ended := context.WithCancel(context.Background())
		g := &generation{Generation: kg, ctx: live}
		assigned := kg.Assignments[f.cfg.Topic]
		parts := make([]int, len(assigned))
		for i, pa := range assigned {
			parts[i] = pa.ID
		}
		f.log.Debug("generation joined", "generation", kg.ID, "partitions", parts)
		g.Start(func(kctx context.Context) {
			<-kctx.Done()
			ended()
		})
		// fetching counts partition goroutines that may still call their
		// sink; each then waits for the generation's end, so that the
		// generation, and with it commits, outlives the fetch.
		fetching := make(chan struct{}, len(assigned))
		for _, pa := range assigned {
			sink := newSink(g, pa.ID)
			g.Start(func(gctx context.Context) {
				f.fetchPartition(gctx, stop, pa, sink)
				fetching <- struct{}{}
				<-gctx.Done()
			})
		}
		// Partition goroutines stop fetching when the generation ends or
		// stop does; then the group starts the next generation, or run
		// returns.
		select {
		case <-g.ctx.Done():
		case <-stop.Done():
		}
		for range assigned {
			<-fetching
		}
	}
}

// fetchPartition fetches pa's partition from its assigned offset into
// sink until the generation ends or stop does. Failures (the leader
// moved, the broker down, a timeout) reconnect with backoff from the next
// offset not yet handed to sink.
func (f *groupFetch) fetchPartition(gctx, stop context.Context, pa kafka.PartitionAssignment, sink partitionSink) {
	ctx, cancel := context.WithCancel(gctx)
	defer cancel()
	defer context.AfterFunc(stop, cancel)()
	offset := pa.Offset
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, start, err := f.connect(ctx, pa.ID, offset)
		if err == nil {
			offset = start
			// Closing the connection ends a read blocked in it.
			unblock := context.AfterFunc(ctx, func() { conn.Close() })
			var n int
			offset, n, err = f.readBatches(ctx, conn, offset, sink)
			unblock()
			conn.Close()
			if n > 0 {
				backoff = 100 * time.Millisecond
			}
		}
		if ctx.Err() != nil || err == nil {
			return
		}
		f.retries.Inc()
		lvl := slog.LevelWarn
		if isTimeout(err) {
			lvl = slog.LevelDebug
		}
		f.log.Log(ctx, lvl, "fetch failed; reconnecting", "partition", pa.ID, "offset", offset, "backoff", backoff, "err", err)
		sleepCtx(ctx, backoff)
		backoff = min(2*backoff, f.cfg.RetryBackoffMax)
	}
}

// connect dials the leader of partition and positions the connection at
// offset: the first offset kept for kafka.FirstOffset (no commit yet) or
// an offset the retention dropped, the end for one past it.
func (f *groupFetch) connect(ctx context.Context, partition int, offset int64) (*kafka.Conn, int64, error) {
	dctx, cancel := context.WithTimeout(ctx, fetchDialTimeout)
	defer cancel()
	var errs []error
	for _, broker := range f.cfg.Brokers {
		conn, err := f.dialer.DialLeader(dctx, "tcp", broker, f.cfg.Topic, partition)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		conn.SetDeadline(time.Now().Add(fetchDialTimeout))
		first, last, err := conn.ReadOffsets()
		if err == nil {
			switch {
			case offset == kafka.FirstOffset || offset < first:
				offset = first
			case offset == kafka.LastOffset || offset > last:
				offset = last
			}
			offset, err = conn.Seek(offset, kafka.SeekAbsolute)
		}
		if err != nil {
			conn.Close()
			return nil, 0, fmt.Errorf("offsets of %s/%d: %w", f.cfg.Topic, partition, err)
		}
		conn.SetDeadline(time.Time{})
		return conn, offset, nil
	}
	return nil, 0, fmt.Errorf("connect to the leader of %s/%d: %w", f.cfg.Topic, partition, errors.Join(errs...))
}

// readBatches reads fetch responses from conn into sink until ctx ends,
// sink says stop (nil error both), or a read fails. It returns the next
// offset to fetch and how many messages it handed over.
func (f *groupFetch) readBatches(ctx context.Context, conn *kafka.Conn, offset int64, sink partitionSink) (int64, int, error) {
	n := 0
	for ctx.Err() == nil {
		// The broker answers within MaxWait even when there is nothing
		// new; the deadline covers the response's transfer.
		conn.SetReadDeadline(time.Now().Add(f.cfg.MaxWait + fetchReadTimeout))
		b := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: fetchMaxBytes, MaxWait: f.cfg.MaxWait})
		for i := 1; ; i++ {
			m, err := b.ReadMessage()
			if err != nil {
				break // io.EOF at the end of the response; Close reports the rest
			}
			offset = m.Offset + 1
			n++
			if !sink.add(m) {
				b.Close()
				return offset, n, nil
			}
			if i%fetchDeadlineEvery == 0 {
				conn.SetReadDeadline(time.Now().Add(fetchReadTimeout))
			}
		}
		if err := b.Close(); err != nil {
			return offset, n, fmt.Errorf("fetch %s/%d@%d: %w", f.cfg.Topic, b.Partition(), offset, err)
		}
		if !sink.flush() {
			return offset, n, nil
		}
	}
	return offset, n, nil
}

// commit commits offsets (partition → next offset to read) through g,
// retrying a few times while g lives. A commit of an ended generation is
// dropped: the coordinator refuses it, and its messages, stored already,
// are fetched again by the partitions' new owners.
func (f *groupFetch) commit(ctx context.Context, retry func(ctx context.Context, what string, attempts int, fn func(context.Context) error) error, g *generation, offsets map[int]int64) error {
	if !g.live() {
		f.log.Info("rebalanced before the commit; the stored messages will be fetched again", "generation", g.ID, "partitions", len(offsets))
		return nil
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A generation ending mid-retry makes further attempts pointless.
	stop := context.AfterFunc(g.ctx, cancel)
	defer stop()
	err := retry(cctx, "commit", 5, func(context.Context) error {
		return g.CommitOffsets(map[string]map[int]int64{f.cfg.Topic: offsets})
	})
	if err != nil && !g.live() {
		f.log.Info("rebalanced during the commit; the stored messages will be fetched again", "generation", g.ID, "err", err)
		return nil
	}
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
