package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/patchgrid/patchgrid/schemas/store"
)

var testCols = []Column{
	{"host_id", String, "host"},
	{"days", Int64, "days"},
	{"score", Float64, "score"},
	{"kev", Bool, "kev"},
	{"first_seen", Time, "first seen"},
	{"cves", StringList, "cves"},
}

// memRows is a store.Rows over generated values; row i is a pure function
// of i so tests can check any row and benchmarks need no memory per row.
type memRows struct {
	n, i int
	err  error
}

func (m *memRows) Columns() []store.Column {
	return []store.Column{{Name: "host_id", Type: "String"}, {Name: "days", Type: "Int64"}, {Name: "score", Type: "Float64"},
		{Name: "kev", Type: "UInt8"}, {Name: "first_seen", Type: "DateTime"}, {Name: "cves", Type: "Array(String)"}}
}
func (m *memRows) Next() bool { m.i++; return m.i <= m.n }
func (m *memRows) Scan(dest ...any) error {
	i := m.i
	*dest[0].(*string) = hosts[i%len(hosts)]
	*dest[1].(*int64) = int64(i - 3)
	*dest[2].(*float64) = float64(i) / 4
	*dest[3].(*uint8) = uint8(i % 2)
	if i%5 == 0 {
		*dest[4].(*time.Time) = time.Unix(0, 0).UTC()
	} else {
		*dest[4].(*time.Time) = time.Unix(int64(1_700_000_000+i), 0).UTC()
	}
	// A fresh slice per row, as a store cursor hands out.
	*dest[5].(*[]string) = []string{"CVE-2024-1", cves[i%len(cves)]}
	return nil
}

// Values are precomputed so that the benchmark measures the writers, not
// the fake cursor.
var hosts, cves = func() (h, c []string) {
	for i := range 1000 {
		h = append(h, hostName(i))
		c = append(c, fmt.Sprintf("CVE-2024-%d", i))
	}
	return h, c
}()

func (m *memRows) Err() error   { return m.err }
func (m *memRows) Close() error { return nil }

func hostName(i int) string {
	if i == 2 {
		return "a,\"quoted\"\nhost" // exercises CSV quoting and JSON escaping
	}
	return "host-" + string(rune('a'+i%26))
}

func export(t *testing.T, format string, n, batch int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(format, &buf, testCols)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Copy(context.Background(), &memRows{n: n}, testCols, w, batch)
	if err != nil {
		t.Fatal(err)
	}
	if got != int64(n) {
		t.Fatalf("%s: wrote %d rows, want %d", format, got, n)
	}
	return buf.Bytes()
}

func TestCSV(t *testing.T) {
	out := string(export(t, "csv", 5, 2))
	want := "host_id,days,score,kev,first_seen,cves\n" +
		"host-b,-2,0.25,true,2023-11-14T22:13:21Z,CVE-2024-1;CVE-2024-1\n" +
		"\"a,\"\"quoted\"\"\nhost\",-1,0.5,false,2023-11-14T22:13:22Z,CVE-2024-1;CVE-2024-2\n" +
		"host-d,0,0.75,true,2023-11-14T22:13:23Z,CVE-2024-1;CVE-2024-3\n" +
		"host-e,1,1,false,2023-11-14T22:13:24Z,CVE-2024-1;CVE-2024-4\n" +
		"host-f,2,1.25,true,,CVE-2024-1;CVE-2024-5\n"
	if out != want {
		t.Fatalf("csv:\n%s\nwant:\n%s", out, want)
	}
	if got := string(export(t, "csv", 0, 2)); got != "host_id,days,score,kev,first_seen,cves\n" {
		t.Fatalf("empty csv = %q", got)
	}
}

func TestJSONLines(t *testing.T) {
	out := export(t, "json", 5, 3)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 5", len(lines))
	}
	var row struct {
		HostID    string   `json:"host_id"`
		Days      int64    `json:"days"`
		Score     float64  `json:"score"`
		KEV       bool     `json:"kev"`
		FirstSeen *string  `json:"first_seen"`
		CVEs      []string `json:"cves"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &row); err != nil {
		t.Fatalf("line 2 %q: %v", lines[1], err)
	}
	if row.HostID != "a,\"quoted\"\nhost" || row.Days != -1 || row.Score != 0.5 || row.KEV || *row.FirstSeen != "2023-11-14T22:13:22Z" || row.CVEs[1] != "CVE-2024-2" {
		t.Fatalf("line 2 decoded to %+v", row)
	}
	if err := json.Unmarshal([]byte(lines[4]), &row); err != nil {
		t.Fatal(err)
	}
	if row.FirstSeen != nil {
		t.Fatalf("epoch time should be null, got %q", *row.FirstSeen)
	}
}

func TestAppendJSONStringInvalidUTF8(t *testing.T) {
	for _, s := range []string{"plain", "tab\tcontrol\x01", "bad\xffutf8", "ünïcødé", `back\slash"quote`} {
		var got string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); got != want {
			t.Fatalf("%q round-tripped to %q", s, got)
		}
	}
}

