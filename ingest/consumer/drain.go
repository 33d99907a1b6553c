package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"maps"

	"github.com/segmentio/kafka-go"
)

// highWaterMarks returns, per partition of topic, the offset one past its
// last message, for partitions that hold any message.
func highWaterMarks(ctx context.Context, client *kafka.Client, topic string) (map[int]int64, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of topic %s: %w", topic, err)
	}
	var reqs []kafka.OffsetRequest
	for _, t := range md.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("metadata of topic %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("offsets of topic %s: %w", topic, err)
	}
	hwm := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p.Partition, p.Error)
		}
		if p.LastOffset > p.FirstOffset {
			hwm[p.Partition] = p.LastOffset
		}
	}
	return hwm, nil
}

// drainTargets are the high-water marks a draining consumer drains to,
// read in the background while it joins its group: read first, their
// round trips to the broker delayed the first fetch by 20-60 ms.
type drainTargets struct {
	cancel context.CancelFunc
	done   chan struct{}
	hwm    map[int]int64
	err    error
}

// readDrainTargets starts reading the high-water marks of topic.
func readDrainTargets(ctx context.Context, client *kafka.Client, topic string) *drainTargets {
	ctx, cancel := context.WithCancel(ctx)
	t := &drainTargets{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		t.hwm, t.err = highWaterMarks(ctx, client, topic)
	}()
	return t
}

// await waits for the targets for a consumer's loop, whose fetcher and
// decoders are at work already, and logs them. A nil t (not draining) has
// none: nil, where a draining consumer of an empty topic has an empty
// map. stop says the loop ends now, with err (nil when ctx ended first:
// nothing of the loop's is pending yet).
func (t *drainTargets) await(ctx context.Context, log *slog.Logger) (hwm map[int]int64, stop bool, err error) {
	if t == nil {
		return nil, false, nil
	}
	select {
	case <-t.done:
	case <-ctx.Done():
		return nil, true, nil
	}
	if t.err != nil {
		return nil, true, t.err
	}
	log.Info("draining", "high_water_marks", t.hwm)
	return t.hwm, false, nil
}

// stop ends the read if it is still under way, and waits for it.
func (t *drainTargets) stop() {
	if t != nil {
		t.cancel()
		<-t.done
	}
}

// drained reports whether group has committed every partition of topic up
// to the offsets in hwm. It asks the broker rather than trusting this
// instance's own commits, because other instances own other partitions.
func drained(ctx context.Context, client *kafka.Client, group, topic string, hwm map[int]int64) (bool, error) {
	if len(hwm) == 0 {
		return true, nil
	}
	parts := make([]int, 0, len(hwm))
	for p := range hwm {
		parts = append(parts, p)
	}
	res, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return false, fmt.Errorf("committed offsets of group %s: %w", group, err)
	}
	if res.Error != nil {
		return false, fmt.Errorf("committed offsets of group %s: %w", group, res.Error)
	}
	committed := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return false, fmt.Errorf("committed offset of %s/%d: %w", topic, p.Partition, p.Error)
		}
		committed[p.Partition] = p.CommittedOffset
	}
	for p, end := range hwm {
		if committed[p] < end {
			return false, nil
		}
	}
	return true, nil
}

// drainTracker follows how far this instance has fetched towards the drain
// targets. Another group member may own some partitions, so reaching the
// targets here is a hint to flush early, not proof of the drain: that stays
// drained's, from the committed offsets.
type drainTracker struct {
	targets map[int]int64 // partition → offset one past its last message at start
	left    int           // partitions whose target is not fetched yet
	done    bool
}

// newDrainTracker returns a tracker for targets; nil targets (not draining)
// never report reached.
func newDrainTracker(targets map[int]int64) *drainTracker {
	// A copy: fetched consumes it, and drained still needs the original.
	return &drainTracker{targets: maps.Clone(targets), left: len(targets)}
}

// fetched records the message at offset of partition p and reports true
// exactly once: when the last target is reached.
func (d *drainTracker) fetched(p int, offset int64) bool {
	if d.targets == nil || d.done {
		return false
	}
	end, ok := d.targets[p]
	if !ok || offset+1 < end {
		return false
	}
	// Count each partition once: mark it reached by dropping its target.
	delete(d.targets, p)
	d.left--
	if d.left > 0 {
		return false
	}
	d.done = true
	return true
}

// reached reports whether every target has been fetched by this instance.
func (d *drainTracker) reached() bool { return d.done }
