// Package consumer loads scan messages from Kafka into ClickHouse: a
// kafka-go consumer group whose instances share the topic's partitions.
//
// Delivery is at-least-once: a batch is committed to Kafka only after its
// rows are inserted, so a crash replays the uncommitted tail. Rows are
// idempotent instead of deduplicated on the way in: scans and
// inventory_packages are ReplacingMergeTree tables whose sorting keys cover
// the whole identity of a row, so a replayed scan collapses into the row it
// repeats. Readers must therefore read them with FINAL (or argMax per key);
// plain counts may include not-yet-merged duplicates.
//
// Heartbeats whose inventory hash this instance has never seen are accepted
// as they are: the hash names a package set stored by the host's earlier
// full scan (scans are keyed by host, so one host's messages stay ordered in
// a partition), possibly by another instance or before a restart. If the
// full scan is missing altogether (it was dead-lettered, or the retention
// dropped it), the heartbeat still records that the host is alive, and the
// hash resolves as soon as any host reports that package set in full.
// Dead-lettering such heartbeats would need a store lookup per heartbeat and
// would lose liveness data, for no gain in correctness.
//
// A failed insert is classified (classify.go). Temporary failures (the
// network, a server restarting, too many parts) are retried with backoff
// for as long as they last, committing nothing meanwhile. Permanent ones
// (rows the table refuses) are traced to the messages at fault, which go
// to the DLQ with reason store_rejected; the rest of the batch is inserted
// and committed, so one bad message never stalls its partition. A refused
// package set takes every full scan of that set with it (they would store
// the same refused rows), including those batched just behind the one
// that carried it; a message that meets the set again carries it again.
// Dead-letter writes happen before the commit, so a crash in between only
// writes some DLQ records twice.
//
// RunSink (sink.go) is the same machinery for topics whose messages are
// one row each, given a Sink that decodes and vets them: deployment
// outcomes (ingest/outcomes) use it.
package consumer

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/patchgrid/patchgrid/schemas/kafkaconn"
)

// Default topic and group names.
const (
	DefaultTopic   = "patchgrid.scans"
	DefaultGroupID = "patchgrid-ingest"
)

// Config configures one consumer instance. Zero values take the defaults
// given in each field's comment (see withDefaults).
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Required.
	Brokers []string
	// Kafka secures the connections to the brokers (TLS, SASL) for the
	// group reader, the dead-letter writer and the admin requests alike.
	// The zero value is plaintext.
	Kafka kafkaconn.Config
	// Topic holds the scan messages. Default "patchgrid.scans".
	Topic string
	// DLQTopic receives messages that cannot be loaded, with the reason in
	// headers. Default Topic + ".dlq".
	DLQTopic string
	// GroupID is the consumer group; instances with the same group share
	// the partitions. Default "patchgrid-ingest".
	GroupID string

	// A batch is inserted when it holds BatchRows rows (scans plus package
	// rows), or about BatchBytes bytes of row data, or when FlushInterval
	// has passed since its first message — whichever comes first.
	// Defaults: 100000 rows, 32 MiB, 1s. BatchBytes counts what the batch
	// holds, not the messages' size: a full scan whose package set is
	// already stored weighs one scans row, not its 20 KB package list
	// (counting message bytes cut batches at ~2,000 rows, and the inserts,
	// 50-120 ms each on the 2018 server, then paced the whole consumer).
	BatchRows     int
	BatchBytes    int
	FlushInterval time.Duration
	// EagerRows: when no insert is in flight, a batch of at least this many
	// rows is inserted at once instead of waiting for the limits above, so
	// the inserter does not idle while rows wait; while it is busy, batches
	// keep growing. Default BatchRows/4 (25,000 rows, a healthy ClickHouse
	// insert). Set it to BatchRows to batch by the limits alone.
	EagerRows int

	// DecodeWorkers is how many goroutines decode messages and build their
	// rows, in parallel with each other and with the insert of the previous
	// batch. Default GOMAXPROCS.
	DecodeWorkers int

	// KnownHashes is the size of the in-memory LRU of inventory hashes whose
	// packages are already stored; their packages are not inserted again.
	// Default 200000 (about 30 MB).
	KnownHashes int

	// Drain makes Run return once the group's committed offsets reach the
	// high-water marks the topic had when Run started (the embedded mode of
	// `patchgrid run`). Otherwise Run returns only when ctx is cancelled.
	Drain bool

	// SessionTimeout and RebalanceTimeout are the group protocol's: how
	// long a silent member keeps its partitions (a crashed instance's
	// partitions move after this), and how long a rebalance waits for
	// members to rejoin. Defaults 30s and 30s; the broker's minimum session
	// timeout is usually 6s.
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration

	// MaxWait bounds how long a fetch waits for new data. Default 250ms,
	// 50ms with Drain: closing the reader waits for the fetches in flight,
	// and a drained topic leaves every partition in such an idle wait, so
	// Run returned up to MaxWait after its last commit (0.15-0.2 s of a
	// 0.6 s, 10,000-message drain). Data that is there is fetched at once
	// either way.
	MaxWait time.Duration
	// RetryBackoffMax caps the backoff between retries of a failed insert,
	// dead-letter write or commit. Default 10s.
	RetryBackoffMax time.Duration
	// UnclassifiedAttempts is how often an insert failing with an error
	// the consumer cannot classify is tried before it is handled as
	// permanent (its messages traced and dead-lettered). Temporary errors
	// (network, restart, too many parts) are retried without limit;
	// permanent ones (a value or column the table refuses) are not
	// retried. Default 5 (about 1.5 s of backoff).
	UnclassifiedAttempts int
	// ProgressInterval is how often progress (messages/s, lag) is logged.
	// Default 10s; negative disables.
	ProgressInterval time.Duration
	// ShutdownTimeout bounds the final flush after ctx is cancelled. Default 10s.
	ShutdownTimeout time.Duration

	// Logger receives logs. Default slog.Default().
	Logger *slog.Logger
	// Metrics receives the consumer's metrics. Default: a fresh set, so two
	// consumers in one process do not collide; serve it with WritePrometheus.
	Metrics *metrics.Set
	// Now stamps received_at. Default time.Now.
	Now func() time.Time
}

