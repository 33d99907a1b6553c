package publish

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/kafkaconn"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func scan(host string, n int) *inventory.Scan {
	s := &inventory.Scan{
		HostID: host, ScanID: fmt.Sprintf("%s-scan-%d", host, n), ScannedAt: time.Date(2026, 11, 22, 4, 0, n, 0, time.UTC),
		OS:       inventory.OS{ID: "debian", VersionID: "12", Ecosystem: "Debian:12"},
		Packages: []inventory.Package{{Ecosystem: "Debian:12", Name: "openssl", Version: fmt.Sprintf("3.0.%d-1", n)}},
	}
	s.InventoryHash = inventory.HashPackages(s.Packages)
	return s
}

func TestValidate(t *testing.T) {
	for name, c := range map[string]Config{
		"no brokers":        {},
		"bad broker":        {Brokers: []string{"localhost"}},
		"buffer too small":  {Brokers: []string{"a:1"}, MaxBufferedBytes: 10},
		"batch too small":   {Brokers: []string{"a:1"}, BatchBytes: 10},
		"attempts":          {Brokers: []string{"a:1"}, MaxAttempts: -1},
		"backoff":           {Brokers: []string{"a:1"}, BackoffMin: time.Second, BackoffMax: time.Millisecond},
		"PLAIN without TLS": {Brokers: []string{"a:1"}, Conn: kafkaconn.Config{SASL: kafkaconn.SASL{Mechanism: "PLAIN", Username: "u", Password: "p"}}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := Config{Brokers: []string{"127.0.0.1:9092"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if d := ok.withDefaults(); d.Topic != DefaultTopic || d.MaxAttempts != 8 || d.MaxBufferedBytes != 64<<20 {
		t.Errorf("defaults %+v", d)
	}
}

func kfakeBrokers(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func TestPublishKfake(t *testing.T) { testPublish(t, kfakeBrokers(t)) }

// TestPublishRealKafka runs against the broker `make test` starts.
func TestPublishRealKafka(t *testing.T) { testPublish(t, strings.Split(testenv.Kafka(t), ",")) }

func testPublish(t *testing.T, brokers []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic := fmt.Sprintf("patchgrid.scans.test-%d", time.Now().UnixNano())
	if err := EnsureTopic(ctx, brokers, topic, 4); err != nil {
		t.Fatal(err)
	}
	if err := EnsureTopic(ctx, brokers, topic, 4); err != nil {
		t.Fatalf("second EnsureTopic: %v", err)
	}
	p, err := New(Config{Brokers: brokers, Topic: topic, BatchTimeout: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"host-a", "host-b", "host-c", "host-d", "host-e"}
	const rounds = 4
	for n := range rounds {
		for _, h := range hosts {
			if err := p.Publish(ctx, scan(h, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A batch goes out in one call too.
	var batch []Message
	for _, h := range hosts {
		v, err := inventory.Encode(scan(h, rounds))
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, Message{Key: []byte(h), Value: v})
	}
	if err := p.PublishBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishEncoded(ctx, []byte("x"), make([]byte, 2<<20)); err == nil {
		t.Error("a message over MaxMessageBytes was sent")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	partitionOf := map[string]int32{}
	next := map[string]int{}
	want := len(hosts) * (rounds + 1)
	for got := 0; got < want; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d messages: %v", got, want, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		fs.EachRecord(func(r *kgo.Record) {
			got++
			s, err := inventory.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Key) != s.HostID {
				t.Errorf("key %q for host %q", r.Key, s.HostID)
			}
			if p, ok := partitionOf[s.HostID]; ok && p != r.Partition {
				t.Errorf("host %s in partitions %d and %d", s.HostID, p, r.Partition)
			}
			partitionOf[s.HostID] = r.Partition
			if s.ScanID != fmt.Sprintf("%s-scan-%d", s.HostID, next[s.HostID]) {
				t.Errorf("host %s: got %s out of order", s.HostID, s.ScanID)
			}
			next[s.HostID]++
		})
	}
	parts := map[int32]bool{}
	for _, p := range partitionOf {
		parts[p] = true
	}
	t.Logf("%d hosts over %d partitions", len(partitionOf), len(parts))
}

func TestPublishUnreachableBrokerGivesUp(t *testing.T) {
	p, err := New(Config{Brokers: []string{"127.0.0.1:1"}, MaxAttempts: 2, BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Publish(ctx, scan("h", 1)); err == nil {
		t.Fatal("published to a closed port")
	}
}
