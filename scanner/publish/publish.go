// Package publish sends encoded scans to Kafka.
//
// Decisions, so the consumer side can rely on them:
//   - Messages are keyed by HostID: one host's scans land in one partition,
//     in order. Partitions are chosen with murmur2, as Java producers do.
//   - Kafka-level compression is off: the value is already a zstd frame
//     (schemas/inventory), a second pass would spend CPU for nothing.
//   - RequiredAcks is RequireAll; kafka-go retries retriable failures
//     MaxAttempts times with exponential backoff between BackoffMin and
//     BackoffMax before Publish returns the error.
//   - Memory is bounded: at most MaxBufferedBytes of message values are
//     waiting in the producer at once; callers beyond that block (or give up
//     when their context ends).
//   - Connections are secured by Config.Conn (TLS, SASL): see
//     schemas/kafkaconn. The same settings create topics (EnsureTopicWith).
package publish

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/semaphore"

	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/kafkaconn"
)

// Default topic names. The project creates its own topics (EnsureTopic).
const (
	DefaultTopic           = "patchgrid.scans"
	DefaultDeadLetterTopic = "patchgrid.scans.dlq"
)

// DefaultBatchBytes keeps a produce batch, with its framing, under a
// broker's default message.max.bytes (1,048,588 bytes): a larger batch is
// refused as a whole ("Message Size Too Large").
const DefaultBatchBytes = 900 << 10

// Config configures a Producer. Zero fields take the documented default.
type Config struct {
	Brokers []string // host:port of at least one broker (required)
	Topic   string   // default DefaultTopic
	// Conn secures the connections (TLS, SASL); the zero value is plaintext.
	Conn kafkaconn.Config

	// MaxMessageBytes refuses larger messages before they reach the broker.
	// Default DefaultBatchBytes.
	MaxMessageBytes int
	// MaxBufferedBytes bounds the values held by the producer at once.
	// Default 64 MiB; it must be at least MaxMessageBytes.
	MaxBufferedBytes int64
	// BatchSize and BatchBytes bound one produce request; BatchTimeout is how
	// long a partial batch waits for more. Defaults 1000, DefaultBatchBytes,
	// 5ms. The broker refuses a record batch over its message.max.bytes.
	// PublishBatch hands its messages over at once, so a longer timeout
	// gathers nothing more: it only delays the last, partial batch of
	// every partition (with 20ms, a PublishBatch of the simulator's 500
	// small heartbeats took at least 20ms: 25,000 messages/s at most).
	BatchSize    int
	BatchBytes   int64
	BatchTimeout time.Duration
	// MaxAttempts is how often a batch is tried (default 8), with backoff
	// from BackoffMin (default 100ms) doubling up to BackoffMax (default 5s).
	MaxAttempts int
	BackoffMin  time.Duration
	BackoffMax  time.Duration
	// WriteTimeout bounds one produce round trip (default 30s).
	WriteTimeout time.Duration
}

func (c *Config) withDefaults() Config {
	d := *c
	if d.Topic == "" {
		d.Topic = DefaultTopic
	}
	if d.MaxMessageBytes == 0 {
		d.MaxMessageBytes = DefaultBatchBytes
	}
	if d.MaxBufferedBytes == 0 {
		d.MaxBufferedBytes = 64 << 20
	}
	if d.BatchSize == 0 {
		d.BatchSize = 1000
	}
	if d.BatchBytes == 0 {
		d.BatchBytes = DefaultBatchBytes
	}
	if d.BatchTimeout == 0 {
		d.BatchTimeout = 5 * time.Millisecond
	}
	if d.MaxAttempts == 0 {
		d.MaxAttempts = 8
	}
	if d.BackoffMin == 0 {
		d.BackoffMin = 100 * time.Millisecond
	}
	if d.BackoffMax == 0 {
		d.BackoffMax = 5 * time.Second
	}
	if d.WriteTimeout == 0 {
		d.WriteTimeout = 30 * time.Second
	}
	return d
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	d := c.withDefaults()
	switch {
	case len(d.Brokers) == 0:
		return errors.New("publish: no Kafka brokers")
	case d.MaxMessageBytes < 0 || d.MaxBufferedBytes < int64(d.MaxMessageBytes):
		return fmt.Errorf("publish: MaxBufferedBytes %d below MaxMessageBytes %d", d.MaxBufferedBytes, d.MaxMessageBytes)
	case d.BatchSize < 0 || d.BatchBytes < 0 || d.BatchTimeout < 0:
		return errors.New("publish: negative batch limit")
	case d.BatchBytes < int64(d.MaxMessageBytes):
		return fmt.Errorf("publish: BatchBytes %d below MaxMessageBytes %d: large scans could never be sent", d.BatchBytes, d.MaxMessageBytes)
	case d.MaxAttempts < 1:
		return fmt.Errorf("publish: MaxAttempts %d, want at least 1", d.MaxAttempts)
	case d.BackoffMin < 0 || d.BackoffMax < d.BackoffMin:
		return fmt.Errorf("publish: backoff %v..%v", d.BackoffMin, d.BackoffMax)
	case d.WriteTimeout < 0:
		return errors.New("publish: negative WriteTimeout")
	}
	if err := d.Conn.Validate(); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	for _, b := range d.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("publish: broker %q: %w", b, err)
		}
	}
	return nil
}

// Message is one encoded scan and its key.
type Message struct {
	Key, Value []byte
}

// Producer publishes scans. It is safe for concurrent use.
type Producer struct {
	cfg Config
	w   *kafka.Writer
	sem *semaphore.Weighted
}

