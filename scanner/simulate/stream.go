package simulate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/patchgrid/patchgrid/schemas/inventory"
)

// Message is one scan message as published: keyed by host id, so one
// host's scans stay ordered within a partition.
type Message struct {
	Key   []byte
	Value []byte
}

// Sink receives the stream in order, a batch at a time. Send must not keep
// the batch after it returns.
type Sink interface {
	Send(ctx context.Context, batch []Message) error
}

// RunOptions control pacing and reporting; they never change the stream.
type RunOptions struct {
	// Rate caps messages per second (0: unlimited), with ±20% jitter.
	Rate float64
	// BatchSize is how many messages go to the sink at once. Default 500.
	BatchSize int
	// ProgressInterval is how often progress is logged. Default 10s;
	// negative disables.
	ProgressInterval time.Duration
	// OnScan, when set, sees every scan before it is encoded (tests use it
	// to record what was sent). It must not modify the scan: its Packages may
	// be shared with other scans of the run.
	OnScan func(day int, s *inventory.Scan)
}

// Summary counts a run's stream.
type Summary struct {
	Messages   int64
	FullScans  int64
	Heartbeats int64
	Bytes      int64
	// PackageSets is the number of distinct inventory hashes sent.
	PackageSets int
}

// Run generates the timeline day by day (each day: every scan slot, every
// host in index order) and sends it to sink. A host's first scan of a day
// is a full scan when its package list changed since its last full scan
// (always on day 0); every other scan is a heartbeat repeating that hash.
func (f *Fleet) Run(ctx context.Context, sink Sink, opt RunOptions) (Summary, error) {
	cfg := f.cfg
	if opt.BatchSize <= 0 {
		opt.BatchSize = 500
	}
	if opt.ProgressInterval == 0 {
		opt.ProgressInterval = 10 * time.Second
	}
	log := cfg.Logger.With("component", "simulate")
	pacer := newPacer(opt.Rate, cfg.Seed)
	var (
		sum      Summary
		lastKey  = make([]string, len(f.Endpoints))
		lastHash = make([]string, len(f.Endpoints))
		// Hosts in the same state share one hash: most of a fleet does.
		hashOf = map[string]string{}
		// ... and one package list, shared read-only by their scans:
		// rebuilding ~750 packages per full scan was a third of the
		// publish CPU at 100,000 endpoints, plus the GC it caused. Drift
		// makes thousands of distinct lists in a large fleet, so only the
		// first maxSharedLists states keep theirs; the rest are rebuilt.
		listOf  = map[string][]inventory.Package{}
		total   = int64(len(f.Endpoints)) * int64(cfg.Days) * int64(cfg.ScansPerDay)
		started = time.Now()
		lastLog = started
	)
	// Encoding dominates (a full scan of ~700 packages costs about a
	// millisecond: interning plus zstd), so each batch is encoded by all
	// cores, while the previous batch is being sent: the sink (a Kafka
	// producer waiting for acks) would otherwise leave the cores idle. The
	// output order, and so the stream, depends on neither.
	workers := runtime.GOMAXPROCS(0)
	encs := make([]inventory.Encoder, workers)
	// Hosts in the same state send the same package set: its compressed
	// section is built once and then copied (a few microseconds instead
	// of most of a millisecond per full scan). 256 MiB holds ~12,000
	// sets of 750 packages; beyond that, sets are compressed afresh.
	sections := inventory.NewSectionCache(256 << 20)
	for w := range encs {
		// Every hash comes from HashPackages over the very list sent
		// (hashOf below): re-verifying it per scan would be a quarter of
		// the encoding cost.
		encs[w].TrustHash = true
		encs[w].Sections = sections
	}
	snd := newSender(ctx, sink, opt.BatchSize)
	stopped := false
	defer func() {
		if !stopped {
			snd.stop() // an error return already carries the cause
		}
	}()
	var pending []inventory.Scan
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		batch, err := snd.buffer()
		if err != nil {
			return err
		}
		batch = batch[:len(pending)]
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := w; j < len(pending); j += workers {
					v, err := encs[w].Append(nil, &pending[j])
					if err != nil {
						errs[w] = fmt.Errorf("simulate: encode scan %s: %w", pending[j].ScanID, err)
						return
					}
					batch[j] = Message{Key: []byte(pending[j].HostID), Value: v}
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		for _, m := range batch {
			sum.Bytes += int64(len(m.Value))
		}
		sum.Messages += int64(len(batch))
		clear(pending)
		pending = pending[:0]
		if err := pacer.wait(ctx, len(batch)); err != nil {
			return err
		}
		return snd.send(batch)
	}
	slot := 24 * time.Hour / time.Duration(cfg.ScansPerDay)
	for d := 0; d < cfg.Days; d++ {
		for k := 0; k < cfg.ScansPerDay; k++ {
			for i := range f.Endpoints {
				if err := ctx.Err(); err != nil {
					return sum, err
				}
				e := &f.Endpoints[i]
				b := &f.Bases[e.Base]
				s := inventory.Scan{
					HostID:        e.HostID,
					ScanID:        fmt.Sprintf("%s-d%05d-s%04d", e.HostID, d, k),
					ScannedAt:     cfg.Start.Add(time.Duration(d)*24*time.Hour + time.Duration(k)*slot + e.ScanOffset),
					Hostname:      e.Hostname,
					OS:            b.OS,
					KernelRunning: b.KernelRunning,
					Meta:          e.Meta,
				}
				if b.KernelRunning != "" {
					s.KernelsInstalled = []string{b.KernelRunning}
				}
				heartbeat := true
				if k == 0 {
					st := f.stateOn(e, d)
					key := st.key()
					if key != lastKey[i] {
						pkgs, ok := listOf[key]
						if !ok {
							pkgs = f.packages(st)
							if len(listOf) < maxSharedLists {
								listOf[key] = pkgs
							}
						}
						h, ok := hashOf[key]
						if !ok {
							h = inventory.HashPackages(pkgs)
							hashOf[key] = h
						}
						lastKey[i], lastHash[i] = key, h
						s.Packages, s.InventoryHash = pkgs, h
						heartbeat = false
					}
				}
				if heartbeat {
					s.Heartbeat, s.InventoryHash = true, lastHash[i]
					sum.Heartbeats++
				} else {
					sum.FullScans++
				}
				if opt.OnScan != nil {
					opt.OnScan(d, &s)
				}
				pending = append(pending, s)
				if len(pending) == opt.BatchSize {
					if err := flush(); err != nil {
						return sum, err
					}
					if now := time.Now(); opt.ProgressInterval > 0 && now.Sub(lastLog) >= opt.ProgressInterval {
						lastLog = now
						logProgress(log, sum.Messages, total, started, now)
					}
				}
			}
		}
	}
	if err := flush(); err != nil {
		return sum, err
	}
	stopped = true
	if err := snd.stop(); err != nil {
		return sum, err
	}
	hashes := map[string]bool{}
	for _, h := range hashOf {
		hashes[h] = true
	}
	sum.PackageSets = len(hashes)
	log.Info("simulation published", "messages", sum.Messages, "full_scans", sum.FullScans,
		"heartbeats", sum.Heartbeats, "bytes", sum.Bytes, "package_sets", sum.PackageSets,
		"seconds", time.Since(started).Seconds())
	return sum, nil
}

