package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The in-process broker drops what a group committed, and only that: the
// messages after a partition's commit are still delivered.
func TestRunBrokerReleasesCommitted(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := startBroker(runConfig{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if err := b.fake.CreateTopic("scans", 2, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		for range 10 {
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "scans", Partition: p, Value: []byte("scan")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	prod.Close()

	// Commits: partition 0 up to offset 6, partition 1 wholly; group
	// "other" committed nothing.
	group, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.ConsumerGroup("ingest"), kgo.ConsumeTopics("scans"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	var committed error
	group.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"scans": {0: {Epoch: -1, Offset: 6}, 1: {Epoch: -1, Offset: 10}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) {
			committed = err
		})
	group.Close()
	if committed != nil {
		t.Fatal(committed)
	}
	b.release("other", "scans")
	for _, p := range b.fake.PartitionInfos("scans") {
		if p.LogStartOffset != 0 {
			t.Fatalf("a group without commits dropped partition %d up to %d", p.Partition, p.LogStartOffset)
		}
	}
	b.release("ingest", "scans")
	want := map[int32]int64{0: 6, 1: 10}
	for _, p := range b.fake.PartitionInfos("scans") {
		if p.LogStartOffset != want[p.Partition] || p.HighWatermark != 10 {
			t.Errorf("partition %d: log from %d to %d, want from %d to 10", p.Partition, p.LogStartOffset, p.HighWatermark, want[p.Partition])
		}
	}

	// What was not committed is still there for the group's next member.
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.ConsumerGroup("ingest"), kgo.ConsumeTopics("scans"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[int32][]int64{}
	for n := 0; n < 4; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("got %v of the 4 uncommitted messages: %v", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r.Offset)
			n++
		})
	}
	if len(got) != 1 || len(got[0]) != 4 || got[0][0] != 6 || got[0][3] != 9 {
		t.Fatalf("delivered after the release: %v, want offsets 6-9 of partition 0", got)
	}

	// Configured brokers keep their own retention: nothing to do.
	(&runBroker{addrs: []string{"127.0.0.1:1"}, log: log}).release("ingest", "scans")
}