// Validate reports the first invalid field, after defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	for _, b := range c.Brokers {
		if b == "" {
			errs = append(errs, errors.New("empty broker address"))
		}
	}
	if c.Topic == c.DLQTopic {
		errs = append(errs, fmt.Errorf("dead-letter topic %q is the input topic", c.DLQTopic))
	}
	if c.BatchRows < 1 {
		errs = append(errs, fmt.Errorf("batch rows %d < 1", c.BatchRows))
	}
	if c.EagerRows < 1 || c.EagerRows > c.BatchRows {
		errs = append(errs, fmt.Errorf("eager rows %d not in 1..batch rows %d", c.EagerRows, c.BatchRows))
	}
	if c.BatchBytes < 1 {
		errs = append(errs, fmt.Errorf("batch bytes %d < 1", c.BatchBytes))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("flush interval %v <= 0", c.FlushInterval))
	}
	if c.DecodeWorkers < 1 {
		errs = append(errs, fmt.Errorf("decode workers %d < 1", c.DecodeWorkers))
	}
	if c.KnownHashes < 1 {
		errs = append(errs, fmt.Errorf("known hashes %d < 1", c.KnownHashes))
	}
	if c.UnclassifiedAttempts < 1 {
		errs = append(errs, fmt.Errorf("unclassified attempts %d < 1", c.UnclassifiedAttempts))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxWait <= 0 || c.RetryBackoffMax <= 0 || c.ShutdownTimeout <= 0 || c.SessionTimeout <= 0 || c.RebalanceTimeout <= 0 {
		errs = append(errs, errors.New("timeouts and backoff must be > 0"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ingest config: %w", err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.DLQTopic == "" {
		c.DLQTopic = c.Topic + ".dlq"
	}
	if c.GroupID == "" {
		c.GroupID = DefaultGroupID
	}
	if c.BatchRows == 0 {
		c.BatchRows = 100000
	}
	if c.EagerRows == 0 {
		c.EagerRows = max(1, c.BatchRows/4)
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = 32 << 20
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = time.Second
	}
	if c.DecodeWorkers == 0 {
		c.DecodeWorkers = runtime.GOMAXPROCS(0)
	}
	if c.KnownHashes == 0 {
		c.KnownHashes = 200000
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 30 * time.Second
	}
	if c.RebalanceTimeout == 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	if c.MaxWait == 0 && c.Drain {
		c.MaxWait = 50 * time.Millisecond
	}
	if c.MaxWait == 0 {
		c.MaxWait = 250 * time.Millisecond
	}
	if c.RetryBackoffMax == 0 {
		c.RetryBackoffMax = 10 * time.Second
	}
	if c.UnclassifiedAttempts == 0 {
		c.UnclassifiedAttempts = 5
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = 10 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = metrics.NewSet()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
