package store

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestBind(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("x", 3600))
	tests := []struct {
		query string
		args  []any
		want  string
		err   string
	}{
		{"SELECT 1", nil, "SELECT 1", ""},
		{"SELECT ?", []any{"a'b\\c\x00d\n"}, `SELECT 'a\'b\\c\0d\n'`, ""},
		{"SELECT ?", []any{"\xff\xfeok\x01\x7fü"}, `SELECT '\xFF\xFEok\x01\x7Fü'`, ""},
		{"SELECT ?, ?, ?, ?", []any{int8(-1), uint64(math.MaxUint64), true, false}, "SELECT -1, 18446744073709551615, 1, 0", ""},
		{"SELECT ?, ?, ?", []any{1.5, float32(0.25), math.Inf(-1)}, "SELECT 1.5, 0.25, -inf", ""},
		{"SELECT ?", []any{at}, "SELECT toDateTime('2024-05-06 06:08:09', 'UTC')", ""},
		{"SELECT ?, ?", []any{[]string{"a", "b'"}, []string{}}, `SELECT ['a', 'b\''], []`, ""},
		{"SELECT ?", []any{[]uint32{1, 2}}, "SELECT [1, 2]", ""},
		{"SELECT ?", []any{nil}, "SELECT NULL", ""},
		{"SELECT ?", []any{[]byte("x\x00")}, `SELECT 'x\0'`, ""},
		{"SELECT '?', \"?\", `?`, ?", []any{1}, "SELECT '?', \"?\", `?`, 1", ""},
		{`SELECT 'it\'s ?', 'a''?', ?`, []any{2}, `SELECT 'it\'s ?', 'a''?', 2`, ""},
		{"SELECT ? -- why?\n, ? /* ? */", []any{1, 2}, "SELECT 1 -- why?\n, 2 /* ? */", ""},
		{"SELECT -?, 1-?", []any{-1, -2}, "SELECT - -1, 1- -2", ""},
		{"SELECT ?", nil, "", "more '?' placeholders"},
		{"SELECT ?", []any{1, 2}, "", "2 args given for 1"},
		{"SELECT ?", []any{struct{}{}}, "", "unsupported type"},
		{"SELECT ?", []any{[][]string{{"a"}}}, "", "nested slice"},
		{"SELECT 'unterminated ?", []any{1}, "", "1 args given for 0"},
	}
	for _, tc := range tests {
		got, err := Bind(tc.query, tc.args...)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Bind(%q, %v) err = %v, want %q", tc.query, tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Bind(%q, %v) = %q, %v; want %q", tc.query, tc.args, got, err, tc.want)
		}
	}
}

// unquote parses a literal QuoteString wrote, as ClickHouse reads it.
func unquote(t *testing.T, lit string) string {
	t.Helper()
	if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		t.Fatalf("not a literal: %q", lit)
	}
	var b strings.Builder
	s := lit[1 : len(lit)-1]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\'' {
			t.Fatalf("unescaped quote in %q", lit)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case '0':
			b.WriteByte(0)
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'x':
			hi, _ := unhex(s[i+1])
			lo, _ := unhex(s[i+2])
			b.WriteByte(hi<<4 | lo)
			i += 2
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func FuzzBind(f *testing.F) {
	f.Add("SELECT ?, '?' -- ?\n", "a'b\x00\xff\\", int64(-1))
	f.Add("SELECT `?`, \"?\", /* ? */ ?", "", int64(0))
	f.Add("SELECT -?", "?", int64(-5))
	f.Fuzz(func(t *testing.T, query, arg string, num int64) {
		n := placeholders(query)
		args := make([]any, n)
		for i := range args {
			if i%2 == 0 {
				args[i] = arg
			} else {
				args[i] = num
			}
		}
		got, err := Bind(query, args...)
		if err != nil {
			t.Fatalf("Bind(%q) with %d args: %v", query, n, err)
		}
		// Every literal Bind inserts is self-contained: the result has no
		// placeholder left and no new comment swallowing the rest.
		if n > 0 && placeholders(got) != 0 {
			t.Fatalf("Bind(%q) = %q leaves placeholders", query, got)
		}
		if _, err := Bind(query, append(args, 1)...); err == nil {
			t.Fatalf("Bind(%q) accepted an extra arg", query)
		}
		var b strings.Builder
		QuoteString(&b, arg)
		if back := unquote(t, b.String()); back != arg {
			t.Fatalf("QuoteString(%q) = %s reads back as %q", arg, b.String(), back)
		}
	})
}

// placeholders counts the '?' Bind replaces, by binding numbers.
func placeholders(query string) int {
	for n := 0; n < 64; n++ {
		args := make([]any, n)
		for i := range args {
			args[i] = 0
		}
		if _, err := Bind(query, args...); err == nil {
			return n
		}
	}
	return -1
}
