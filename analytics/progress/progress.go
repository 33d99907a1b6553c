// Package progress logs how far a long stage has got: units done of a
// total, units per second and the time left. A stage that ends within the
// interval logs nothing; a longer one logs a line per interval even while
// one long statement runs (nothing is counted then, but the elapsed time
// and the current step still show that it is alive).
package progress

import (
	"log/slog"
	"math"
	"sync"
	"time"
)

// DefaultEvery is the interval between progress lines.
const DefaultEvery = 5 * time.Second

// Config configures a Meter. Zero values are defaults.
type Config struct {
	// Log receives the lines, at Info. Default: slog.Default().
	Log *slog.Logger
	// Stage names the work in each line ("refresh", "export").
	Stage string
	// Unit names what is counted ("hosts", "rows").
	Unit string
	// Total is how many units the stage will do; 0 when unknown (no ETA).
	Total int64
	// Every is the interval between lines. Default DefaultEvery; negative
	// turns the lines off.
	Every time.Duration
}

// Meter counts a stage's progress and logs it every interval until Stop.
// Its methods are safe for concurrent use.
type Meter struct {
	cfg     Config
	started time.Time
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	mu    sync.Mutex
	n     int64
	total int64
	step  string
}

// Start begins counting and logging.
func Start(cfg Config) *Meter {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Every == 0 {
		cfg.Every = DefaultEvery
	}
	m := &Meter{cfg: cfg, started: time.Now(), total: cfg.Total, stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.Every < 0 {
		close(m.done)
		return m
	}
	go m.loop()
	return m
}

func (m *Meter) loop() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			m.log(now)
		}
	}
}

// Add counts n more units done.
func (m *Meter) Add(n int64) {
	m.mu.Lock()
	m.n += n
	m.mu.Unlock()
}

// SetTotal sets how many units the stage will do, once it is known.
func (m *Meter) SetTotal(total int64) {
	m.mu.Lock()
	m.total = total
	m.mu.Unlock()
}

// Step names what the stage is doing now; it is shown in each line.
func (m *Meter) Step(name string) {
	m.mu.Lock()
	m.step = name
	m.mu.Unlock()
}

// Stop ends the logging. It returns once no line can follow, and may be
// called more than once.
func (m *Meter) Stop() {
	m.once.Do(func() { close(m.stop) })
	<-m.done
}

// Snapshot is what a progress line reports.
type Snapshot struct {
	Done, Total int64
	Elapsed     time.Duration
	PerSecond   float64
	// ETA is the time left at the average rate so far; 0 when the total
	// or the rate is unknown.
	ETA time.Duration
}

// At computes the line's figures as of now.
func (m *Meter) At(now time.Time) Snapshot {
	m.mu.Lock()
	done, total := m.n, m.total
	m.mu.Unlock()
	s := Snapshot{Done: done, Total: total, Elapsed: now.Sub(m.started)}
	if secs := s.Elapsed.Seconds(); secs > 0 {
		s.PerSecond = float64(done) / secs
	}
	if total > done && s.PerSecond > 0 {
		s.ETA = time.Duration(float64(total-done) / s.PerSecond * float64(time.Second))
	}
	return s
}

func (m *Meter) log(now time.Time) {
	s := m.At(now)
	m.mu.Lock()
	step := m.step
	m.mu.Unlock()
	attrs := []any{"stage", m.cfg.Stage, m.cfg.Unit, s.Done}
	if s.Total > 0 {
		attrs = append(attrs, "of", s.Total)
	}
	attrs = append(attrs, m.cfg.Unit+"_per_s", math.Round(s.PerSecond*100)/100)
	if s.ETA > 0 {
		attrs = append(attrs, "eta", s.ETA.Round(time.Second))
	}
	attrs = append(attrs, "elapsed", s.Elapsed.Round(time.Second))
	if step != "" {
		attrs = append(attrs, "step", step)
	}
	m.cfg.Log.Info(m.cfg.Stage+" progress", attrs...)
}
