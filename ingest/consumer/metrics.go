package consumer

import (
	"fmt"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// consumerMetrics are the Prometheus series of one consumer. Names start
// with patchgrid_ingest_ for scans, with the sink's prefix for RunSink.
type consumerMetrics struct {
	set          *metrics.Set
	prefix       string // patchgrid_ingest for scans; a sink's own (RunSink)
	consumed     *metrics.Counter
	consumedB    *metrics.Counter
	scanRows     *metrics.Counter
	packageRows  *metrics.Counter
	skippedSets  *metrics.Counter // package sets not inserted: hash already known
	badKeys      *metrics.Counter
	batches      *metrics.Counter
	retries      *metrics.Counter
	batchSeconds *metrics.Histogram

	mu  sync.Mutex
	lag map[int]int64 // partition → messages behind the high-water mark
}

func newConsumerMetrics(set *metrics.Set) *consumerMetrics {
	m := newCoreMetrics(set, "patchgrid_ingest")
	m.scanRows = set.GetOrCreateCounter(`patchgrid_ingest_rows_inserted_total{table="scans"}`)
	m.packageRows = set.GetOrCreateCounter(`patchgrid_ingest_rows_inserted_total{table="inventory_packages"}`)
	m.skippedSets = set.GetOrCreateCounter("patchgrid_ingest_package_sets_skipped_total")
	m.badKeys = set.GetOrCreateCounter("patchgrid_ingest_version_key_errors_total")
	return m
}

// newCoreMetrics creates the series every consumer has, named
// prefix_messages_consumed_total and so on: distinct prefixes keep two
// consumers of different topics apart in one process's metrics set.
func newCoreMetrics(set *metrics.Set, prefix string) *consumerMetrics {
	m := &consumerMetrics{
		set:          set,
		prefix:       prefix,
		consumed:     set.GetOrCreateCounter(prefix + "_messages_consumed_total"),
		consumedB:    set.GetOrCreateCounter(prefix + "_message_bytes_consumed_total"),
		batches:      set.GetOrCreateCounter(prefix + "_batches_total"),
		retries:      set.GetOrCreateCounter(prefix + "_retries_total"),
		batchSeconds: set.GetOrCreateHistogram(prefix + "_batch_duration_seconds"),
		lag:          map[int]int64{},
	}
	set.GetOrCreateGauge(prefix+"_lag_messages", func() float64 { return float64(m.Lag()) })
	return m
}

// rowsInserted counts the rows a sink inserted into table.
func (m *consumerMetrics) rowsInserted(table string) *metrics.Counter {
	return m.set.GetOrCreateCounter(fmt.Sprintf(`%s_rows_inserted_total{table=%q}`, m.prefix, table))
}

// insertErrors counts failed inserts by class: temporary (retried),
// permanent (dead-lettered) and unclassified (retried, then dead-lettered).
func (m *consumerMetrics) insertErrors(class errClass) *metrics.Counter {
	return m.set.GetOrCreateCounter(fmt.Sprintf(`%s_insert_errors_total{class=%q}`, m.prefix, class))
}

func (m *consumerMetrics) deadLettered(reason string) *metrics.Counter {
	return m.set.GetOrCreateCounter(fmt.Sprintf(`%s_dead_lettered_total{reason=%q}`, m.prefix, reason))
}

// observeLag records how far partition p is behind, from a fetched message.
func (m *consumerMetrics) observeLag(p int, offset, highWaterMark int64) {
	lag := highWaterMark - offset - 1
	if lag < 0 {
		lag = 0
	}
	m.mu.Lock()
	m.lag[p] = lag
	m.mu.Unlock()
}

// Lag is the sum over the partitions this instance fetched from.
func (m *consumerMetrics) Lag() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, l := range m.lag {
		n += l
	}
	return n
}
