// Package storetest is the conformance suite every store backend passes:
// the same statements, values and errors on a ClickHouse server (including
// the 2018 18.16.1) and on embedded chDB.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// Run runs the suite. open returns a store on an empty database of its own,
// closed by the test's cleanup.
func Run(t *testing.T, open func(t testing.TB) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"DDL", testDDL},
		{"InsertAllTypes", testInsertAllTypes},
		{"QueryParams", testQueryParams},
		{"ScanConversions", testScanConversions},
		{"ErrorNamesStatement", testErrorNamesStatement},
		{"InsertBadValue", testInsertBadValue},
		{"InsertAfterSchemaChange", testInsertAfterSchemaChange},
		{"EmptyResult", testEmptyResult},
		{"LargeInsert", testLargeInsert},
		{"NestedQuery", testNestedQuery},
		{"Canceled", testCanceled},
		{"Concurrent", testConcurrent},
		{"ErrorMidStream", testErrorMidStream},
		{"ServerVersion", testServerVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testDDL(t *testing.T, st store.Store) {
	c := ctx(t)
	must(t, st.Exec(c, `CREATE TABLE IF NOT EXISTS ddl (k String, v UInt32) ENGINE = MergeTree ORDER BY k`))
	// IF NOT EXISTS twice is a no-op, as migrations rely on.
	must(t, st.Exec(c, `CREATE TABLE IF NOT EXISTS ddl (k String, v UInt32) ENGINE = MergeTree ORDER BY k`))
	must(t, st.Exec(c, `ALTER TABLE ddl ADD COLUMN w String`))
	var n uint64
	scanOne(t, st, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = ?", []any{"ddl"}, &n)
	if n != 3 {
		t.Fatalf("ddl has %d columns, want 3", n)
	}
	must(t, st.Exec(c, `DROP TABLE ddl`))
	scanOne(t, st, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?", []any{"ddl"}, &n)
	if n != 0 {
		t.Fatalf("ddl still exists after DROP")
	}
}

func scanOne(t *testing.T, st store.Store, q string, args []any, dest ...any) {
	t.Helper()
	rows, err := st.Query(ctx(t), q, args...)
	must(t, err)
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("%s: no row (err %v)", q, rows.Err())
	}
	must(t, rows.Scan(dest...))
	if rows.Next() {
		t.Fatalf("%s: more than one row", q)
	}
	must(t, rows.Err())
	must(t, rows.Close())
}

// binaryStrings are version-key-like strings: every byte value must survive.
func binaryStrings() []string {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	return []string{
		"", "plain", "a\x00b", "\x00", "\x00\x00\xff", "\xff\xfe\x80\x7f", "quote'back\\slash\"dq",
		"tab\tnl\nret\r", "ünïcødé ✓", "?", "'?'", string(all),
	}
}

const allTypesDDL = `CREATE TABLE all_types (
	id UInt32, s String, fs FixedString(3), u8 UInt8, u16 UInt16, u32 UInt32, u64 UInt64,
	i8 Int8, i16 Int16, i32 Int32, i64 Int64, f32 Float32, f64 Float64,
	flag UInt8, d Date, dt DateTime, arr Array(String), arru Array(UInt64), ns Nullable(String)
) ENGINE = MergeTree ORDER BY id`

var allTypesCols = []string{"id", "s", "fs", "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64",
	"f32", "f64", "flag", "d", "dt", "arr", "arru", "ns"}

type allTypesRow struct {
	id    uint32
	s, fs string
	u8    uint8
	u16   uint16
	u32   uint32
	u64   uint64
	i8    int8
	i16   int16
	i32   int32
	i64   int64
	f32   float32
	f64   float64
	flag  bool
	d, dt time.Time
	arr   []string
	arru  []uint64
	ns    *string
}

func (r allTypesRow) values() []any {
	var ns any
	if r.ns != nil {
		ns = *r.ns
	}
	return []any{r.id, r.s, r.fs, r.u8, r.u16, r.u32, r.u64, r.i8, r.i16, r.i32, r.i64, r.f32, r.f64,
		r.flag, r.d, r.dt, r.arr, r.arru, ns}
}

func testInsertAllTypes(t *testing.T, st store.Store) {
	c := ctx(t)
	must(t, st.Exec(c, allTypesDDL))
	day := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	at := time.Date(2024, 2, 29, 13, 14, 15, 0, time.UTC)
	var want []allTypesRow
	for i, s := range binaryStrings() {
		s := s
		r := allTypesRow{
			id: uint32(i), s: s, fs: s[:min(3, len(s))], u8: math.MaxUint8, u16: math.MaxUint16,
			u32: math.MaxUint32, u64: math.MaxUint64, i8: math.MinInt8, i16: math.MinInt16,
			i32: math.MinInt32, i64: math.MinInt64, f32: 1.5, f64: -2.25e300, flag: i%2 == 1,
			d: day, dt: at.Add(time.Duration(i) * time.Hour), arr: []string{s, "x", s}, arru: []uint64{0, math.MaxUint64},
		}
		if i%3 != 0 {
			r.ns = &s
		}
		if i == 1 {
			r.arr, r.arru = []string{}, []uint64{}
			r.u64, r.i64 = 0, math.MaxInt64
		}
		want = append(want, r)
	}
	rows := make([][]any, len(want))
	for i, r := range want {
		rows[i] = r.values()
	}
	must(t, st.Insert(c, "all_types", allTypesCols, rows))

	res, err := st.Query(c, "SELECT "+strings.Join(allTypesCols, ", ")+" FROM all_types ORDER BY id")
	must(t, err)
	defer res.Close()
	cols := res.Columns()
	if len(cols) != len(allTypesCols) || cols[1].Name != "s" || cols[1].Type != "String" || cols[17].Type != "Array(UInt64)" {
		t.Fatalf("columns = %v", cols)
	}
	var got []allTypesRow
	for res.Next() {
		var r allTypesRow
		var ns *string
		var nsAny any
		must(t, res.Scan(&r.id, &r.s, &r.fs, &r.u8, &r.u16, &r.u32, &r.u64, &r.i8, &r.i16, &r.i32, &r.i64,
			&r.f32, &r.f64, &r.flag, &r.d, &r.dt, &r.arr, &r.arru, &nsAny))
		if nsAny != nil {
			s := nsAny.(string)
			ns = &s
		}
		r.ns = ns
		// FixedString pads with NULs.
		r.fs = strings.TrimRight(r.fs, "\x00")
		got = append(got, r)
	}
	must(t, res.Err())
	for i := range want {
		want[i].fs = strings.TrimRight(want[i].fs, "\x00")
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// Binary-safe filtering: every string finds exactly its own row.
	for i, s := range binaryStrings() {
		var ids []uint32
		var n uint64
		scanOne(t, st, "SELECT groupArray(id), count() FROM all_types WHERE s = ? AND (has(arr, ?) OR empty(arr))", []any{s, s}, &ids, &n)
		if n != 1 || ids[0] != uint32(i) {
			t.Errorf("string %q found rows %v, want [%d]", s, ids, i)
		}
	}
}

func testQueryParams(t *testing.T, st store.Store) {
	at := time.Date(2031, 12, 31, 23, 59, 59, 0, time.UTC)
	for _, s := range binaryStrings() {
		var got string
		var l uint64
		scanOne(t, st, "SELECT ?, length(?)", []any{s, s}, &got, &l)
		if got != s || l != uint64(len(s)) {
			t.Errorf("SELECT ? of %q = %q (length %d)", s, got, l)
		}
	}
	var (
		lit, str string
		i        int64
		u        uint64
		f        float64
		b        bool
		tm       time.Time
		arr      []string
		null     any
	)
	scanOne(t, st, "SELECT '?', ?, ?, ?, ?, ?, ?, ? /* ? */, ? -- ?\n",
		[]any{"it's", int64(-42), uint64(math.MaxUint64), 0.25, true, at, []string{"a'b", "c\x00"}, nil},
		&lit, &str, &i, &u, &f, &b, &tm, &arr, &null)
	if lit != "?" || str != "it's" || i != -42 || u != math.MaxUint64 || f != 0.25 || !b || !tm.Equal(at) ||
		!reflect.DeepEqual(arr, []string{"a'b", "c\x00"}) || null != nil {
		t.Errorf("params came back as %q %q %d %d %v %v %v %q %v", lit, str, i, u, f, b, tm, arr, null)
	}
}

func testScanConversions(t *testing.T, st store.Store) {
	var (
		asBool  bool
		asInt   int
		asI64   int64
		asU16   uint16
		asF     float64
		asAny   any
		asBytes []byte
	)
	scanOne(t, st, "SELECT toUInt8(1), toUInt32(7), toInt16(-3), toUInt8(200), toUInt32(5), toUInt64(9), 'bytes'",
		nil, &asBool, &asInt, &asI64, &asU16, &asF, &asAny, &asBytes)
	if !asBool || asInt != 7 || asI64 != -3 || asU16 != 200 || asF != 5 || asAny != uint64(9) || string(asBytes) != "bytes" {
		t.Errorf("conversions: %v %v %v %v %v %#v %q", asBool, asInt, asI64, asU16, asF, asAny, asBytes)
	}
	rows, err := st.Query(ctx(t), "SELECT toUInt64(18446744073709551615), toInt8(-1)")
	must(t, err)
	defer rows.Close()
	if !rows.Next() {
		t.Fatal(rows.Err())
	}
	var small int64
	var u uint64
	if err := rows.Scan(&small, &u); err == nil {
		t.Errorf("scanning UInt64 max into int64 and -1 into uint64 succeeded")
	}
}

func testErrorNamesStatement(t *testing.T, st store.Store) {
	c := ctx(t)
	q := "SELECT no_such_column_xyz FROM system.one WHERE dummy = ?"
	_, err := st.Query(c, q, 0)
	if err == nil {
		t.Fatal("query of a missing column succeeded")
	}
	var se *store.Error
	if !errors.As(err, &se) || se.Backend != st.Backend() || !strings.Contains(err.Error(), "no_such_column_xyz FROM system.one WHERE dummy = 0") {
		t.Errorf("error does not name backend and statement: %v", err)
	}
	err = st.Exec(c, "CREATE TABLE broken ("+strings.Repeat("x ", 500)+")")
	if err == nil || !strings.Contains(err.Error(), "CREATE TABLE broken") || len(err.Error()) > 2000 {
		t.Errorf("long statement error: %v", err)
	}
	if err := st.Exec(c, "SELECT ?, ?", 1); err == nil || !strings.Contains(err.Error(), "SELECT ?, ?") {
		t.Errorf("too few args: %v", err)
	}
	if err := st.Exec(c, "SELECT 1", 1); err == nil {
		t.Errorf("too many args: no error")
	}
}

func testInsertBadValue(t *testing.T, st store.Store) {
	c := ctx(t)
	must(t, st.Exec(c, "CREATE TABLE bad (k String, v UInt8) ENGINE = MergeTree ORDER BY k"))
	for _, row := range [][]any{{"a", 300}, {"a", -1}, {"a", "x"}, {1, 1}, {"a"}} {
		err := st.Insert(c, "bad", []string{"k", "v"}, [][]any{{"ok", 1}, row})
		if err == nil || !strings.Contains(err.Error(), "INSERT INTO bad (k, v)") || !strings.Contains(err.Error(), "row 1") {
			t.Errorf("insert of %v: %v", row, err)
		}
	}
	if err := st.Insert(c, "bad", []string{"k", "nope"}, [][]any{{"a", 1}}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("insert into missing column: %v", err)
	}
	var n uint64
	scanOne(t, st, "SELECT count() FROM bad", nil, &n)
	if n != 0 {
		t.Errorf("%d rows written by failed inserts", n)
	}
	must(t, st.Insert(c, "bad", []string{"k", "v"}, nil))
}

// testInsertAfterSchemaChange: stores remember column types between
// inserts; a table changed or re-created through the store in between must
// still be written with its current types.
func testInsertAfterSchemaChange(t *testing.T, st store.Store) {
	c := ctx(t)
	must(t, st.Exec(c, "CREATE TABLE evolve (k String, v UInt8) ENGINE = MergeTree ORDER BY k"))
	must(t, st.Insert(c, "evolve", []string{"k", "v"}, [][]any{{"a", 1}}))
	must(t, st.Exec(c, "ALTER TABLE evolve ADD COLUMN w String"))
	must(t, st.Insert(c, "evolve", []string{"k", "v", "w"}, [][]any{{"b", 2, "x"}}))
	// Re-created with a wider type: 300 does not fit the old UInt8.
	must(t, st.Exec(c, "DROP TABLE evolve"))
	must(t, st.Exec(c, "CREATE TABLE evolve (k String, v UInt16) ENGINE = MergeTree ORDER BY k"))
	must(t, st.Insert(c, "evolve", []string{"k", "v"}, [][]any{{"c", 300}}))
	var n uint64
	scanOne(t, st, "SELECT sum(v) FROM evolve", nil, &n)
	if n != 300 {
		t.Fatalf("sum(v) = %d after re-creation, want 300", n)
	}
	for i := range 3 { // repeated inserts reuse what was described
		must(t, st.Insert(c, "evolve", []string{"k", "v"}, [][]any{{fmt.Sprint("r", i), 1}}))
	}
	scanOne(t, st, "SELECT count() FROM evolve", nil, &n)
	if n != 4 {
		t.Fatalf("%d rows, want 4", n)
	}
}

func testEmptyResult(t *testing.T, st store.Store) {
	c := ctx(t)
	must(t, st.Exec(c, "CREATE TABLE empty (k String) ENGINE = MergeTree ORDER BY k"))
	rows, err := st.Query(c, "SELECT k FROM empty WHERE k = ?", "x")
	must(t, err)
	// An empty export still needs its header.
	if cols := rows.Columns(); len(cols) != 1 || cols[0] != (store.Column{Name: "k", Type: "String"}) {
		t.Errorf("columns of an empty result: %v", cols)
	}
	if rows.Next() {
		t.Error("row from empty table")
	}
	must(t, rows.Err())
	must(t, rows.Close())
	must(t, rows.Close()) // closing twice is harmless
}

func testLargeInsert(t *testing.T, st store.Store) {
	c := ctx(t)
	must(t, st.Exec(c, "CREATE TABLE large (host String, n UInt64, tags Array(String), at DateTime) ENGINE = MergeTree ORDER BY (host, n)"))
	const total = 100_000
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([][]any, total)
	for i := range rows {
		rows[i] = []any{fmt.Sprintf("host-%05d", i%1000), uint64(i), []string{"t", fmt.Sprint(i % 7)}, at}
	}
	start := time.Now()
	must(t, st.Insert(c, "large", []string{"host", "n", "tags", "at"}, rows))
	t.Logf("%s: inserted %d rows in %v", st.Backend(), total, time.Since(start))
	var n, sum, hosts uint64
	scanOne(t, st, "SELECT count(), sum(n), uniqExact(host) FROM large", nil, &n, &sum, &hosts)
	if n != total || sum != total*(total-1)/2 || hosts != 1000 {
		t.Fatalf("count %d sum %d hosts %d", n, sum, hosts)
	}
	start = time.Now()
	res, err := st.Query(c, "SELECT host, n, tags, at FROM large")
	must(t, err)
	defer res.Close()
	var got uint64
	var host string
	var tags []string
	var tm time.Time
	for res.Next() {
		must(t, res.Scan(&host, &n, &tags, &tm))
		got++
	}
	must(t, res.Err())
	t.Logf("%s: read %d rows in %v", st.Backend(), got, time.Since(start))
	if got != total || !tm.Equal(at) {
		t.Fatalf("read %d rows, last time %v", got, tm)
	}
}

func testNestedQuery(t *testing.T, st store.Store) {
	c := ctx(t)
	outer, err := st.Query(c, "SELECT number FROM system.numbers LIMIT 3")
	must(t, err)
	defer outer.Close()
	for outer.Next() {
		var n, sq uint64
		must(t, outer.Scan(&n))
		scanOne(t, st, "SELECT ? * ?", []any{n, n}, &sq)
		if sq != n*n {
			t.Errorf("%d squared = %d", n, sq)
		}
	}
	must(t, outer.Err())
	// Stopping early releases the statement.
	early, err := st.Query(c, "SELECT number FROM system.numbers LIMIT 1000000")
	must(t, err)
	early.Next()
	must(t, early.Close())
	var one uint8
	scanOne(t, st, "SELECT 1", nil, &one)
}

func testCanceled(t *testing.T, st store.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.Query(c, "SELECT 1"); !errors.Is(err, context.Canceled) {
		t.Errorf("query with canceled context: %v", err)
	}
}

func testServerVersion(t *testing.T, st store.Store) {
	v, err := st.ServerVersion(ctx(t))
	must(t, err)
	if v.Major < 18 || v.Text == "" {
		t.Errorf("version %+v", v)
	}
	t.Logf("%s: ClickHouse %s", st.Backend(), v.Text)
}

// Ingest runs inserts and queries from several goroutines on one store.
func testConcurrent(t *testing.T, st store.Store) {
	c := ctx(t)
	must(t, st.Exec(c, "CREATE TABLE conc (w UInt8, n UInt32) ENGINE = MergeTree ORDER BY (w, n)"))
	const workers, perWorker = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				if err := st.Insert(c, "conc", []string{"w", "n"}, [][]any{{w, i}}); err != nil {
					errs <- err
					return
				}
				rows, err := st.Query(c, "SELECT count() FROM conc WHERE w = ?", w)
				if err != nil {
					errs <- err
					return
				}
				var n uint64
				for rows.Next() {
					err = rows.Scan(&n)
				}
				rows.Close()
				if err == nil && n != uint64(i+1) {
					err = fmt.Errorf("worker %d sees %d rows after %d inserts", w, n, i+1)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A statement that fails after rows have arrived reports it through Err,
// and the store stays usable.
func testErrorMidStream(t *testing.T, st store.Store) {
	c := ctx(t)
	rows, err := st.Query(c, "SELECT number, throwIf(number = 300000) FROM system.numbers LIMIT 500000")
	if err == nil {
		n := 0
		for rows.Next() {
			n++
		}
		err = rows.Err()
		rows.Close()
		if n >= 500000 {
			t.Errorf("read all %d rows", n)
		}
	}
	if err == nil || !strings.Contains(err.Error(), "throwIf") {
		t.Errorf("error = %v", err)
	}
	var one uint8
	scanOne(t, st, "SELECT 1", nil, &one)
}