// maxSharedLists bounds the package lists Run keeps for reuse (about
// 100 KB each for a 750-package host).
const maxSharedLists = 1024

// sender hands encoded batches to the sink from a goroutine of its own, in
// order, so that encoding the next batch overlaps sending this one. Two
// buffers circulate: memory stays at two batches.
type sender struct {
	ctx    context.Context
	cancel context.CancelFunc
	full   chan []Message
	free   chan []Message
	done   chan struct{}

	mu  sync.Mutex
	err error // the first Send error
}

func newSender(ctx context.Context, sink Sink, batchSize int) *sender {
	ctx, cancel := context.WithCancel(ctx)
	s := &sender{ctx: ctx, cancel: cancel, full: make(chan []Message, 1), free: make(chan []Message, 2), done: make(chan struct{})}
	s.free <- make([]Message, 0, batchSize)
	s.free <- make([]Message, 0, batchSize)
	go func() {
		defer close(s.done)
		for b := range s.full {
			if ctx.Err() == nil {
				if err := sink.Send(ctx, b); err != nil {
					s.mu.Lock()
					s.err = fmt.Errorf("simulate: send %d messages: %w", len(b), err)
					s.mu.Unlock()
					cancel() // unblocks buffer and send; later batches are dropped
				}
			}
			clear(b)
			s.free <- b[:0]
		}
	}()
	return s
}

