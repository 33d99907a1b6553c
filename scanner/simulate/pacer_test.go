package simulate

import (
	"context"
	"testing"
	"time"
)

func TestPacerHoldsRate(t *testing.T) {
	p := newPacer(100, 1) // 100 msgs/s
	var last time.Duration
	p.sleep = func(_ context.Context, d time.Duration) error { last = d; return nil }
	for range 11 {
		if err := p.wait(context.Background(), 10); err != nil {
			t.Fatal(err)
		}
	}
	// Time never advances, so the 11th wait owes the ten batches before it:
	// 100 messages at 100/s is 1s, each interval jittered by ±20%.
	if last < 800*time.Millisecond || last > 1200*time.Millisecond {
		t.Errorf("11th wait %v, want about 1s", last)
	}
	unlimited := newPacer(0, 1)
	unlimited.sleep = func(context.Context, time.Duration) error { t.Fatal("unlimited pacer slept"); return nil }
	unlimited.wait(context.Background(), 1000)
}
