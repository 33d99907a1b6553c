package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"
)

// Values cross this package in one canonical Go type per ClickHouse type:
// string (String, FixedString, Enum, UUID), uint8..uint64, int8..int64,
// float32/64, bool, time.Time (Date, DateTime, DateTime64; UTC), nil
// (NULL), typed slices for arrays ([]string, []uint64, ...) and []any for
// tuples. Both backends insert and return exactly these, so the same row
// behaves the same on a server and on chDB.

var timeType = reflect.TypeFor[time.Time]()

// goType is the canonical Go type of t.
func (t *chType) goType() reflect.Type {
	switch t.kind {
	case kString, kFixedString, kEnum8, kEnum16, kUUID:
		return reflect.TypeFor[string]()
	case kUInt8:
		return reflect.TypeFor[uint8]()
	case kUInt16:
		return reflect.TypeFor[uint16]()
	case kUInt32:
		return reflect.TypeFor[uint32]()
	case kUInt64:
		return reflect.TypeFor[uint64]()
	case kInt8:
		return reflect.TypeFor[int8]()
	case kInt16:
		return reflect.TypeFor[int16]()
	case kInt32:
		return reflect.TypeFor[int32]()
	case kInt64:
		return reflect.TypeFor[int64]()
	case kFloat32:
		return reflect.TypeFor[float32]()
	case kFloat64:
		return reflect.TypeFor[float64]()
	case kBool:
		return reflect.TypeFor[bool]()
	case kDate, kDate32, kDateTime, kDateTime64:
		return timeType
	case kArray:
		return reflect.SliceOf(t.elem.goType())
	case kNullable:
		return reflect.PointerTo(t.elem.goType())
	}
	return reflect.TypeFor[any]()
}

// normalize converts a caller's Go value for a column of type t into the
// canonical type, checking ranges, so no value is silently truncated.
func normalize(t *chType, v any) (any, error) {
	if t.kind == kNullable {
		if v == nil {
			return nil, nil
		}
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer {
			if rv.IsNil() {
				return nil, nil
			}
			v = rv.Elem().Interface()
		}
		return normalize(t.elem, v)
	}
	if v == nil {
		return nil, fmt.Errorf("NULL for non-Nullable column type %s", t.name)
	}
	// A value already of the column's canonical type, with nothing to
	// check, goes through as it is: boxed again, every string and integer
	// of an insert cost an allocation (and the collections they feed).
	if t.canon != nil && reflect.TypeOf(v) == t.canon {
		return v, nil
	}
	switch t.kind {
	case kString, kFixedString, kEnum8, kEnum16, kUUID:
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case []byte:
			s = string(x)
		default:
			return nil, typeErr(v, t)
		}
		switch t.kind {
		case kFixedString:
			if len(s) > t.n {
				return nil, fmt.Errorf("string of %d bytes too long for %s", len(s), t.name)
			}
		case kEnum8, kEnum16:
			if _, ok := t.enumR[s]; !ok {
				return nil, fmt.Errorf("%q is not a value of %s", s, t.name)
			}
		case kUUID:
			if _, err := parseUUID(s); err != nil {
				return nil, err
			}
		}
		return s, nil
	case kUInt8, kUInt16, kUInt32, kUInt64:
		u, err := toUint(v, t)
		if err != nil {
			return nil, err
		}
		switch t.kind {
		case kUInt8:
			return uint8(u), nil
		case kUInt16:
			return uint16(u), nil
		case kUInt32:
			return uint32(u), nil
		}
		return u, nil
	case kInt8, kInt16, kInt32, kInt64:
		i, err := toInt(v, t)
		if err != nil {
			return nil, err
		}
		switch t.kind {
		case kInt8:
			return int8(i), nil
		case kInt16:
			return int16(i), nil
		case kInt32:
			return int32(i), nil
		}
		return i, nil
	case kFloat32, kFloat64:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case float32:
			f = float64(x)
		default:
			rv := reflect.ValueOf(v)
			switch {
			case rv.CanInt():
				f = float64(rv.Int())
			case rv.CanUint():
				f = float64(rv.Uint())
			default:
				return nil, typeErr(v, t)
			}
		}
		if t.kind == kFloat32 {
			return float32(f), nil
		}
		return f, nil
	case kBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		}
		u, err := toUint(v, t)
		if err != nil || u > 1 {
			return nil, typeErr(v, t)
		}
		return u == 1, nil
	case kDate, kDate32, kDateTime, kDateTime64:
		tm, ok := v.(time.Time)
		if !ok {
			return nil, typeErr(v, t)
		}
		utc := tm.UTC()
		switch t.kind {
		case kDateTime:
			if s := utc.Unix(); s < 0 || s > math.MaxUint32 {
				return nil, fmt.Errorf("time %s out of range for %s", utc.Format(time.RFC3339), t.name)
			}
		case kDate:
			if d := utc.Unix() / 86400; utc.Unix() < 0 || d > math.MaxUint16 {
				return nil, fmt.Errorf("time %s out of range for %s", utc.Format(time.RFC3339), t.name)
			}
		}
		if utc == tm {
			return v, nil // already UTC: not boxed again
		}
		return utc, nil
	case kArray:
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Slice || rv.Type() == reflect.TypeFor[[]byte]() {
			return nil, typeErr(v, t)
		}
		if t.elem.kind == kString {
			if ss, ok := v.([]string); ok {
				return ss, nil
			}
		}
		out := reflect.MakeSlice(t.goType(), rv.Len(), rv.Len())
		for i := range rv.Len() {
			e, err := normalize(t.elem, rv.Index(i).Interface())
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			if e == nil {
				continue // NULL element of Array(Nullable(T)): nil pointer
			}
			ev := reflect.ValueOf(e)
			if t.elem.kind == kNullable {
				p := reflect.New(ev.Type())
				p.Elem().Set(ev)
				ev = p
			}
			out.Index(i).Set(ev)
		}
		return out.Interface(), nil
	}
	return nil, fmt.Errorf("inserting into %s columns is not supported", t.name)
}