// New returns a producer; it connects lazily, on the first Publish.
func New(cfg Config) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	conn, err := c.Conn.Open()
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	w := &kafka.Writer{
		Addr:                   kafka.TCP(c.Brokers...),
		Topic:                  c.Topic,
		Balancer:               kafka.Murmur2Balancer{},
		MaxAttempts:            c.MaxAttempts,
		WriteBackoffMin:        c.BackoffMin,
		WriteBackoffMax:        c.BackoffMax,
		BatchSize:              c.BatchSize,
		BatchBytes:             c.BatchBytes,
		BatchTimeout:           c.BatchTimeout,
		WriteTimeout:           c.WriteTimeout,
		RequiredAcks:           kafka.RequireAll,
		AllowAutoTopicCreation: false,
		Transport:              conn.Transport("patchgrid-scanner"),
	}
	return &Producer{cfg: c, w: w, sem: semaphore.NewWeighted(c.MaxBufferedBytes)}, nil
}

// Topic is the topic the producer writes to.
func (p *Producer) Topic() string { return p.cfg.Topic }

// Publish encodes s and sends it keyed by its HostID, returning once the
// broker acknowledged it from all in-sync replicas.
func (p *Producer) Publish(ctx context.Context, s *inventory.Scan) error {
	v, err := inventory.Encode(s)
	if err != nil {
		return fmt.Errorf("publish scan %s of host %s: %w", s.ScanID, s.HostID, err)
	}
	return p.PublishEncoded(ctx, []byte(s.HostID), v)
}

// PublishEncoded sends one already-encoded message.
func (p *Producer) PublishEncoded(ctx context.Context, key, value []byte) error {
	return p.PublishBatch(ctx, []Message{{Key: key, Value: value}})
}

// PublishBatch sends messages in as few produce requests as the batch limits
// allow; the fleet simulator uses it for throughput. Either every message is
// acknowledged or an error says how many were not.
func (p *Producer) PublishBatch(ctx context.Context, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	var total int64
	kms := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		if len(m.Key) == 0 {
			return fmt.Errorf("publish: message %d has no key (host id)", i)
		}
		if len(m.Value) > p.cfg.MaxMessageBytes {
			return fmt.Errorf("publish: message for host %s is %d bytes, over MaxMessageBytes %d", m.Key, len(m.Value), p.cfg.MaxMessageBytes)
		}
		total += int64(len(m.Value))
		kms[i] = kafka.Message{Key: m.Key, Value: m.Value}
	}
	// A batch larger than the whole buffer is sent in pieces that fit.
	for len(kms) > 0 {
		n, size := 0, int64(0)
		for n < len(kms) && (n == 0 || size+int64(len(kms[n].Value)) <= p.cfg.MaxBufferedBytes) {
			size += int64(len(kms[n].Value))
			n++
		}
		if err := p.sem.Acquire(ctx, size); err != nil {
			return fmt.Errorf("publish to %s: waiting for buffer space: %w", p.cfg.Topic, err)
		}
		err := p.w.WriteMessages(ctx, kms[:n]...)
		p.sem.Release(size)
		if err != nil {
			return fmt.Errorf("publish %d messages to %s: %w", n, p.cfg.Topic, describe(err))
		}
		kms = kms[n:]
	}
	return nil
}

// describe counts the failed messages of a kafka.WriteErrors.
func describe(err error) error {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		return fmt.Errorf("%d of %d messages not acknowledged: %w", we.Count(), len(we), err)
	}
	return err
}

// Close flushes what is buffered and closes the connections.
func (p *Producer) Close() error {
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("close producer for %s: %w", p.cfg.Topic, err)
	}
	return nil
}

// EnsureTopic creates topic with the given partition count unless it exists,
// over a plaintext connection. The replication factor is the broker's
// default (-1), so a single-node development broker and a production
// cluster both work. An existing topic is left as it is, whatever its
// partition count.
func EnsureTopic(ctx context.Context, brokers []string, topic string, partitions int) error {
	return EnsureTopicWith(ctx, kafkaconn.Config{}, brokers, topic, partitions)
}

// EnsureTopicWith is EnsureTopic over connections secured by sec.
func EnsureTopicWith(ctx context.Context, sec kafkaconn.Config, brokers []string, topic string, partitions int) error {
	if len(brokers) == 0 {
		return errors.New("ensure topic: no brokers")
	}
	if partitions < 1 {
		return fmt.Errorf("ensure topic %s: %d partitions", topic, partitions)
	}
	conn, err := sec.Open()
	if err != nil {
		return fmt.Errorf("ensure topic %s: %w", topic, err)
	}
	tr := conn.Transport("patchgrid-admin")
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second, Transport: tr}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err == nil {
		for _, t := range meta.Topics {
			if t.Name == topic && t.Error == nil && len(t.Partitions) > 0 {
				return nil
			}
		}
	}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: -1,
	}}})
	if err != nil {
		return fmt.Errorf("create topic %s on %v: %w", topic, brokers, err)
	}
	if err := resp.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s with %s partitions: %w", topic, strconv.Itoa(partitions), err)
	}
	return waitForTopic(ctx, client, topic)
}

// waitForTopic waits until metadata shows the topic with leaders, so a
// producer started right after EnsureTopic does not race the controller.
func waitForTopic(ctx context.Context, client *kafka.Client, topic string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil {
			for _, t := range meta.Topics {
				if t.Name == topic && t.Error == nil && len(t.Partitions) > 0 {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s created but not visible after 30s: %v", topic, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
