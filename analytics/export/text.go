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

// CSV formula neutralisation (OWASP "CSV Injection"): package names,
// hostnames and owners come from scanned machines, and a spreadsheet
// evaluates a cell that starts with = + - @ (or tab / carriage return,
// which some spreadsheets strip before looking) as a formula. Such a cell
// is written with a leading apostrophe, which spreadsheets show as text.
// A cell that is a plain number ("-1.5", "+3e2") is left alone: it is
// data, and a spreadsheet reads it as the number it is.
//
// The engine applies the same rule when it formats a CSV export itself
// (CSVCellSQL), so both paths write the same bytes; the Go and SQL forms
// are tested against each other.

// csvFormulaRE and csvNumberRE are the rule as RE2 patterns (ClickHouse's
// match() is RE2), as the bodies of SQL string literals (backslashes
// doubled).
const (
	csvFormulaRE = `^[=+\\-@\\t\\r]`
	csvNumberRE  = `^[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?$`
)

// CSVCellSQL wraps expr, a ClickHouse String expression, so that it is
// neutralised as the CSV writer neutralises a cell.
func CSVCellSQL(expr string) string {
	return "if(match(" + expr + ", '" + csvFormulaRE + "') AND NOT match(" + expr + ", '" + csvNumberRE + "'), concat('''', " +
		expr + "), " + expr + ")"
}

// NeutralizeCSVCell returns s as it must appear in a CSV cell: with a
// leading apostrophe when a spreadsheet would take it for a formula. For
// CSV writers outside this package (encoding/csv based ones) so that every
// CSV patchgrid writes follows one rule.
func NeutralizeCSVCell(s string) string {
	if csvFormula(s) {
		return "'" + s
	}
	return s
}

// csvFormula reports whether a cell with this text must be neutralised.
func csvFormula(s string) bool {
	return s != "" && csvFormulaStart(s[0]) && !isPlainNumber(s)
}

func csvFormulaStart(c byte) bool {
	return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r'
}

// isPlainNumber matches csvNumberRE without a regexp (it runs per cell).
func isPlainNumber(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	intDigits := digits()
	if i < len(s) && s[i] == '.' {
		i++
		if frac := digits(); intDigits == 0 && frac == 0 {
			return false
		}
	} else if intDigits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// appendCSVField neutralises a formula cell and quotes per RFC 4180 only
// when the field needs it.
func appendCSVField(buf []byte, s string) []byte {
	formula := csvFormula(s)
	need := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ',' || c == '"' || c == '\n' || c == '\r' {
			need = true
			break
		}
	}
	if !need {
		if formula {
			buf = append(buf, '\'')
		}
		return append(buf, s...)
	}
	buf = append(buf, '"')
	if formula {
		buf = append(buf, '\'')
	}
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
// The field is neutralised as appendCSVField would neutralise the joined
// text: by its first item (two or more items are never a number).
func appendCSVList(buf []byte, items []string) []byte {
	formula := len(items) == 1 && csvFormula(items[0]) || len(items) > 1 && items[0] != "" && csvFormulaStart(items[0][0])
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
	if formula {
		buf = append(buf, '\'')
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
