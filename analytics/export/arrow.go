package export

import (
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// Schema is the Arrow schema of cols: the one both Arrow IPC and Parquet
// exports carry. Time columns are UTC timestamps in seconds; they and
// floats are nullable ("none" and NaN become null).
func Schema(cols []Column) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		f := arrow.Field{Name: c.Name}
		switch c.Kind {
		case String:
			f.Type = arrow.BinaryTypes.String
		case Int64:
			f.Type = arrow.PrimitiveTypes.Int64
		case Float64:
			f.Type, f.Nullable = arrow.PrimitiveTypes.Float64, true
		case Bool:
			f.Type = arrow.FixedWidthTypes.Boolean
		case Time:
			f.Type, f.Nullable = &arrow.TimestampType{Unit: arrow.Second, TimeZone: "UTC"}, true
		case StringList:
			// Items are never null: ClickHouse's Array(String) has none, and the
			// engine's own Arrow output declares them so too.
			f.Type = arrow.ListOfNonNullable(arrow.BinaryTypes.String)
		}
		fields[i] = f
	}
	return arrow.NewSchema(fields, nil)
}

// recordBuilder turns batches into Arrow records, reusing its builders.
type recordBuilder struct {
	b *array.RecordBuilder
}

func newRecordBuilder(schema *arrow.Schema) *recordBuilder {
	return &recordBuilder{b: array.NewRecordBuilder(memory.DefaultAllocator, schema)}
}

func (rb *recordBuilder) build(b *Batch) arrow.Record {
	for i, c := range b.Columns {
		v := &b.Vecs[i]
		switch c.Kind {
		case String:
			sb := rb.b.Field(i).(*array.StringBuilder)
			size := 0
			for _, x := range v.Str {
				size += len(x)
			}
			// One allocation for the batch's bytes instead of doublings.
			sb.ReserveData(size)
			sb.AppendValues(v.Str, nil)
		case Int64:
			rb.b.Field(i).(*array.Int64Builder).AppendValues(v.I64, nil)
		case Float64:
			fb := rb.b.Field(i).(*array.Float64Builder)
			fb.Reserve(len(v.F64))
			for _, f := range v.F64 {
				if f != f { // NaN
					fb.UnsafeAppendBoolToBitmap(false)
					continue
				}
				fb.UnsafeAppend(f)
			}
		case Bool:
			rb.b.Field(i).(*array.BooleanBuilder).AppendValues(v.Bools, nil)
		case Time:
			tb := rb.b.Field(i).(*array.TimestampBuilder)
			tb.Reserve(len(v.Times))
			for _, t := range v.Times {
				if isNoTime(t) {
					tb.UnsafeAppendBoolToBitmap(false)
					continue
				}
				tb.UnsafeAppend(arrow.Timestamp(t.Unix()))
			}
		case StringList:
			lb := rb.b.Field(i).(*array.ListBuilder)
			sb := lb.ValueBuilder().(*array.StringBuilder)
			for _, l := range v.Lists {
				lb.Append(true)
				sb.AppendValues(l, nil)
			}
		}
	}
	return rb.b.NewRecord()
}

// arrowWriter writes the Arrow IPC stream format (arrow-stream), or with
// a file writer the IPC file format (arrow): the same messages between the
// "ARROW1" magic and a footer that indexes the record batches. The file
// writer needs no seeking (it counts offsets), so it streams to a pipe or
// an HTTP response just the same.
type arrowWriter struct {
	rb *recordBuilder
	w  interface {
		Write(arrow.Record) error
		Close() error
	}
}

func newArrowWriter(w io.Writer, cols []Column) *arrowWriter {
	s := Schema(cols)
	return &arrowWriter{rb: newRecordBuilder(s), w: ipc.NewWriter(w, ipc.WithSchema(s))}
}

