package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/parquet/metadata"
	"github.com/patchgrid/patchgrid/schemas/store/internal/libchdb"
)

// RawQuerier is an optional capability of a Store: running a SELECT and
// writing its result, in one of ClickHouse's own output formats, straight
// to w. Bulk exports use it to skip decoding rows into Go values and
// encoding them again. Callers type-assert and fall back to Query when a
// store lacks it (the server backend does: clickhouse-go's native protocol
// returns decoded blocks, not formatted bytes).
type RawQuerier interface {
	// QueryRaw runs query, a SELECT (args bind as in Exec), and streams its
	// result in format to w as one document, a chunk at a time: memory
	// stays bounded by a chunk whatever the result's size. ctx is checked
	// between chunks. It returns the number of result rows. Nothing is
	// written to w when the statement fails before its first chunk.
	// RawFormats lists the formats supported.
	QueryRaw(ctx context.Context, w io.Writer, format, query string, args ...any) (rows int64, err error)
}

// RawFormats are the formats QueryRaw writes. RowBinary (no header: the
// caller knows the columns' types) is for readers in this repository that
// parse a large result themselves (ingest/outcomes reads plans whole).
var RawFormats = []string{"ArrowStream", "Parquet", "CSVWithNames", "JSONEachRow", "CSV", "RowBinary"}

var _ RawQuerier = (*chdbStore)(nil)

// chDB's streaming API formats every chunk (a block of about 65k rows) as a
// complete document of its own: CSVWithNames repeats its header, an
// ArrowStream chunk is a whole IPC stream (schema ... end marker), a Parquet
// chunk a whole file. A splicer turns that sequence into one document.
type splicer interface {
	// chunk writes the part of chunk i that belongs in the joined document.
	chunk(w io.Writer, i int, b []byte) error
	// end writes what closes the document.
	end(w io.Writer) error
}

func newSplicer(format string) (splicer, error) {
	switch format {
	case "JSONEachRow", "CSV", "RowBinary":
		return concatSplicer{}, nil
	case "CSVWithNames":
		return &csvSplicer{}, nil
	case "ArrowStream":
		return &arrowSplicer{}, nil
	case "Parquet":
		return &parquetSplicer{}, nil
	}
	return nil, fmt.Errorf("raw query: format %q is not streamable (want one of %v)", format, RawFormats)
}

// concatSplicer: formats without a header or trailer concatenate as they are.
type concatSplicer struct{}

func (concatSplicer) chunk(w io.Writer, _ int, b []byte) error { _, err := w.Write(b); return err }
func (concatSplicer) end(io.Writer) error                      { return nil }

// csvSplicer keeps the first chunk's header line and drops the (identical)
// header of the others.
type csvSplicer struct{ header []byte }

func (s *csvSplicer) chunk(w io.Writer, i int, b []byte) error {
	if i == 0 {
		s.header = bytes.Clone(b[:csvHeaderLen(b)])
		_, err := w.Write(b)
		return err
	}
	if !bytes.HasPrefix(b, s.header) {
		return errors.New("CSV header changed between chunks")
	}
	_, err := w.Write(b[len(s.header):])
	return err
}

func (s *csvSplicer) end(io.Writer) error { return nil }

// csvHeaderLen is the length of b's first record, newline included; a
// quoted name may hold a newline.
func csvHeaderLen(b []byte) int {
	quoted := false
	for i, c := range b {
		switch {
		case c == '"':
			quoted = !quoted
		case c == '\n' && !quoted:
			return i + 1
		}
	}
	return len(b)
}

// arrowEOS is the IPC stream's end-of-stream marker: continuation, length 0.
var arrowEOS = []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}

// arrowSplicer keeps the first chunk's schema message, drops the schema of
// the others (they must match it) and writes one end marker at the end.
// Dictionary batches would need more care; exports have none (ClickHouse
// writes them only for LowCardinality, which callers turn off with
// output_format_arrow_low_cardinality_as_dictionary=0 or avoid).
type arrowSplicer struct{ schema []byte }

func (s *arrowSplicer) chunk(w io.Writer, i int, b []byte) error {
	n, err := arrowSchemaLen(b)
	if err != nil {
		return err
	}
	if !bytes.HasSuffix(b, arrowEOS) {
		return errors.New("arrow chunk does not end with the end-of-stream marker")
	}
	body := b[:len(b)-len(arrowEOS)]
	if i == 0 {
		s.schema = bytes.Clone(b[:n])
		_, err = w.Write(body)
		return err
	}
	if !bytes.Equal(b[:n], s.schema) {
		return errors.New("arrow schema changed between chunks")
	}
	_, err = w.Write(body[n:])
	return err
}

func (s *arrowSplicer) end(w io.Writer) error {
	if s.schema == nil {
		return nil
	}
	_, err := w.Write(arrowEOS)
	return err
}

// arrowSchemaLen is the size of the leading schema message of an IPC
// stream: continuation marker, metadata length, metadata (a schema message
// has no body).
func arrowSchemaLen(b []byte) (int, error) {
	if len(b) < 8 || binary.LittleEndian.Uint32(b) != 0xffffffff {
		return 0, errors.New("arrow chunk does not start with a message")
	}
	n := 8 + int(binary.LittleEndian.Uint32(b[4:]))
	if n > len(b) {
		return 0, errors.New("arrow chunk: schema message truncated")
	}
	return n, nil
}

