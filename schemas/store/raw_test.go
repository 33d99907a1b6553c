package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/store/storetest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// rawSum decodes a QueryRaw document of the statement rawQuery and returns
// its row count and the sum of column n.
func rawSum(t *testing.T, format string, b []byte) (rows, sum int64) {
	t.Helper()
	addRecord := func(rec arrow.Record) {
		rows += rec.NumRows()
		for _, v := range rec.Column(0).(*array.Uint64).Uint64Values() {
			sum += int64(v)
		}
	}
	switch format {
	case "ArrowStream", "Parquet":
		storetest.EachArrowRecord(t, b, format == "Parquet", addRecord)
	case "CSVWithNames":
		recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 || strings.Join(recs[0], ",") != "n,s" {
			t.Fatalf("CSV header: %v", recs[:min(len(recs), 1)])
		}
		for _, r := range recs[1:] {
			var v int64
			if err := json.Unmarshal([]byte(r[0]), &v); err != nil {
				t.Fatal(err)
			}
			rows, sum = rows+1, sum+v
		}
	case "JSONEachRow":
		dec := json.NewDecoder(bytes.NewReader(b))
		for {
			var r struct{ N int64 }
			if err := dec.Decode(&r); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			rows, sum = rows+1, sum+r.N
		}
	case "RowBinary": // n UInt64, s String (its decimal text, checked)
		for len(b) > 0 {
			if len(b) < 9 {
				t.Fatalf("RowBinary: %d bytes left, want a row", len(b))
			}
			v := binary.LittleEndian.Uint64(b)
			l, k := binary.Uvarint(b[8:])
			if k <= 0 || uint64(len(b)-8-k) < l {
				t.Fatal("RowBinary: bad string length")
			}
			if got := string(b[8+k : 8+k+int(l)]); got != strconv.FormatUint(v, 10) {
				t.Fatalf("RowBinary: s = %q for n = %d", got, v)
			}
			b = b[8+k+int(l):]
			rows, sum = rows+1, sum+int64(v)
		}
	}
	return rows, sum
}

// TestQueryRawJoinsChunks checks that each format comes out as one valid
// document however many chunks the engine formatted separately (a chunk
// is about 65k rows), and for an empty result too.
func TestQueryRawJoinsChunks(t *testing.T) {
	st := testenv.CHDBStore(t)
	rq, ok := st.(store.RawQuerier)
	if !ok {
		t.Fatal("the chDB store does not implement RawQuerier")
	}
	ctx := context.Background()
	const q = "SELECT number AS n, toString(number) AS s FROM numbers(?) WHERE number % 3 = ? SETTINGS output_format_parquet_string_as_string = 1"
	for _, format := range []string{"ArrowStream", "Parquet", "CSVWithNames", "JSONEachRow", "RowBinary"} {
		for _, c := range []struct{ n, rem, wantRows, wantSum int64 }{
			{300_000, 1, 100_000, 100_000 * (1 + 299_998) / 2}, // several chunks, filtered
			{10, 1, 3, 1 + 4 + 7},                              // one chunk
			{10, 5, 0, 0},                                      // empty
		} {
			var buf bytes.Buffer
			n, err := rq.QueryRaw(ctx, &buf, format, q, c.n, c.rem)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			rows, sum := rawSum(t, format, buf.Bytes())
			if n != c.wantRows || rows != c.wantRows || sum != c.wantSum {
				t.Errorf("%s over %d: returned %d rows, decoded %d rows summing to %d; want %d rows summing to %d",
					format, c.n, n, rows, sum, c.wantRows, c.wantSum)
			}
		}
	}
}

func TestQueryRawErrors(t *testing.T) {
	st := testenv.CHDBStore(t)
	rq := st.(store.RawQuerier)
	ctx := context.Background()
	var buf bytes.Buffer
	_, err := rq.QueryRaw(ctx, &buf, "JSONEachRow", "SELECT no_such_column FROM numbers(3)")
	var se *store.Error
	if !errors.As(err, &se) || !strings.Contains(se.Statement, "no_such_column") || buf.Len() != 0 {
		t.Errorf("bad statement: err %v, wrote %d bytes", err, buf.Len())
	}
	if _, err := rq.QueryRaw(ctx, &buf, "Pretty", "SELECT 1"); err == nil {
		t.Error("format Pretty: want an error")
	}
	if _, err := rq.QueryRaw(ctx, &buf, "JSONEachRow", "INSERT INTO t VALUES (1)"); err == nil {
		t.Error("INSERT: want an error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := rq.QueryRaw(cctx, &buf, "JSONEachRow", "SELECT 1"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// A writer failing mid-stream stops the query; the store stays usable.
	_, err = rq.QueryRaw(ctx, failWriter{}, "CSVWithNames", "SELECT number FROM numbers(300000)")
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("failing writer: %v", err)
	}
	buf.Reset()
	if n, err := rq.QueryRaw(ctx, &buf, "CSVWithNames", "SELECT 1 AS x"); err != nil || n != 1 || buf.String() != "\"x\"\n1\n" {
		t.Errorf("after a failed stream: n=%d err=%v %q", n, err, buf.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
