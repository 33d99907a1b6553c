package export

import (
	"bufio"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// textWriter writes CSV or JSON lines. Both are formatted by hand into one
// reused buffer: encoding/csv and encoding/json allocate per value, which
// alone would keep an export far below a million rows per second.
type textWriter struct {
	w     *bufio.Writer
	cols  []Column
	json  bool
	buf   []byte
	keys  [][]byte // JSON: `"name":` per column, quoted once
	wrote bool
}

func newCSVWriter(w io.Writer, cols []Column) *textWriter {
	return &textWriter{w: bufio.NewWriterSize(w, 1<<16), cols: cols}
}

func newJSONWriter(w io.Writer, cols []Column) *textWriter {
	t := &textWriter{w: bufio.NewWriterSize(w, 1<<16), cols: cols, json: true}
	for _, c := range cols {
		k := appendJSONString(nil, c.Name)
		t.keys = append(t.keys, append(k, ':'))
	}
	return t
}

func (t *textWriter) header() error {
	t.wrote = true
	if t.json {
		return nil
	}
	t.buf = AppendCSVHeader(t.buf[:0], t.cols)
	_, err := t.w.Write(t.buf)
	return err
}

// AppendCSVHeader appends the header line of a CSV export of cols to buf.
func AppendCSVHeader(buf []byte, cols []Column) []byte {
	for i, c := range cols {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendCSVField(buf, c.Name)
	}
	return append(buf, '\n')
}

func (t *textWriter) WriteBatch(b *Batch) error {
	if !t.wrote {
		if err := t.header(); err != nil {
			return err
		}
	}
	for r := 0; r < b.Len; r++ {
		buf := t.buf[:0]
		if t.json {
			buf = t.appendJSONRow(buf, b, r)
		} else {
			buf = t.appendCSVRow(buf, b, r)
		}
		t.buf = buf
		if _, err := t.w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

func (t *textWriter) Close() error {
	if !t.wrote {
		// An empty CSV export still names its columns.
		if err := t.header(); err != nil {
			return err
		}
	}
	return t.w.Flush()
}

func (t *textWriter) appendCSVRow(buf []byte, b *Batch, r int) []byte {
	for i, c := range t.cols {
		if i > 0 {
			buf = append(buf, ',')
		}
		v := &b.Vecs[i]
		switch c.Kind {
		case String:
			buf = appendCSVField(buf, v.Str[r])
		case Int64:
			buf = strconv.AppendInt(buf, v.I64[r], 10)
		case Float64:
			if f := v.F64[r]; !math.IsNaN(f) && !math.IsInf(f, 0) {
				buf = strconv.AppendFloat(buf, f, 'g', -1, 64)
			}
		case Bool:
			buf = strconv.AppendBool(buf, v.Bools[r])
		case Time:
			if tm := v.Times[r]; !isNoTime(tm) {
				buf = tm.UTC().AppendFormat(buf, time.RFC3339)
			}
		case StringList:
			buf = appendCSVList(buf, v.Lists[r])
		}
	}
	return append(buf, '\n')
}

func (t *textWriter) appendJSONRow(buf []byte, b *Batch, r int) []byte {
	buf = append(buf, '{')
	for i, c := range t.cols {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, t.keys[i]...)
		v := &b.Vecs[i]
		switch c.Kind {
		case String:
			buf = appendJSONString(buf, v.Str[r])
		case Int64:
			buf = strconv.AppendInt(buf, v.I64[r], 10)
		case Float64:
			if f := v.F64[r]; math.IsNaN(f) || math.IsInf(f, 0) {
				buf = append(buf, "null"...)
			} else {
				buf = strconv.AppendFloat(buf, f, 'g', -1, 64)
			}
		case Bool:
			buf = strconv.AppendBool(buf, v.Bools[r])
		case Time:
			if tm := v.Times[r]; isNoTime(tm) {
				buf = append(buf, "null"...)
			} else {
				buf = append(buf, '"')
				buf = tm.UTC().AppendFormat(buf, time.RFC3339)
				buf = append(buf, '"')
			}
		case StringList:
			buf = append(buf, '[')
			for j, s := range v.Lists[r] {
				if j > 0 {
					buf = append(buf, ',')
				}
				buf = appendJSONString(buf, s)
			}
			buf = append(buf, ']')
		}
	}
	return append(buf, '}', '\n')
}

// isNoTime reports the ClickHouse DateTime zero (the epoch), which the
// schema uses for "none", and Go's zero time.
func isNoTime(t time.Time) bool { return t.IsZero() || t.Unix() == 0 }

// appendCSVField quotes per RFC 4180 only when the field needs it.
func appendCSVField(buf []byte, s string) []byte {
	need := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ',' || c == '"' || c == '\n' || c == '\r' {
			need = true
			break
		}
	}
	if !need {
		return append(buf, s...)
	}
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			buf = append(buf, '"')
		}
		buf = append(buf, s[i])
	}
	return append(buf, '"')
}

// appendCSVList writes a list as one field, items separated by ';' (the
// README documents this; ids such as CVE numbers never contain ';'). It
// quotes the field only when an item needs it, without joining first.
func appendCSVList(buf []byte, items []string) []byte {
	quote := false
	for _, s := range items {
		if strings.ContainsAny(s, ",\"\n\r") {
			quote = true
			break
		}
	}
	if quote {
		buf = append(buf, '"')
	}
	for i, s := range items {
		if i > 0 {
			buf = append(buf, ';')
		}
		if quote {
			buf = append(buf, strings.ReplaceAll(s, `"`, `""`)...)
		} else {
			buf = append(buf, s...)
		}
	}
	if quote {
		buf = append(buf, '"')
	}
	return buf
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string; invalid UTF-8 becomes U+FFFD
// so the output always parses.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
