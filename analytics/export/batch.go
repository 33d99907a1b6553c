// Package export streams a query's rows from the store into Arrow IPC,
// Parquet, CSV or JSON lines, a batch at a time, so memory stays bounded by
// the batch size however many rows the result has.
package export

import (
	"context"
	"fmt"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// Kind is the Go and file type of one exported column. Queries cast every
// column to the ClickHouse type named here, so a column's type never depends
// on the backend or server version.
type Kind uint8

const (
	String     Kind = iota // ClickHouse String
	Int64                  // ClickHouse Int64
	Float64                // ClickHouse Float64
	Bool                   // ClickHouse UInt8 (0/1)
	Time                   // ClickHouse DateTime, UTC; 1970-01-01 00:00:00 means "none" (null)
	StringList             // ClickHouse Array(String)
)

func (k Kind) String() string {
	switch k {
	case String:
		return "string"
	case Int64:
		return "int64"
	case Float64:
		return "float64"
	case Bool:
		return "bool"
	case Time:
		return "timestamp"
	case StringList:
		return "list<string>"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Column is one column of an export: its name, type and meaning (the
// meaning is what the README's column table documents).
type Column struct {
	Name    string
	Kind    Kind
	Meaning string
}

// Batch holds up to a batch-size of rows column by column. Only the slice
// that matches each column's Kind is used.
type Batch struct {
	Columns []Column
	Vecs    []Vector
	Len     int
}

// Vector is one column's values in a batch.
type Vector struct {
	Str   []string
	I64   []int64
	F64   []float64
	Bools []bool
	Times []time.Time
	Lists [][]string
}

// NewBatch makes an empty batch for cols with room for capacity rows.
func NewBatch(cols []Column, capacity int) *Batch {
	b := &Batch{Columns: cols, Vecs: make([]Vector, len(cols))}
	for i, c := range cols {
		v := &b.Vecs[i]
		switch c.Kind {
		case String:
			v.Str = make([]string, 0, capacity)
		case Int64:
			v.I64 = make([]int64, 0, capacity)
		case Float64:
			v.F64 = make([]float64, 0, capacity)
		case Bool:
			v.Bools = make([]bool, 0, capacity)
		case Time:
			v.Times = make([]time.Time, 0, capacity)
		case StringList:
			v.Lists = make([][]string, 0, capacity)
		}
	}
	return b
}

// Reset empties the batch and keeps its capacity.
func (b *Batch) Reset() {
	for i := range b.Vecs {
		v := &b.Vecs[i]
		v.Str, v.I64, v.F64, v.Bools, v.Times = v.Str[:0], v.I64[:0], v.F64[:0], v.Bools[:0], v.Times[:0]
		clear(v.Lists) // drop references so scanned lists can be collected
		v.Lists = v.Lists[:0]
	}
	b.Len = 0
}

// Writer receives batches. WriteBatch must not keep b after it returns:
// the batch is reused.
type Writer interface {
	WriteBatch(b *Batch) error
	// Close flushes and writes any trailer (Parquet footer, Arrow EOS). It
	// does not close the underlying io.Writer.
	Close() error
}

// DefaultBatchSize bounds memory per export: about 64k rows in flight.
const DefaultBatchSize = 65536

// Copy reads every row of rows into w in batches of batchSize (0 means
// DefaultBatchSize) and closes w. It returns the number of rows written.
// The result's columns must match cols one to one, in order and type.
func Copy(ctx context.Context, rows store.Rows, cols []Column, w Writer, batchSize int) (int64, error) {
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	if got := rows.Columns(); len(got) != len(cols) {
		return 0, fmt.Errorf("export: query returned %d columns, the export defines %d", len(got), len(cols))
	}
	sc := newScanner(cols)
	b := NewBatch(cols, batchSize)
	var n int64
	for rows.Next() {
		if err := rows.Scan(sc.dest...); err != nil {
			return n, fmt.Errorf("export: scan row %d: %w", n+int64(b.Len)+1, err)
		}
		sc.appendTo(b)
		if b.Len == batchSize {
			// Checking ctx once per batch keeps the hot loop free of it.
			if err := ctx.Err(); err != nil {
				return n, err
			}
			if err := w.WriteBatch(b); err != nil {
				return n, fmt.Errorf("export: write batch ending at row %d: %w", n+int64(b.Len), err)
			}
			n += int64(b.Len)
			b.Reset()
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("export: read rows: %w", err)
	}
	if b.Len > 0 {
		if err := w.WriteBatch(b); err != nil {
			return n, fmt.Errorf("export: write last batch: %w", err)
		}
		n += int64(b.Len)
	}
	if err := w.Close(); err != nil {
		return n, fmt.Errorf("export: finish: %w", err)
	}
	return n, nil
}

// scanner holds one row's scan destinations, typed per column, so the hot
// loop neither allocates nor reflects.
type scanner struct {
	cols  []Column
	dest  []any
	str   []string
	i64   []int64
	f64   []float64
	u8    []uint8
	times []time.Time
	lists [][]string
}

func newScanner(cols []Column) *scanner {
	n := len(cols)
	s := &scanner{cols: cols, dest: make([]any, n), str: make([]string, n), i64: make([]int64, n),
		f64: make([]float64, n), u8: make([]uint8, n), times: make([]time.Time, n), lists: make([][]string, n)}
	for i, c := range cols {
		switch c.Kind {
		case String:
			s.dest[i] = &s.str[i]
		case Int64:
			s.dest[i] = &s.i64[i]
		case Float64:
			s.dest[i] = &s.f64[i]
		case Bool:
			s.dest[i] = &s.u8[i]
		case Time:
			s.dest[i] = &s.times[i]
		case StringList:
			s.dest[i] = &s.lists[i]
		}
	}
	return s
}

func (s *scanner) appendTo(b *Batch) {
	for i, c := range s.cols {
		v := &b.Vecs[i]
		switch c.Kind {
		case String:
			v.Str = append(v.Str, s.str[i])
		case Int64:
			v.I64 = append(v.I64, s.i64[i])
		case Float64:
			v.F64 = append(v.F64, s.f64[i])
		case Bool:
			v.Bools = append(v.Bools, s.u8[i] != 0)
		case Time:
			v.Times = append(v.Times, s.times[i])
		case StringList:
			v.Lists = append(v.Lists, s.lists[i])
			// The next Scan must not write into the slice the batch now holds.
			s.lists[i] = nil
		}
	}
	b.Len++
}
