package store

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseType(t *testing.T) {
	for _, s := range []string{"String", "LowCardinality(String)", "Nullable(UInt8)", "Array(Array(String))",
		"FixedString(16)", "DateTime('UTC')", "DateTime64(3, 'Europe/Berlin')", "Enum8('a' = 1, 'b,c' = -2)",
		"Tuple(String, UInt64)", "Tuple(a String, b Array(UInt8))", "Array(Nullable(Float64))", "UUID", "Date32"} {
		if _, err := parseType(s); err != nil {
			t.Errorf("parseType(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "Decimal(10, 2)", "Map(String, String)", "FixedString(x)", "Array(String", "Enum8('a')"} {
		if _, err := parseType(s); err == nil {
			t.Errorf("parseType(%q) succeeded", s)
		}
	}
	e, _ := parseType("Enum8('a' = 1, 'b,c' = -2)")
	if e.enum[-2] != "b,c" || e.enumR["a"] != 1 {
		t.Errorf("enum parsed as %v", e.enum)
	}
}

// Values survive encoding and decoding; what the caller passes in
// normalizes to the canonical Go type.
func TestRowBinaryRoundTrip(t *testing.T) {
	at := time.Date(2024, 2, 29, 13, 14, 15, 123_000_000, time.UTC)
	tests := []struct {
		typ  string
		in   any
		want any
	}{
		{"String", "a\x00\xff", "a\x00\xff"},
		{"String", []byte("b"), "b"},
		{"LowCardinality(String)", "lc", "lc"},
		{"FixedString(4)", "ab", "ab\x00\x00"},
		{"UInt8", true, uint8(1)},
		{"UInt16", 65535, uint16(65535)},
		{"UInt32", int64(7), uint32(7)},
		{"UInt64", uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{"Int8", -128, int8(-128)},
		{"Int16", int16(-2), int16(-2)},
		{"Int32", uint8(5), int32(5)},
		{"Int64", math.MinInt64, int64(math.MinInt64)},
		{"Float32", 1.5, float32(1.5)},
		{"Float64", 3, float64(3)},
		{"Bool", 1, true},
		{"Date", at, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"Date32", time.Date(1900, 1, 2, 0, 0, 0, 0, time.UTC), time.Date(1900, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"DateTime", at, at.Truncate(time.Second)},
		{"DateTime('Asia/Tokyo')", at.In(time.FixedZone("x", 9*3600)), at.Truncate(time.Second)},
		{"DateTime64(3)", at, at},
		{"DateTime64(3)", time.Date(1969, 12, 31, 23, 59, 59, 500_000_000, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 500_000_000, time.UTC)},
		{"Enum8('a' = 1, 'b' = -2)", "b", "b"},
		{"Enum16('x' = 1000)", "x", "x"},
		{"UUID", "01234567-89ab-cdef-0123-456789abcdef", "01234567-89ab-cdef-0123-456789abcdef"},
		{"Nullable(String)", nil, nil},
		{"Nullable(UInt32)", 9, uint32(9)},
		{"Array(String)", []string{"a", "\x00"}, []string{"a", "\x00"}},
		{"Array(UInt64)", []int{1, 2}, []uint64{1, 2}},
		{"Array(Array(String))", [][]string{{"a"}, {}}, [][]string{{"a"}, {}}},
		{"Array(Nullable(UInt8))", []any{1, nil}, []*uint8{ptr(uint8(1)), nil}},
	}
	for _, tc := range tests {
		typ, err := parseType(tc.typ)
		if err != nil {
			t.Fatal(err)
		}
		v, err := normalize(typ, tc.in)
		if err != nil {
			t.Errorf("%s: normalize(%#v): %v", tc.typ, tc.in, err)
			continue
		}
		b, err := appendRowBinary(nil, typ, v)
		if err != nil {
			t.Errorf("%s: encode: %v", tc.typ, err)
			continue
		}
		r := rbReader{b: b}
		got, err := r.decode(typ)
		if err != nil || r.off != len(b) {
			t.Errorf("%s: decode: %v (read %d of %d bytes)", tc.typ, err, r.off, len(b))
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %#v came back as %#v, want %#v", tc.typ, tc.in, got, tc.want)
		}
		r = rbReader{b: b}
		if err := r.skip(typ); err != nil || r.off != len(b) {
			t.Errorf("%s: skip: %v (%d of %d bytes)", tc.typ, err, r.off, len(b))
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestNormalizeRejects(t *testing.T) {
	tests := []struct {
		typ string
		in  any
	}{
		{"UInt8", 256}, {"UInt8", -1}, {"Int8", 128}, {"Int64", uint64(math.MaxUint64)}, {"UInt32", "1"},
		{"String", 1}, {"String", nil}, {"FixedString(2)", "abc"}, {"Enum8('a' = 1)", "b"},
		{"UUID", "nope"}, {"DateTime", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}, {"DateTime", "2024-01-01"},
		{"Array(String)", "a"}, {"Array(UInt8)", []int{1, 300}}, {"Bool", 2}, {"Float64", "1"},
		{"Tuple(String)", []any{"a"}},
	}
	for _, tc := range tests {
		typ, err := parseType(tc.typ)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := normalize(typ, tc.in); err == nil {
			t.Errorf("normalize(%s, %#v) = %#v, want error", tc.typ, tc.in, v)
		}
	}
}

// TestNormalizeCanonical: a value already of its column's canonical type
// comes back as it is, without an allocation (every insert normalizes
// every value), and one of another type is still converted.
func TestNormalizeCanonical(t *testing.T) {
	tests := []struct {
		typ      string
		in, want any
	}{
		{"String", "openssl", "openssl"}, {"UInt8", uint8(1), uint8(1)}, {"UInt16", uint16(7), uint16(7)},
		{"UInt32", uint32(70000), uint32(70000)}, {"UInt64", uint64(1 << 40), uint64(1 << 40)},
		{"Int64", int64(-3), int64(-3)}, {"Float64", 0.5, 0.5}, {"Bool", true, true},
		{"DateTime", time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC), time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)},
		// Converted: the canonical type differs.
		{"UInt32", 7, uint32(7)}, {"String", []byte("x"), "x"}, {"Int32", int64(5), int32(5)},
		{"DateTime", time.Date(2026, 12, 5, 8, 0, 0, 0, time.FixedZone("CET", 3600)), time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		typ, err := parseType(tc.typ)
		if err != nil {
			t.Fatal(err)
		}
		got, err := normalize(typ, tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("normalize(%s, %#v) = %#v, %v; want %#v", tc.typ, tc.in, got, err, tc.want)
		}
		if reflect.TypeOf(tc.in) != reflect.TypeOf(tc.want) {
			continue
		}
		if tm, ok := tc.in.(time.Time); ok && tm.Location() != time.UTC {
			continue
		}
		if n := testing.AllocsPerRun(100, func() { _, _ = normalize(typ, tc.in) }); n != 0 {
			t.Errorf("normalize(%s, %#v): %v allocations, want none", tc.typ, tc.in, n)
		}
	}
}

// FuzzDecodeRowBinary feeds arbitrary bytes to the result decoder chDB
// output goes through: it must fail cleanly, never panic or hang.
func FuzzDecodeRowBinary(f *testing.F) {
	seed := []byte{2, 1, 'a', 1, 'b', 6, 'S', 't', 'r', 'i', 'n', 'g', 13, 'A', 'r', 'r', 'a', 'y', '(', 'U', 'I', 'n', 't', '8', ')', 1, 'x', 2, 1, 2}
	f.Add(seed)
	f.Add([]byte{1, 1, 'n', 16, 'N', 'u', 'l', 'l', 'a', 'b', 'l', 'e', '(', 'N', 'o', 't', 'h', 'i', 'n', 'g', ')', 1, 1})
	f.Add([]byte{1, 1, 'a', 14, 'A', 'r', 'r', 'a', 'y', '(', 'N', 'o', 't', 'h', 'i', 'n', 'g', ')', 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, doc []byte) {
		r := &chdbRows{ctx: context.Background(), stmt: "fuzz", rd: rbReader{b: doc}, done: false}
		if err := r.readHeader(); err != nil {
			return
		}
		dest := make([]any, len(r.types))
		for i := range dest {
			dest[i] = new(any)
		}
		for n := 0; r.Next(); n++ {
			if err := r.Scan(dest...); err != nil {
				t.Fatalf("row %d found by Next does not scan: %v", n, err)
			}
		}
	})
}

func TestStreamable(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT 1": true, "  select 1": true, "\n(SELECT 1) UNION ALL (SELECT 2)": true, "WITH x AS (SELECT 1) SELECT * FROM x": true,
		"-- c\nSELECT 1": true, "/* c */ SELECT 1": true, "SELECTED": false, "DESCRIBE TABLE t": false,
		"SHOW TABLES": false, "EXISTS TABLE t": false, "WITHOUT": false, "": false,
	} {
		if got := streamable(q); got != want {
			t.Errorf("streamable(%q) = %v", q, got)
		}
	}
}

// CutRowBinaryString reads what rbReader.str reads, without copying, and
// refuses a length past the end of the document.
func TestCutRowBinaryString(t *testing.T) {
	long := strings.Repeat("x", 300) // a two-byte length
	doc := "\x00" + "\x03abc" + "\xac\x02" + long
	var got []string
	for rest := doc; rest != ""; {
		var s string
		var err error
		if s, rest, err = CutRowBinaryString(rest); err != nil {
			t.Fatalf("cut %q: %v", rest, err)
		}
		got = append(got, s)
	}
	r := &rbReader{b: []byte(doc)}
	for i, s := range got {
		want, err := r.str()
		if err != nil || s != want {
			t.Errorf("string %d: %q, rbReader %q (%v)", i, s, want, err)
		}
	}
	if len(got) != 3 || got[1] != "abc" || got[2] != long {
		t.Errorf("cut %q", got)
	}
	for _, bad := range []string{"\x04abc", "\x80", "\xac\x02x"} {
		if _, _, err := CutRowBinaryString(bad); err == nil {
			t.Errorf("%q: no error for a truncated string", bad)
		}
	}
}