func typeErr(v any, t *chType) error {
	return fmt.Errorf("cannot use %T value for column type %s", v, t.name)
}

func toUint(v any, t *chType) (uint64, error) {
	var u uint64
	switch x := v.(type) {
	case bool:
		if x {
			u = 1
		}
	default:
		rv := reflect.ValueOf(v)
		switch {
		case rv.CanUint():
			u = rv.Uint()
		case rv.CanInt():
			if rv.Int() < 0 {
				return 0, fmt.Errorf("negative value %d for column type %s", rv.Int(), t.name)
			}
			u = uint64(rv.Int())
		default:
			return 0, typeErr(v, t)
		}
	}
	var limit uint64 = math.MaxUint64
	switch t.kind {
	case kUInt8, kBool:
		limit = math.MaxUint8
	case kUInt16:
		limit = math.MaxUint16
	case kUInt32:
		limit = math.MaxUint32
	}
	if u > limit {
		return 0, fmt.Errorf("value %d out of range for column type %s", u, t.name)
	}
	return u, nil
}

func toInt(v any, t *chType) (int64, error) {
	var i int64
	switch x := v.(type) {
	case bool:
		if x {
			i = 1
		}
	default:
		rv := reflect.ValueOf(v)
		switch {
		case rv.CanInt():
			i = rv.Int()
		case rv.CanUint():
			if rv.Uint() > math.MaxInt64 {
				return 0, fmt.Errorf("value %d out of range for column type %s", rv.Uint(), t.name)
			}
			i = int64(rv.Uint())
		default:
			return 0, typeErr(v, t)
		}
	}
	var lo, hi int64 = math.MinInt64, math.MaxInt64
	switch t.kind {
	case kInt8:
		lo, hi = math.MinInt8, math.MaxInt8
	case kInt16:
		lo, hi = math.MinInt16, math.MaxInt16
	case kInt32:
		lo, hi = math.MinInt32, math.MaxInt32
	}
	if i < lo || i > hi {
		return 0, fmt.Errorf("value %d out of range for column type %s", i, t.name)
	}
	return i, nil
}

