package progress

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name        string
		done, total int64
		elapsed     time.Duration
		rate        float64
		eta         time.Duration
	}{
		{"half done", 50, 100, 10 * time.Second, 5, 10 * time.Second},
		{"unknown total", 50, 0, 10 * time.Second, 5, 0},
		{"nothing done yet", 0, 100, 10 * time.Second, 0, 0},
		{"all done", 100, 100, 10 * time.Second, 10, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := Start(Config{Every: -1, Total: tc.total})
			defer m.Stop()
			m.Add(tc.done)
			s := m.At(m.started.Add(tc.elapsed))
			if s.Done != tc.done || s.Total != tc.total || s.PerSecond != tc.rate || s.ETA != tc.eta {
				t.Errorf("got %+v, want done %d of %d at %v/s, eta %v", s, tc.done, tc.total, tc.rate, tc.eta)
			}
		})
	}
}

// A stage shorter than the interval logs nothing; a longer one logs its
// count, rate, ETA and step.
func TestLines(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	m := Start(Config{Log: log, Stage: "refresh", Unit: "hosts", Total: 10, Every: time.Hour})
	m.Add(3)
	m.Stop()
	m.Stop()
	if buf.Len() != 0 {
		t.Errorf("a short stage logged %q", buf.String())
	}
	m = Start(Config{Log: log, Stage: "refresh", Unit: "hosts", Total: 1000, Every: 20 * time.Millisecond})
	m.Step("expose hosts, shard 1 of 4")
	m.Add(1)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "refresh progress") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	m.Stop()
	line := buf.String()
	for _, want := range []string{"stage=refresh", "hosts=1", "of=1000", "hosts_per_s=", "eta=", `step="expose hosts, shard 1 of 4"`} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %q", line, want)
		}
	}
}

// syncBuffer is a bytes.Buffer the meter's goroutine writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int { return len(s.String()) }