// buffer waits for a free batch buffer.
func (s *sender) buffer() ([]Message, error) {
	select {
	case b := <-s.free:
		return b, nil
	case <-s.ctx.Done():
		return nil, s.failure()
	}
}

// send queues b for the sink.
func (s *sender) send(b []Message) error {
	select {
	case s.full <- b:
		return nil
	case <-s.ctx.Done():
		return s.failure()
	}
}

// failure is why the sender's context ended: a Send error, else the run's.
func (s *sender) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return s.ctx.Err()
}

// stop waits until everything queued is sent (or dropped after a failure)
// and returns the first Send error, or the context's when the run was
// cancelled with batches unsent. Call it once, from the goroutine that
// sends.
func (s *sender) stop() error {
	close(s.full)
	<-s.done
	err := s.failure()
	s.cancel()
	return err
}

func logProgress(log interface {
	Info(string, ...any)
}, done, total int64, started, now time.Time) {
	elapsed := now.Sub(started).Seconds()
	rate := float64(done) / elapsed
	eta := time.Duration(float64(total-done)/rate) * time.Second
	log.Info("simulate progress", "scans", done, "of", total, "endpoint_scans_per_s", int64(rate), "eta", eta.Round(time.Second))
}

// pacer holds a stream to a rate with jitter. Its random source is its own:
// pacing never changes what is sent.
type pacer struct {
	rate  float64
	rng   *rand.Rand
	next  time.Time
	sleep func(context.Context, time.Duration) error
}

func newPacer(rate float64, seed uint64) *pacer {
	return &pacer{rate: rate, rng: rand.New(rand.NewPCG(seed, 1)), sleep: sleepCtx}
}

func (p *pacer) wait(ctx context.Context, n int) error {
	if p.rate <= 0 {
		return nil
	}
	now := time.Now()
	if p.next.IsZero() || p.next.Before(now.Add(-time.Second)) {
		p.next = now // no bursts to catch up after a stall longer than 1s
	}
	if d := p.next.Sub(now); d > 0 {
		if err := p.sleep(ctx, d); err != nil {
			return err
		}
	}
	jitter := 0.8 + 0.4*p.rng.Float64()
	p.next = p.next.Add(time.Duration(float64(n) / p.rate * jitter * float64(time.Second)))
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WriterSink writes each message as uvarint(len key) key uvarint(len value)
// value: the --dry-run output, and what determinism tests hash.
type WriterSink struct{ W io.Writer }

func (s WriterSink) Send(_ context.Context, batch []Message) error {
	var buf []byte
	for _, m := range batch {
		buf = binary.AppendUvarint(buf, uint64(len(m.Key)))
		buf = append(buf, m.Key...)
		buf = binary.AppendUvarint(buf, uint64(len(m.Value)))
		buf = append(buf, m.Value...)
	}
	_, err := s.W.Write(buf)
	return err
}