// QueryRaw implements RawQuerier on the embedded engine with its streaming
// API: each fetched chunk goes to w (spliced, see splicer), then is freed.
func (s *chdbStore) QueryRaw(ctx context.Context, w io.Writer, format, query string, args ...any) (int64, error) {
	q, err := Bind(query, args...)
	if err != nil {
		return 0, stmtErr("chdb", query, err)
	}
	sp, err := newSplicer(format)
	if err != nil {
		return 0, stmtErr("chdb", q, err)
	}
	if !streamable(q) {
		return 0, stmtErr("chdb", q, errors.New("raw query: only a SELECT streams"))
	}
	if err := ctx.Err(); err != nil {
		return 0, stmtErr("chdb", q, err)
	}
	c, err := s.acquire(ctx)
	if err != nil {
		return 0, stmtErr("chdb", q, err)
	}
	defer s.release(c)
	st, err := c.StreamQuery([]byte(q), format)
	if err != nil {
		return 0, stmtErr("chdb", q, err)
	}
	defer st.Free()
	var n int64
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			st.Cancel()
			return n, stmtErr("chdb", q, err)
		}
		ch, err := st.Next()
		if err != nil {
			return n, stmtErr("chdb", q, err)
		}
		b := ch.Bytes()
		if len(b) == 0 {
			ch.Free()
			if _, bare := sp.(concatSplicer); i == 0 && !bare {
				// An empty result streams no chunk at all, not even a
				// header or schema; the one-shot query writes those.
				return 0, stmtErr("chdb", q, rawWhole(c, w, q, format))
			}
			return n, stmtErr("chdb", q, sp.end(w))
		}
		n += int64(ch.RowsRead())
		err = sp.chunk(w, i, b)
		ch.Free()
		if err != nil {
			st.Cancel()
			return n, stmtErr("chdb", q, fmt.Errorf("write %s output: %w", format, err))
		}
	}
}

// rawWhole runs q in one piece and writes its result to w.
func rawWhole(c *libchdb.Conn, w io.Writer, q, format string) error {
	r, err := c.Query([]byte(q), format)
	if err != nil {
		return err
	}
	defer r.Free()
	_, err = w.Write(r.Bytes())
	return err
}

// parquetSplicer joins whole Parquet files into one: it writes the first
// file without its footer, then the column chunks of the others (their
// leading "PAR1" dropped), and at the end one footer holding every row
// group, their offsets moved to where their bytes landed. Only the footers
// are kept in memory.
type parquetSplicer struct {
	meta    *metadata.FileMetaData
	written int64
}

func (s *parquetSplicer) chunk(w io.Writer, i int, b []byte) error {
	const magic = "PAR1"
	if len(b) < 12 || string(b[:4]) != magic || string(b[len(b)-4:]) != magic {
		return errors.New("parquet chunk is not a Parquet file")
	}
	flen := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	if flen > len(b)-12 {
		return errors.New("parquet chunk: footer length out of range")
	}
	dataEnd := len(b) - 8 - flen
	fm, err := metadata.NewFileMetaData(b[dataEnd:len(b)-8], nil)
	if err != nil {
		return fmt.Errorf("parquet chunk footer: %w", err)
	}
	part := b[:dataEnd]
	if i > 0 {
		part = b[4:dataEnd]
		shiftParquetOffsets(fm, s.written-4)
		if err := s.meta.AppendRowGroups(fm); err != nil {
			return fmt.Errorf("parquet chunk %d: %w", i, err)
		}
	} else {
		s.meta = fm
	}
	n, err := w.Write(part)
	s.written += int64(n)
	return err
}

// shiftParquetOffsets adds d to every file offset of fm's row groups.
func shiftParquetOffsets(fm *metadata.FileMetaData, d int64) {
	shift := func(p *int64) {
		if p != nil {
			*p += d
		}
	}
	for _, rg := range fm.RowGroups {
		shift(rg.FileOffset)
		for _, c := range rg.Columns {
			c.FileOffset += d
			shift(c.OffsetIndexOffset)
			shift(c.ColumnIndexOffset)
			if m := c.MetaData; m != nil {
				m.DataPageOffset += d
				shift(m.IndexPageOffset)
				shift(m.DictionaryPageOffset)
				shift(m.BloomFilterOffset)
			}
		}
	}
}

func (s *parquetSplicer) end(w io.Writer) error {
	if s.meta == nil {
		return nil
	}
	for i, rg := range s.meta.RowGroups {
		if rg.Ordinal != nil {
			*rg.Ordinal = int16(i)
		}
	}
	var footer bytes.Buffer
	if _, err := s.meta.WriteTo(&footer, nil); err != nil {
		return fmt.Errorf("parquet footer: %w", err)
	}
	footer.Write(binary.LittleEndian.AppendUint32(nil, uint32(footer.Len())))
	footer.WriteString("PAR1")
	_, err := w.Write(footer.Bytes())
	return err
}
