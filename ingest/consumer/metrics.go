package consumer

import (
	"fmt"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// consumerMetrics are the Prometheus series of one consumer. Names start
// with patchgrid_ingest_.
type consumerMetrics struct {
	set          *metrics.Set
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
	m := &consumerMetrics{
		set:          set,
		consumed:     set.GetOrCreateCounter("patchgrid_ingest_messages_consumed_total"),
		consumedB:    set.GetOrCreateCounter("patchgrid_ingest_message_bytes_consumed_total"),
		scanRows:     set.GetOrCreateCounter(`patchgrid_ingest_rows_inserted_total{table="scans"}`),
		packageRows:  set.GetOrCreateCounter(`patchgrid_ingest_rows_inserted_total{table="inventory_packages"}`),
		skippedSets:  set.GetOrCreateCounter("patchgrid_ingest_package_sets_skipped_total"),
		badKeys:      set.GetOrCreateCounter("patchgrid_ingest_version_key_errors_total"),
		batches:      set.GetOrCreateCounter("patchgrid_ingest_batches_total"),
		retries:      set.GetOrCreateCounter("patchgrid_ingest_retries_total"),
		batchSeconds: set.GetOrCreateHistogram("patchgrid_ingest_batch_duration_seconds"),
		lag:          map[int]int64{},
	}
	set.GetOrCreateGauge("patchgrid_ingest_lag_messages", func() float64 { return float64(m.Lag()) })
	return m
}

// insertErrors counts failed inserts by class: temporary (retried),
// permanent (dead-lettered) and unclassified (retried, then dead-lettered).
func (m *consumerMetrics) insertErrors(class errClass) *metrics.Counter {
	return m.set.GetOrCreateCounter(fmt.Sprintf(`patchgrid_ingest_insert_errors_total{class=%q}`, class))
}

func (m *consumerMetrics) deadLettered(reason string) *metrics.Counter {
	return m.set.GetOrCreateCounter(fmt.Sprintf(`patchgrid_ingest_dead_lettered_total{reason=%q}`, reason))
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