// appendRowBinary appends the RowBinary encoding of a normalized value.
func appendRowBinary(b []byte, t *chType, v any) ([]byte, error) {
	switch t.kind {
	case kNullable:
		if v == nil {
			return append(b, 1), nil
		}
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer {
			v = rv.Elem().Interface()
		}
		return appendRowBinary(append(b, 0), t.elem, v)
	case kString:
		s := v.(string)
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...), nil
	case kFixedString:
		s := v.(string)
		b = append(b, s...)
		for range t.n - len(s) {
			b = append(b, 0)
		}
		return b, nil
	case kUInt8:
		return append(b, v.(uint8)), nil
	case kUInt16:
		return binary.LittleEndian.AppendUint16(b, v.(uint16)), nil
	case kUInt32:
		return binary.LittleEndian.AppendUint32(b, v.(uint32)), nil
	case kUInt64:
		return binary.LittleEndian.AppendUint64(b, v.(uint64)), nil
	case kInt8:
		return append(b, byte(v.(int8))), nil
	case kInt16:
		return binary.LittleEndian.AppendUint16(b, uint16(v.(int16))), nil
	case kInt32:
		return binary.LittleEndian.AppendUint32(b, uint32(v.(int32))), nil
	case kInt64:
		return binary.LittleEndian.AppendUint64(b, uint64(v.(int64))), nil
	case kFloat32:
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(v.(float32))), nil
	case kFloat64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.(float64))), nil
	case kBool:
		if v.(bool) {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case kDate:
		return binary.LittleEndian.AppendUint16(b, uint16(v.(time.Time).Unix()/86400)), nil
	case kDate32:
		return binary.LittleEndian.AppendUint32(b, uint32(int32(floorDiv(v.(time.Time).Unix(), 86400)))), nil
	case kDateTime:
		return binary.LittleEndian.AppendUint32(b, uint32(v.(time.Time).Unix())), nil
	case kDateTime64:
		tm := v.(time.Time)
		scale := int64(math.Pow10(9 - t.n))
		ticks := tm.Unix()*int64(math.Pow10(t.n)) + int64(tm.Nanosecond())/scale
		return binary.LittleEndian.AppendUint64(b, uint64(ticks)), nil
	case kEnum8:
		return append(b, byte(int8(t.enumR[v.(string)]))), nil
	case kEnum16:
		return binary.LittleEndian.AppendUint16(b, uint16(t.enumR[v.(string)])), nil
	case kUUID:
		u, err := parseUUID(v.(string))
		if err != nil {
			return nil, err
		}
		// ClickHouse stores a UUID as two little-endian 64-bit halves.
		b = binary.LittleEndian.AppendUint64(b, binary.BigEndian.Uint64(u[:8]))
		return binary.LittleEndian.AppendUint64(b, binary.BigEndian.Uint64(u[8:])), nil
	case kArray:
		if ss, ok := v.([]string); ok && t.elem.kind == kString {
			b = binary.AppendUvarint(b, uint64(len(ss)))
			for _, s := range ss {
				b = binary.AppendUvarint(b, uint64(len(s)))
				b = append(b, s...)
			}
			return b, nil
		}
		rv := reflect.ValueOf(v)
		b = binary.AppendUvarint(b, uint64(rv.Len()))
		for i := range rv.Len() {
			var err error
			e := rv.Index(i)
			var ev any
			if !(e.Kind() == reflect.Pointer && e.IsNil()) {
				ev = e.Interface()
			}
			if b, err = appendRowBinary(b, t.elem, ev); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	return nil, fmt.Errorf("encoding %s is not supported", t.name)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

var errShort = errors.New("truncated row-binary data")

// rbReader decodes RowBinary.
type rbReader struct {
	b   []byte
	off int
}

func (r *rbReader) bytes(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.off < n {
		return nil, errShort
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, nil
}

func (r *rbReader) uvarint() (uint64, error) {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		return 0, errShort
	}
	r.off += n
	return v, nil
}

func (r *rbReader) str() (string, error) {
	n, err := r.uvarint()
	if err != nil {
		return "", err
	}
	if n > uint64(len(r.b)-r.off) {
		return "", errShort
	}
	p, err := r.bytes(int(n))
	return string(p), err
}

// CutRowBinaryString reads one RowBinary String (uvarint length, bytes)
// off the front of doc without copying: s shares doc's memory, so a
// reader of a large result (ingest/outcomes' plan check) slices one
// document instead of allocating a string per value.
func CutRowBinaryString(doc string) (s, rest string, err error) {
	var n uint64
	for i := 0; i < len(doc) && i < binary.MaxVarintLen64; i++ {
		b := doc[i]
		n |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if n > uint64(len(doc)-i-1) {
				break
			}
			end := i + 1 + int(n)
			return doc[i+1 : end], doc[end:], nil
		}
	}
	return "", "", errShort
}

// decode reads one value of type t in canonical form.
func (r *rbReader) decode(t *chType) (any, error) {
	fixed := func(n int) ([]byte, error) { return r.bytes(n) }
	switch t.kind {
	case kString:
		return r.str()
	case kFixedString:
		p, err := fixed(t.n)
		return string(p), err
	case kUInt8, kBool, kInt8, kEnum8:
		p, err := fixed(1)
		if err != nil {
			return nil, err
		}
		switch t.kind {
		case kUInt8:
			return p[0], nil
		case kBool:
			return p[0] != 0, nil
		case kInt8:
			return int8(p[0]), nil
		}
		return t.enumName(int16(int8(p[0])))
	case kUInt16, kInt16, kEnum16, kDate:
		p, err := fixed(2)
		if err != nil {
			return nil, err
		}
		u := binary.LittleEndian.Uint16(p)
		switch t.kind {
		case kUInt16:
			return u, nil
		case kInt16:
			return int16(u), nil
		case kDate:
			return time.Unix(int64(u)*86400, 0).UTC(), nil
		}
		return t.enumName(int16(u))
	case kUInt32, kInt32, kFloat32, kDateTime, kDate32:
		p, err := fixed(4)
		if err != nil {
			return nil, err
		}
		u := binary.LittleEndian.Uint32(p)
		switch t.kind {
		case kUInt32:
			return u, nil
		case kInt32:
			return int32(u), nil
		case kFloat32:
			return math.Float32frombits(u), nil
		case kDate32:
			return time.Unix(int64(int32(u))*86400, 0).UTC(), nil
		}
		return time.Unix(int64(u), 0).UTC(), nil
	case kUInt64, kInt64, kFloat64, kDateTime64:
		p, err := fixed(8)
		if err != nil {
			return nil, err
		}
		u := binary.LittleEndian.Uint64(p)
		switch t.kind {
		case kUInt64:
			return u, nil
		case kInt64:
			return int64(u), nil
		case kFloat64:
			return math.Float64frombits(u), nil
		}
		div := int64(math.Pow10(t.n))
		ticks := int64(u)
		sec := floorDiv(ticks, div)
		return time.Unix(sec, (ticks-sec*div)*int64(math.Pow10(9-t.n))).UTC(), nil
	case kUUID:
		p, err := fixed(16)
		if err != nil {
			return nil, err
		}
		var u [16]byte
		binary.BigEndian.PutUint64(u[:8], binary.LittleEndian.Uint64(p[:8]))
		binary.BigEndian.PutUint64(u[8:], binary.LittleEndian.Uint64(p[8:]))
		return formatUUID(u), nil
	case kNothing:
		return nil, nil
	case kNullable:
		p, err := fixed(1)
		if err != nil {
			return nil, err
		}
		if p[0] != 0 {
			return nil, nil
		}
		return r.decode(t.elem)
	case kArray:
		n, err := r.uvarint()
		if err != nil {
			return nil, err
		}
		if n > uint64(len(r.b)-r.off) {
			return nil, errShort // bounds allocation by the input size
		}
		if t.elem.kind == kString {
			out := make([]string, n)
			for i := range out {
				if out[i], err = r.str(); err != nil {
					return nil, err
				}
			}
			return out, nil
		}
		out := reflect.MakeSlice(t.goType(), int(n), int(n))
		for i := range int(n) {
			e, err := r.decode(t.elem)
			if err != nil {
				return nil, err
			}
			if e == nil {
				continue
			}
			ev := reflect.ValueOf(e)
			if t.elem.kind == kNullable {
				p := reflect.New(ev.Type())
				p.Elem().Set(ev)
				ev = p
			}
			out.Index(i).Set(ev)
		}
		return out.Interface(), nil
	case kTuple:
		out := make([]any, len(t.elems))
		for i, e := range t.elems {
			v, err := r.decode(e)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("decoding %s is not supported", t.name)
}

func (t *chType) enumName(n int16) (any, error) {
	s, ok := t.enum[n]
	if !ok {
		return nil, fmt.Errorf("value %d is not in %s", n, t.name)
	}
	return s, nil
}

func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("bad UUID %q", s)
	}
	j := 0
	for i := 0; i < 36; {
		if s[i] == '-' {
			i++
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return u, fmt.Errorf("bad UUID %q", s)
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func formatUUID(u [16]byte) string {
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[c>>4], hex[c&15])
	}
	return string(out)
}

// skip advances past one value of type t without decoding it.
func (r *rbReader) skip(t *chType) error {
	var n int
	switch t.kind {
	case kString:
		l, err := r.uvarint()
		if err != nil {
			return err
		}
		if l > uint64(len(r.b)-r.off) {
			return errShort
		}
		n = int(l)
	case kFixedString:
		n = t.n
	case kUInt8, kInt8, kBool, kEnum8:
		n = 1
	case kUInt16, kInt16, kDate, kEnum16:
		n = 2
	case kUInt32, kInt32, kFloat32, kDateTime, kDate32:
		n = 4
	case kUInt64, kInt64, kFloat64, kDateTime64:
		n = 8
	case kUUID:
		n = 16
	case kNothing:
	case kNullable:
		p, err := r.bytes(1)
		if err != nil {
			return err
		}
		if p[0] == 0 {
			return r.skip(t.elem)
		}
	case kArray:
		l, err := r.uvarint()
		if err != nil {
			return err
		}
		if l > uint64(len(r.b)-r.off) {
			return errShort
		}
		for range l {
			if err := r.skip(t.elem); err != nil {
				return err
			}
		}
	case kTuple:
		for _, e := range t.elems {
			if err := r.skip(e); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("decoding %s is not supported", t.name)
	}
	_, err := r.bytes(n)
	return err
}

// decodeInto decodes one value of type t straight into dest when the pair
// is a common one (no boxing, no reflection); ok is false otherwise and
// nothing was read.
func (r *rbReader) decodeInto(t *chType, dest any) (ok bool, err error) {
	switch d := dest.(type) {
	case *string:
		if t.kind == kString {
			*d, err = r.str()
			return true, err
		}
	case *uint64:
		if t.kind == kUInt64 {
			p, err := r.bytes(8)
			if err == nil {
				*d = binary.LittleEndian.Uint64(p)
			}
			return true, err
		}
	case *int64:
		if t.kind == kInt64 {
			p, err := r.bytes(8)
			if err == nil {
				*d = int64(binary.LittleEndian.Uint64(p))
			}
			return true, err
		}
	case *uint32:
		if t.kind == kUInt32 {
			p, err := r.bytes(4)
			if err == nil {
				*d = binary.LittleEndian.Uint32(p)
			}
			return true, err
		}
	case *uint8:
		if t.kind == kUInt8 {
			p, err := r.bytes(1)
			if err == nil {
				*d = p[0]
			}
			return true, err
		}
	case *bool:
		if t.kind == kUInt8 || t.kind == kBool {
			p, err := r.bytes(1)
			if err == nil {
				*d = p[0] != 0
			}
			return true, err
		}
	case *float64:
		if t.kind == kFloat64 {
			p, err := r.bytes(8)
			if err == nil {
				*d = math.Float64frombits(binary.LittleEndian.Uint64(p))
			}
			return true, err
		}
	case *time.Time:
		if t.kind == kDateTime {
			p, err := r.bytes(4)
			if err == nil {
				*d = time.Unix(int64(binary.LittleEndian.Uint32(p)), 0).UTC()
			}
			return true, err
		}
	case *[]string:
		if t.kind == kArray && t.elem.kind == kString {
			v, err := r.decode(t)
			if err == nil {
				*d = v.([]string)
			}
			return true, err
		}
	}
	return false, nil
}