// checkRecords verifies rows read back from Arrow records against memRows.
func checkRecords(t *testing.T, recs []arrow.Record, n int) {
	t.Helper()
	row := 0
	for _, rec := range recs {
		hostCol := rec.Column(0).(*array.String)
		days := rec.Column(1).(*array.Int64)
		ts := rec.Column(4).(*array.Timestamp)
		cves := rec.Column(5).(*array.List)
		for j := 0; j < int(rec.NumRows()); j++ {
			row++
			if hostCol.Value(j) != hostName(row%1000) || days.Value(j) != int64(row-3) {
				t.Fatalf("row %d: host %q days %d", row, hostCol.Value(j), days.Value(j))
			}
			if (row%5 == 0) != ts.IsNull(j) {
				t.Fatalf("row %d: timestamp null = %v", row, ts.IsNull(j))
			}
			start, end := cves.ValueOffsets(j)
			if end-start != 2 || cves.ListValues().(*array.String).Value(int(start)+1) != fmt.Sprintf("CVE-2024-%d", row%1000) {
				t.Fatalf("row %d: bad cves list", row)
			}
		}
	}
	if row != n {
		t.Fatalf("read %d rows back, want %d", row, n)
	}
}

// TestArrowFile: --format arrow is an Arrow IPC file, which readers open
// with random access (pyarrow.ipc.open_file, ipc.NewFileReader).
func TestArrowFile(t *testing.T) {
	const n = 2500
	out := export(t, "arrow", n, 1000)
	if !bytes.HasPrefix(out, []byte("ARROW1")) || !bytes.HasSuffix(out, []byte("ARROW1")) {
		t.Fatalf("not an Arrow IPC file: starts %q, ends %q", out[:8], out[len(out)-8:])
	}
	r, err := ipc.NewFileReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Schema().Equal(Schema(testCols)) {
		t.Fatalf("schema %v", r.Schema())
	}
	if r.NumRecords() != 3 {
		t.Fatalf("%d record batches, want 3 (batches of 1000)", r.NumRecords())
	}
	var recs []arrow.Record
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		rec.Retain()
		recs = append(recs, rec)
	}
	checkRecords(t, recs, n)
}

func TestArrowStream(t *testing.T) {
	const n = 2500
	out := export(t, "arrow-stream", n, 1000)
	r, err := ipc.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if !r.Schema().Equal(Schema(testCols)) {
		t.Fatalf("schema %v", r.Schema())
	}
	var recs []arrow.Record
	for r.Next() {
		rec := r.Record()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := r.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d record batches, want 3 (batches of 1000)", len(recs))
	}
	checkRecords(t, recs, n)
}

func TestParquet(t *testing.T) {
	const n = 2500
	out := export(t, "parquet", n, 1000)
	pf, err := file.NewParquetReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 4096}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 10000)
	defer tr.Release()
	var recs []arrow.Record
	for tr.Next() {
		rec := tr.Record()
		rec.Retain()
		recs = append(recs, rec)
	}
	checkRecords(t, recs, n)
}

type failRows struct{ memRows }

func (f *failRows) Err() error { return errors.New("connection reset") }

func TestCopyReportsCursorError(t *testing.T) {
	w, _ := NewWriter("csv", io.Discard, testCols)
	_, err := Copy(context.Background(), &failRows{memRows{n: 3}}, testCols, w, 2)
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("err = %v", err)
	}
}

func TestCopyRejectsColumnMismatch(t *testing.T) {
	w, _ := NewWriter("csv", io.Discard, testCols[:2])
	if _, err := Copy(context.Background(), &memRows{n: 3}, testCols[:2], w, 2); err == nil {
		t.Fatal("want error for 6 result columns against 2 export columns")
	}
}

func TestUnknownFormat(t *testing.T) {
	if _, err := NewWriter("xml", io.Discard, testCols); err == nil {
		t.Fatal("want error")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCopy measures export throughput from a cursor into each format;
// rows/s is what the target (≥ 1M rows/s) is about.
func BenchmarkCopy(b *testing.B) {
	const n = 200_000
	for _, format := range Formats {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				w, err := NewWriter(format, io.Discard, testCols)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Copy(context.Background(), &memRows{n: n}, testCols, w, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			// On a shared machine wall time undercounts: rows per second of
			// CPU this process got is what one idle core would do.
			b.ReportMetric(float64(n)*float64(b.N)/(cpuTime()-cpu0).Seconds(), "rows/cpu-s")
		})
	}
}

func TestCSVListQuoting(t *testing.T) {
	for _, c := range []struct {
		items []string
		want  string
	}{
		{nil, ""},
		{[]string{"a", "b"}, "a;b"},
		{[]string{"a,b", `c"d`}, `"a,b;c""d"`},
	} {
		if got := string(appendCSVList(nil, c.items)); got != c.want {
			t.Errorf("%q: got %s, want %s", c.items, got, c.want)
		}
	}
}

// FuzzAppendJSONString: exported text comes from scanned hosts and feeds;
// whatever it holds, each JSON line must parse back to the same text.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\x7f", "bad\xff", "ü€😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); got != want && utf8.ValidString(s) {
			t.Fatalf("%q round-tripped to %q", s, got)
		}
	})
}

// TestStreamToFile: an IPC stream (what the embedded engine writes)
// becomes the same batches in an IPC file.
func TestStreamToFile(t *testing.T) {
	const n = 2500
	stream := export(t, "arrow-stream", n, 1000)
	var out bytes.Buffer
	w := StreamToFile(&out)
	for b := stream; len(b) > 0; b = b[min(len(b), 777):] { // odd chunks
		if _, err := w.Write(b[:min(len(b), 777)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := ipc.NewFileReader(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs []arrow.Record
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		rec.Retain()
		recs = append(recs, rec)
	}
	checkRecords(t, recs, n)

	w = StreamToFile(io.Discard)
	if err := w.Close(); err == nil {
		t.Fatal("an empty stream converted without error")
	}
}
