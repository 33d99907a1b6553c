package store

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// typeKind is a ClickHouse column type family this package can decode and
// encode.
type typeKind uint8

const (
	kString typeKind = iota + 1
	kFixedString
	kUInt8
	kUInt16
	kUInt32
	kUInt64
	kInt8
	kInt16
	kInt32
	kInt64
	kFloat32
	kFloat64
	kBool
	kDate
	kDate32
	kDateTime
	kDateTime64
	kUUID
	kEnum8
	kEnum16
	kNothing
	kNullable
	kArray
	kTuple
)

// chType is a parsed ClickHouse type name. LowCardinality(T) parses as T:
// its row-binary form and its values are T's.
type chType struct {
	kind  typeKind
	name  string    // the type as ClickHouse spelled it
	n     int       // FixedString length, DateTime64 precision
	elem  *chType   // Nullable, Array
	elems []*chType // Tuple
	enum  map[int16]string
	enumR map[string]int16
	// canon is the canonical Go type of a type whose every value of that
	// Go type is valid (String, the integers, floats, Bool): normalize
	// passes such a value through. Nil for the others.
	canon reflect.Type
}

var simpleTypes = map[string]typeKind{
	"String": kString, "UInt8": kUInt8, "UInt16": kUInt16, "UInt32": kUInt32, "UInt64": kUInt64,
	"Int8": kInt8, "Int16": kInt16, "Int32": kInt32, "Int64": kInt64,
	"Float32": kFloat32, "Float64": kFloat64, "Bool": kBool, "Date": kDate, "Date32": kDate32,
	"DateTime": kDateTime, "UUID": kUUID, "Nothing": kNothing,
}

// parseType parses a type name as DESCRIBE and RowBinaryWithNamesAndTypes
// report it.
func parseType(s string) (*chType, error) {
	s = strings.TrimSpace(s)
	t := &chType{name: s}
	if k, ok := simpleTypes[s]; ok {
		t.kind = k
		switch k {
		case kDate, kDate32, kDateTime, kUUID, kNothing: // ranges and forms to check
		default:
			t.canon = t.goType()
		}
		return t, nil
	}
	open := strings.IndexByte(s, '(')
	if open < 0 || !strings.HasSuffix(s, ")") {
		return nil, fmt.Errorf("unsupported ClickHouse type %q", s)
	}
	family, inner := s[:open], s[open+1:len(s)-1]
	switch family {
	case "LowCardinality":
		return parseType(inner)
	case "Nullable", "Array":
		e, err := parseType(inner)
		if err != nil {
			return nil, err
		}
		t.elem = e
		t.kind = kNullable
		if family == "Array" {
			t.kind = kArray
		}
		return t, nil
	case "Tuple":
		for _, part := range splitTypeArgs(inner) {
			// Named tuple elements are "name Type".
			if sp := strings.IndexByte(part, ' '); sp > 0 && !strings.ContainsAny(part[:sp], "(") {
				if _, err := parseType(part); err != nil {
					part = part[sp+1:]
				}
			}
			e, err := parseType(part)
			if err != nil {
				return nil, err
			}
			t.elems = append(t.elems, e)
		}
		t.kind = kTuple
		return t, nil
	case "FixedString":
		n, err := strconv.Atoi(strings.TrimSpace(inner))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad ClickHouse type %q", s)
		}
		t.kind, t.n = kFixedString, n
		return t, nil
	case "DateTime":
		t.kind = kDateTime // the time zone only changes how the server prints it
		return t, nil
	case "DateTime64":
		p, _, _ := strings.Cut(inner, ",")
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || n > 9 {
			return nil, fmt.Errorf("bad ClickHouse type %q", s)
		}
		t.kind, t.n = kDateTime64, n
		return t, nil
	case "Enum8", "Enum16":
		t.kind = kEnum8
		if family == "Enum16" {
			t.kind = kEnum16
		}
		t.enum, t.enumR = map[int16]string{}, map[string]int16{}
		for _, part := range splitTypeArgs(inner) {
			name, num, ok := parseEnumItem(part)
			if !ok {
				return nil, fmt.Errorf("bad ClickHouse type %q", s)
			}
			t.enum[num], t.enumR[name] = name, num
		}
		return t, nil
	}
	return nil, fmt.Errorf("unsupported ClickHouse type %q", s)
}

// splitTypeArgs splits "A, B(C, D), 'x,y' = 1" at top-level commas.
func splitTypeArgs(s string) []string {
	var out []string
	depth, start, inQuote := 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote:
			if c == '\\' {
				i++
			} else if c == '\'' {
				inQuote = false
			}
		case c == '\'':
			inQuote = true
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// parseEnumItem parses "'name' = 1".
func parseEnumItem(s string) (string, int16, bool) {
	if len(s) < 2 || s[0] != '\'' {
		return "", 0, false
	}
	var b strings.Builder
	i := 1
	for ; i < len(s) && s[i] != '\''; i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	rest := strings.TrimSpace(s[min(i+1, len(s)):])
	rest, ok := strings.CutPrefix(rest, "=")
	if !ok {
		return "", 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 16)
	if err != nil {
		return "", 0, false
	}
	return b.String(), int16(n), true
}
