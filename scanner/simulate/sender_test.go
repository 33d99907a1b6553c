package simulate_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/scanner/simulate"
)

// flakySink records batches, optionally slowly, and fails from batch failAt
// (counting from 1; 0 never fails).
type flakySink struct {
	delay   time.Duration
	failAt  int
	batches int
	msgs    []simulate.Message
}

var errSink = errors.New("sink refused the batch")

func (s *flakySink) Send(ctx context.Context, batch []simulate.Message) error {
	s.batches++
	if s.failAt > 0 && s.batches >= s.failAt {
		return errSink
	}
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, m := range batch {
		s.msgs = append(s.msgs, simulate.Message{Key: bytes.Clone(m.Key), Value: bytes.Clone(m.Value)})
	}
	return nil
}

// TestRunSendsInOrderAndReportsSinkErrors: sending overlaps encoding, which
// must change neither the stream's order nor the handling of a failing sink.
func TestRunSendsInOrderAndReportsSinkErrors(t *testing.T) {
	bases, ups := loadInputs(t)
	cfg := simulate.Config{Endpoints: 40, Days: 3, ScansPerDay: 2, Seed: 3}
	newFleet := func() *simulate.Fleet {
		f, err := simulate.NewFleet(cfg, bases, ups)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	ref := &recordingSink{}
	want, err := newFleet().Run(context.Background(), ref, simulate.RunOptions{BatchSize: 1000, ProgressInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		sink    *flakySink
		cancel  bool
		wantErr error // nil: the whole stream, in order
	}{
		{name: "slow sink", sink: &flakySink{delay: 5 * time.Millisecond}},
		{name: "first batch fails", sink: &flakySink{failAt: 1}, wantErr: errSink},
		{name: "a later batch fails", sink: &flakySink{failAt: 3}, wantErr: errSink},
		{name: "last batch fails", sink: &flakySink{failAt: int(want.Messages+6) / 7}, wantErr: errSink},
		{name: "cancelled", sink: &flakySink{delay: time.Hour}, cancel: true, wantErr: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			got, err := newFleet().Run(ctx, tc.sink, simulate.RunOptions{BatchSize: 7, ProgressInterval: -1})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Run: %v, want %v", err, tc.wantErr)
				}
				if errors.Is(err, errSink) && !strings.Contains(err.Error(), "send") {
					t.Fatalf("error %q does not say the send failed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Messages != want.Messages || len(tc.sink.msgs) != len(ref.msgs) {
				t.Fatalf("sent %d (summary %d), want %d", len(tc.sink.msgs), got.Messages, len(ref.msgs))
			}
			for i := range ref.msgs {
				if !bytes.Equal(tc.sink.msgs[i].Key, ref.msgs[i].Key) || !bytes.Equal(tc.sink.msgs[i].Value, ref.msgs[i].Value) {
					t.Fatalf("message %d differs from the reference stream", i)
				}
			}
		})
	}
}
