package outcome

// A decoder written for this one schema. Outcomes arrive by the hundred
// thousand per plan wave, and the generic path (a token pass to refuse
// duplicate and miscased keys, then encoding/json's reflection) cost most
// of the consumer's CPU. This reads the object once: every key is matched
// exactly against the 13 fields, a bit per field remembers which were
// given (a key given twice is refused there), and each value is read as
// its field's JSON type. It is stricter than encoding/json where that one
// guesses: null is not a value of any field (encoding/json would leave the
// field as it was, so "reboot_required": null read as false), a string
// holding invalid UTF-8 is refused (encoding/json would replace the bytes
// with U+FFFD), and so is anything but white space after the object.

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The fields, by their bit in decoder.seen.
const (
	fVersion = iota
	fPlanID
	fActionID
	fHostID
	fPackage
	fFromVersion
	fToVersion
	fStatus
	fAttempt
	fStartedAt
	fFinishedAt
	fError
	fRebootRequired
)

// fieldNames are the JSON names of Outcome by field index, spelt exactly.
var fieldNames = [...]string{
	fVersion: "version", fPlanID: "plan_id", fActionID: "action_id", fHostID: "host_id", fPackage: "package",
	fFromVersion: "from_version", fToVersion: "to_version", fStatus: "status", fAttempt: "attempt",
	fStartedAt: "started_at", fFinishedAt: "finished_at", fError: "error", fRebootRequired: "reboot_required",
}

// field returns the index of the field named key, or -1. (A switch on
// string(key) compiles to comparisons without converting key.)
func field(key []byte) int {
	switch string(key) {
	case "version":
		return fVersion
	case "plan_id":
		return fPlanID
	case "action_id":
		return fActionID
	case "host_id":
		return fHostID
	case "package":
		return fPackage
	case "from_version":
		return fFromVersion
	case "to_version":
		return fToVersion
	case "status":
		return fStatus
	case "attempt":
		return fAttempt
	case "started_at":
		return fStartedAt
	case "finished_at":
		return fFinishedAt
	case "error":
		return fError
	case "reboot_required":
		return fRebootRequired
	}
	return -1
}

// decoder reads one outcome object from b.
type decoder struct {
	b    []byte
	i    int
	seen uint16 // bit f: field f was given
	buf  []byte // unescaped text of a string with escapes
	last *[fRebootRequired + 1]string
}

// text returns s as a string of field f: the one it had in the previous
// outcome when they are equal (the comparison does not allocate).
func (d *decoder) text(f int, s []byte) string {
	if d.last == nil {
		return string(s)
	}
	if string(s) != d.last[f] {
		d.last[f] = string(s)
	}
	return d.last[f]
}

// syntax is a JSON syntax error at the decoder's position.
func (d *decoder) syntax(format string, args ...any) error {
	return fmt.Errorf("%w: JSON syntax at offset %d: %s", ErrMalformed, d.i, fmt.Sprintf(format, args...))
}

