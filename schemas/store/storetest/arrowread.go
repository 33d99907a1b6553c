package storetest

import (
	"bytes"
	"context"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// EachArrowRecord decodes b, an Arrow IPC stream or (parquet) a Parquet
// file, calls fn with each record in order and returns the schema. A record
// is valid only during fn: Retain it to keep it. Tests of the store's raw
// formats and of the exports decode their output with it.
func EachArrowRecord(t testing.TB, b []byte, parquet bool, fn func(arrow.Record)) *arrow.Schema {
	t.Helper()
	if !parquet && bytes.HasPrefix(b, []byte("ARROW1")) {
		// An Arrow IPC file (export format arrow).
		r, err := ipc.NewFileReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for i := 0; i < r.NumRecords(); i++ {
			rec, err := r.Record(i)
			if err != nil {
				t.Fatal(err)
			}
			fn(rec)
		}
		return r.Schema()
	}
	if !parquet {
		r, err := ipc.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		for r.Next() {
			fn(r.Record())
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return r.Schema()
	}
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 1<<16)
	defer tr.Release()
	for tr.Next() {
		fn(tr.Record())
	}
	return tbl.Schema()
}
