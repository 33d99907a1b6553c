package store

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bind replaces each '?' placeholder in query with the SQL literal of the
// next arg. Binding happens client-side, the same way for both backends,
// because the 2018 server has no server-side parameters. A '?' inside a
// string literal, a quoted identifier or a comment is not a placeholder.
//
// Supported args: nil (NULL), string and []byte (quoted, binary-safe), bool
// (1/0), all integer and float types, time.Time (a UTC DateTime), and slices
// of those (arrays).
func Bind(query string, args ...any) (string, error) {
	if len(args) == 0 && strings.IndexByte(query, '?') < 0 {
		return query, nil
	}
	var b strings.Builder
	b.Grow(len(query) + 16*len(args))
	next := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			end := skipQuoted(query, i)
			b.WriteString(query[i:end])
			i = end - 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			end := strings.IndexByte(query[i:], '\n')
			if end < 0 {
				end = len(query) - i
			}
			b.WriteString(query[i : i+end])
			i += end - 1
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			end := strings.Index(query[i+2:], "*/")
			if end < 0 {
				end = len(query)
			} else {
				end += i + 4
			}
			b.WriteString(query[i:end])
			i = end - 1
		case c == '?':
			if next >= len(args) {
				return "", fmt.Errorf("bind: query has more '?' placeholders than the %d args given", len(args))
			}
			var lit strings.Builder
			if err := appendLiteral(&lit, args[next]); err != nil {
				return "", fmt.Errorf("bind: arg %d: %w", next+1, err)
			}
			// "-?" bound to -1 must not become the comment "--1".
			if strings.HasPrefix(lit.String(), "-") && strings.HasSuffix(b.String(), "-") {
				b.WriteByte(' ')
			}
			b.WriteString(lit.String())
			next++
		default:
			b.WriteByte(c)
		}
	}
	if next != len(args) {
		return "", fmt.Errorf("bind: %d args given for %d '?' placeholders", len(args), next)
	}
	return b.String(), nil
}

// skipQuoted returns the index just past the quoted token starting at i.
// ClickHouse escapes a quote by a backslash or by doubling it.
func skipQuoted(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

func appendLiteral(b *strings.Builder, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("NULL")
	case string:
		QuoteString(b, x)
	case []byte:
		QuoteString(b, string(x))
	case bool:
		if x {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	case time.Time:
		// The time zone argument makes the literal mean the same instant on
		// every server, whatever its own time zone.
		b.WriteString("toDateTime('")
		b.WriteString(x.UTC().Format("2006-01-02 15:04:05"))
		b.WriteString("', 'UTC')")
	case float64:
		appendFloat(b, x, 64)
	case float32:
		appendFloat(b, float64(x), 32)
	case []string:
		b.WriteByte('[')
		for i, s := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			QuoteString(b, s)
		}
		b.WriteByte(']')
	default:
		rv := reflect.ValueOf(v)
		switch {
		case rv.CanInt():
			b.WriteString(strconv.FormatInt(rv.Int(), 10))
		case rv.CanUint():
			b.WriteString(strconv.FormatUint(rv.Uint(), 10))
		case rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array:
			b.WriteByte('[')
			for i := range rv.Len() {
				if i > 0 {
					b.WriteString(", ")
				}
				e := rv.Index(i)
				if e.Kind() == reflect.Slice && e.Type().Elem().Kind() != reflect.Uint8 || e.Kind() == reflect.Array {
					return fmt.Errorf("nested slice %T: only one level of arrays binds", v)
				}
				if err := appendLiteral(b, e.Interface()); err != nil {
					return err
				}
			}
			b.WriteByte(']')
		default:
			return fmt.Errorf("unsupported type %T", v)
		}
	}
	return nil
}

func appendFloat(b *strings.Builder, f float64, bits int) {
	switch {
	case math.IsNaN(f):
		b.WriteString("nan")
	case math.IsInf(f, 1):
		b.WriteString("inf")
	case math.IsInf(f, -1):
		b.WriteString("-inf")
	default:
		b.WriteString(strconv.FormatFloat(f, 'g', -1, bits))
	}
}

// QuoteString writes s as a ClickHouse string literal. Control bytes and
// bytes that are not UTF-8 become \xHH escapes, so the statement stays
// printable in logs and errors while carrying any byte sequence.
func QuoteString(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('\'')
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case 0:
			b.WriteString(`\0`)
		default:
			if c < 0x20 || c == 0x7f {
				b.WriteString(`\x`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&15])
				break
			}
			if c >= utf8.RuneSelf {
				r, n := utf8.DecodeRuneInString(s[i:])
				if r == utf8.RuneError && n <= 1 {
					b.WriteString(`\x`)
					b.WriteByte(hex[c>>4])
					b.WriteByte(hex[c&15])
					break
				}
				b.WriteString(s[i : i+n])
				i += n
				continue
			}
			b.WriteByte(c)
		}
		i++
	}
	b.WriteByte('\'')
}