func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte, 0 at the end (or at
// a NUL byte, which no rule of the grammar accepts either).
func (d *decoder) next() byte {
	d.space()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// decode fills o from d.b, which must hold exactly one JSON object.
func (d *decoder) decode(o *Outcome) error {
	switch d.next() {
	case '{':
		d.i++
	case 0:
		return d.syntax("no JSON value")
	default:
		return fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if d.next() == '}' {
		d.i++
	} else {
		for {
			if d.next() != '"' {
				return d.syntax("want a field name")
			}
			key, err := d.str()
			if err != nil {
				return err
			}
			f := field(key)
			if f < 0 {
				return bad(strings.ToValidUTF8(string(key), "\uFFFD"), "unknown field")
			}
			if d.seen&(1<<f) != 0 {
				return bad(fieldNames[f], "given twice")
			}
			d.seen |= 1 << f
			if d.next() != ':' {
				return d.syntax("want ':' after field %s", fieldNames[f])
			}
			d.i++
			d.space()
			if err := d.value(f, o); err != nil {
				return err
			}
			c := d.next()
			d.i++
			if c == '}' {
				break
			}
			if c != ',' {
				d.i--
				return d.syntax("want ',' or '}' after field %s", fieldNames[f])
			}
		}
	}
	// By position, not by next's 0: a NUL byte after the object is data.
	if d.space(); d.i < len(d.b) {
		return fmt.Errorf("%w: data after the outcome object", ErrMalformed)
	}
	return nil
}

// value reads the value of field f at d.i into o.
func (d *decoder) value(f int, o *Outcome) error {
	name := fieldNames[f]
	if d.i >= len(d.b) {
		return d.syntax("no value for field %s", name)
	}
	switch f {
	case fVersion:
		lit, err := d.number(name, "int")
		if err != nil {
			return err
		}
		v, err := strconv.ParseInt(string(lit), 10, 0)
		if err != nil {
			return bad(name, "want a JSON int, got number %s", lit)
		}
		o.SchemaVersion = int(v)
	case fAttempt:
		lit, err := d.number(name, "uint32")
		if err != nil {
			return err
		}
		v, err := strconv.ParseUint(string(lit), 10, 32)
		if err != nil {
			return bad(name, "want a JSON uint32, got number %s", lit)
		}
		o.Attempt = uint32(v)
	case fStartedAt, fFinishedAt:
		if d.b[d.i] != '"' {
			return d.wrongType(name, "string (an RFC 3339 time)")
		}
		start := d.i
		if _, err := d.str(); err != nil {
			return err
		}
		t := &o.StartedAt
		if f == fFinishedAt {
			t = &o.FinishedAt
		}
		// The literal with its quotes, as encoding/json hands it to
		// time.Time: escapes are not RFC 3339, so they fail there.
		if err := t.UnmarshalJSON(d.b[start:d.i]); err != nil {
			return bad(name, "%v", err)
		}
	case fRebootRequired:
		switch {
		case d.literal("true"):
			o.RebootRequired = true
		case d.literal("false"):
			o.RebootRequired = false
		default:
			return d.wrongType(name, "bool")
		}
	default: // the string fields
		if d.b[d.i] != '"' {
			return d.wrongType(name, "string")
		}
		s, err := d.str()
		if err != nil {
			return err
		}
		if !utf8.Valid(s) {
			return bad(name, "not valid UTF-8")
		}
		switch f {
		case fPlanID:
			o.PlanID = d.text(f, s)
		case fActionID:
			o.ActionID = string(s) // one per action: never the previous one
		case fHostID:
			o.HostID = d.text(f, s)
		case fPackage:
			o.Package = d.text(f, s)
		case fFromVersion:
			o.FromVersion = d.text(f, s)
		case fToVersion:
			o.ToVersion = d.text(f, s)
		case fError:
			o.Error = d.text(f, s)
		case fStatus:
			o.Status = status(s)
		}
	}
	return nil
}

// status returns the Status s names without allocating for the four
// known ones; Validate refuses any other.
func status(s []byte) Status {
	for _, st := range Statuses {
		if string(s) == string(st) {
			return st
		}
	}
	return Status(s)
}

// literal consumes lit (true, false) if it is next.
func (d *decoder) literal(lit string) bool {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// wrongType is the error for a value at d.i that is not of the JSON type
// field name wants.
func (d *decoder) wrongType(name, want string) error {
	var got string
	switch c := d.b[d.i]; {
	case c == '"':
		got = "string"
	case c == '{':
		got = "object"
	case c == '[':
		got = "array"
	case c == 't' || c == 'f':
		got = "bool"
	case c == 'n':
		got = "null"
	case c == '-' || c >= '0' && c <= '9':
		got = "number"
	default:
		return d.syntax("invalid character %q in the value of %s", c, name)
	}
	return bad(name, "want a JSON %s, got %s", want, got)
}

// number reads a JSON number literal (RFC 8259's grammar) for field name,
// which wants the Go type want.
func (d *decoder) number(name, want string) ([]byte, error) {
	b, start := d.b, d.i
	i := start
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		digits()
	case i == start:
		return nil, d.wrongType(name, want)
	default:
		d.i = i
		return nil, d.syntax("a number of %s has no digits", name)
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			d.i = i
			return nil, d.syntax("a number of %s has no digits after '.'", name)
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			d.i = i
			return nil, d.syntax("a number of %s has no exponent digits", name)
		}
	}
	d.i = i
	return b[start:i], nil
}

// str reads the JSON string at d.i (which is '"') and returns its text:
// a slice of the input when it has no escapes, else of d.buf, valid until
// the next call. Raw control characters are refused, as JSON requires;
// UTF-8 is checked by the caller (field names are ASCII).
func (d *decoder) str() ([]byte, error) {
	b := d.b
	start := d.i + 1
	i := start
	// Eight bytes at a time while none is special; then byte by byte from
	// the word that holds one (a special byte ends the loop below).
	for i+8 <= len(b) && !special8(binary.LittleEndian.Uint64(b[i:])) {
		i += 8
	}
	for i < len(b) {
		if c := b[i]; strSpecial[c] {
			switch {
			case c == '"':
				d.i = i + 1
				return b[start:i], nil
			case c == '\\':
				return d.unescape(start, i)
			default:
				d.i = i
				return nil, d.syntax("control character %#02x in a string", c)
			}
		}
		i++
	}
	d.i = i
	return nil, d.syntax("unterminated string")
}

// special8 reports whether any byte of x is special (strSpecial): below
// 0x20, a quote or a backslash. Each test is exact about whether such a
// byte exists, not where: a byte below n gives (x - n*ones) & ^x a high
// bit, and a byte equal to q is a zero byte of x ^ q*ones.
func special8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := (x - 0x20*ones) & ^x & highs
	q := x ^ '"'*ones
	bs := x ^ '\\'*ones
	return below|((q-ones)&^q&highs)|((bs-ones)&^bs&highs) != 0
}

// strSpecial marks the bytes that end a run of plain string bytes: the
// closing quote, an escape, and the control characters JSON refuses.
var strSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// unescape reads the rest of a string whose first escape is at i, as
// encoding/json does: \uXXXX surrogate pairs combine, and a lone
// surrogate becomes U+FFFD.
func (d *decoder) unescape(start, i int) ([]byte, error) {
	b := d.b
	out := append(d.buf[:0], b[start:i]...)
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			d.i, d.buf = i+1, out
			return out, nil
		case c < 0x20:
			d.i = i
			return nil, d.syntax("control character %#02x in a string", c)
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(b) {
			break
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(b[i+2:])
			if r < 0 {
				d.i = i
				return nil, d.syntax(`\u without four hex digits`)
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if len(b)-i >= 6 && b[i] == '\\' && b[i+1] == 'u' {
					if pair := utf16.DecodeRune(r, hex4(b[i+2:])); pair != utf8.RuneError {
						out = utf8.AppendRune(out, pair)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			d.i = i
			return nil, d.syntax("invalid escape \\%c", e)
		}
		i += 2
	}
	d.i = i
	return nil, d.syntax("unterminated string")
}

// hex4 is the value of the four hex digits b starts with, or -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