func newArrowFileWriter(w io.Writer, cols []Column) (*arrowWriter, error) {
	s := Schema(cols)
	fw, err := ipc.NewFileWriter(&offsetWriter{w: w}, ipc.WithSchema(s))
	if err != nil {
		return nil, fmt.Errorf("arrow ipc file: %w", err)
	}
	return &arrowWriter{rb: newRecordBuilder(s), w: fw}, nil
}

func (a *arrowWriter) WriteBatch(b *Batch) error {
	rec := a.rb.build(b)
	defer rec.Release()
	if err := a.w.Write(rec); err != nil {
		return fmt.Errorf("arrow ipc: %w", err)
	}
	return nil
}

func (a *arrowWriter) Close() error {
	a.rb.b.Release()
	return a.w.Close()
}

// offsetWriter gives the IPC file writer the io.WriteSeeker it asks for
// on any io.Writer: it only ever asks where it is (Seek(0, SeekCurrent)),
// to record block offsets for the footer.
type offsetWriter struct {
	w   io.Writer
	off int64
}

func (o *offsetWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	o.off += int64(n)
	return n, err
}

func (o *offsetWriter) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekCurrent {
		return 0, fmt.Errorf("arrow ipc file: seek(%d, %d) on a streamed output", offset, whence)
	}
	return o.off, nil
}

// StreamToFile returns a writer that takes an Arrow IPC stream and writes
// the same schema and record batches to w as an Arrow IPC file, batch by
// batch as they arrive (memory: one batch). Close flushes the file's
// footer and reports any error of the conversion; an empty input (no
// stream at all) is an error.
func StreamToFile(w io.Writer) io.WriteCloser {
	pr, pw := io.Pipe()
	c := &streamToFile{pw: pw, done: make(chan error, 1)}
	go func() {
		err := copyStreamToFile(w, pr)
		pr.CloseWithError(err) // unblocks the producer if we stopped early
		c.done <- err
	}()
	return c
}

type streamToFile struct {
	pw   *io.PipeWriter
	done chan error
}

func (c *streamToFile) Write(p []byte) (int, error) { return c.pw.Write(p) }

func (c *streamToFile) Close() error {
	c.pw.Close()
	return <-c.done
}

func copyStreamToFile(w io.Writer, r io.Reader) error {
	sr, err := ipc.NewReader(r)
	if err != nil {
		return fmt.Errorf("arrow ipc stream: %w", err)
	}
	defer sr.Release()
	fw, err := ipc.NewFileWriter(&offsetWriter{w: w}, ipc.WithSchema(sr.Schema()))
	if err != nil {
		return fmt.Errorf("arrow ipc file: %w", err)
	}
	for sr.Next() {
		if err := fw.Write(sr.Record()); err != nil {
			return fmt.Errorf("arrow ipc file: %w", err)
		}
	}
	if err := sr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("arrow ipc stream: %w", err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("arrow ipc file: %w", err)
	}
	return nil
}

type parquetWriter struct {
	rb *recordBuilder
	w  *pqarrow.FileWriter
}

func newParquetWriter(w io.Writer, cols []Column) (*parquetWriter, error) {
	s := Schema(cols)
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Snappy),
		// Dictionaries pay off for the repetitive text columns (owner,
		// ring, severity, ...); on numbers and times they mostly cost
		// hashing.
		parquet.WithDictionaryDefault(false),
		// One row group per batch at most: a reader can then stream too.
		parquet.WithMaxRowGroupLength(DefaultBatchSize),
	}
	for _, c := range cols {
		if c.Kind == String {
			opts = append(opts, parquet.WithDictionaryFor(c.Name, true))
		}
	}
	props := parquet.NewWriterProperties(opts...)
	fw, err := pqarrow.NewFileWriter(s, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, fmt.Errorf("parquet writer: %w", err)
	}
	return &parquetWriter{rb: newRecordBuilder(s), w: fw}, nil
}

func (p *parquetWriter) WriteBatch(b *Batch) error {
	rec := p.rb.build(b)
	defer rec.Release()
	if err := p.w.Write(rec); err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	return nil
}

func (p *parquetWriter) Close() error {
	p.rb.b.Release()
	return p.w.Close()
}
