package outcome_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"unsafe"

	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/outcome"
)

// referenceDecode is the decoder Decode replaced (a token pass refusing
// duplicate and miscased keys, then encoding/json), kept as the oracle of
// FuzzDecodeMatchesReference.
func referenceDecode(b []byte) (outcome.Outcome, error) {
	var o outcome.Outcome
	if len(b) > outcome.MaxMessageBytes {
		return o, outcome.ErrMalformed
	}
	names := map[string]bool{}
	for _, f := range reflect.VisibleFields(reflect.TypeOf(o)) {
		names[strings.Split(f.Tag.Get("json"), ",")[0]] = true
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return o, outcome.ErrMalformed
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		key, _ := tok.(string)
		if err != nil || !names[key] || seen[key] {
			return o, outcome.ErrMalformed
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return o, outcome.ErrMalformed
		}
	}
	dec = json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil || dec.More() {
		return outcome.Outcome{}, outcome.ErrMalformed
	}
	if err := o.Validate(); err != nil {
		return outcome.Outcome{}, err
	}
	o.StartedAt, o.FinishedAt = o.StartedAt.UTC(), o.FinishedAt.UTC()
	return o, nil
}

// stricter reports whether Decode refused b on purpose where the
// reference accepted it: a null value, a string that is not UTF-8, or
// data after the object that encoding/json's More does not see ('}' or
// ']').
func stricter(b []byte, err error) bool {
	msg := err.Error()
	return strings.HasSuffix(msg, ", got null") || strings.HasSuffix(msg, ": not valid UTF-8") ||
		strings.HasSuffix(msg, ": data after the outcome object")
}

const okJSON = `{"version":1,"plan_id":"p","action_id":"a","host_id":"h","package":"x","to_version":"1","status":"succeeded","attempt":1,"started_at":"2026-12-03T03:00:00Z","finished_at":"2026-12-03T03:10:00Z"}`

// withField is okJSON with `,"name":value` spliced in before the closing
// brace.
func withField(kv string) string { return okJSON[:len(okJSON)-1] + "," + kv + "}" }

// TestDecodeRules: the one-pass decoder's verdicts on what the golden
// files do not cover; err is a substring of the error ("" = decodes).
func TestDecodeRules(t *testing.T) {
	for _, c := range []struct {
		name, in, err string
	}{
		{"escaped key is the field", strings.Replace(okJSON, `"plan_id"`, `"plan\u005fid"`, 1), ""},
		{"escaped key given twice", withField(`"plan\u005fid":"q"`), "plan_id: given twice"},
		{"every field twice is caught at the second", withField(`"reboot_required":true,"reboot_required":false`), "reboot_required: given twice"},
		{"escapes in values", strings.Replace(okJSON, `"host_id":"h"`, `"host_id":"h\"\\\/\u00e9\ud83d\ude00"`, 1), ""},
		{"lone surrogate reads as U+FFFD", strings.Replace(okJSON, `"host_id":"h"`, `"host_id":"\ud800x"`, 1), ""},
		{"raw invalid UTF-8", strings.Replace(okJSON, `"host_id":"h"`, "\"host_id\":\"h\xff\"", 1), "host_id: not valid UTF-8"},
		{"null", withField(`"reboot_required":null`), "reboot_required: want a JSON bool, got null"},
		{"null string", withField(`"error":null`), "error: want a JSON string, got null"},
		{"object value", withField(`"error":{}`), "error: want a JSON string, got object"},
		{"version 1.0", strings.Replace(okJSON, `"version":1`, `"version":1.0`, 1), "version: want a JSON int, got number 1.0"},
		{"attempt -1", strings.Replace(okJSON, `"attempt":1`, `"attempt":-1`, 1), "attempt: want a JSON uint32, got number -1"},
		{"attempt overflows uint32", strings.Replace(okJSON, `"attempt":1`, `"attempt":4294967296`, 1), "got number 4294967296"},
		{"attempt 1e0", strings.Replace(okJSON, `"attempt":1`, `"attempt":1e0`, 1), "got number 1e0"},
		{"leading zero", strings.Replace(okJSON, `"attempt":1`, `"attempt":01`, 1), "JSON syntax"},
		{"time not a string", strings.Replace(okJSON, `"started_at":"2026-12-03T03:00:00Z"`, `"started_at":5`, 1), "started_at: want a JSON string (an RFC 3339 time), got number"},
		{"time not RFC 3339", strings.Replace(okJSON, `2026-12-03T03:00:00Z`, `2026-12-03 03:00:00`, 1), "started_at: "},
		{"white space everywhere", " {\n\t\"version\" : 1 ," + okJSON[13:len(okJSON)-1] + " }\r\n", ""},
		{"trailing brace", okJSON + "}", "data after the outcome object"},
		{"trailing NUL", okJSON + " \x00", "data after the outcome object"},
		{"empty", "", "no JSON value"},
		{"empty object", "{}", "version: 0 is not a known schema version"},
		{"unterminated", okJSON[:40], "JSON syntax"},
		{"no comma", strings.Replace(okJSON, `,"action_id"`, ` "action_id"`, 1), "want ',' or '}'"},
		{"trailing comma", withField(`"error":""`)[:len(okJSON)+10] + ",}", "want a field name"},
		{"control character", strings.Replace(okJSON, `"host_id":"h"`, "\"host_id\":\"h\n\"", 1), "control character"},
		{"bad escape", strings.Replace(okJSON, `"host_id":"h"`, `"host_id":"h\x"`, 1), "invalid escape"},
		{"short \\u", strings.Replace(okJSON, `"host_id":"h"`, `"host_id":"\u12"`, 1), "four hex digits"},
		{"ends after a key", `{"version":`, "no value for field version"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := outcome.Decode([]byte(c.in))
			if c.err == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if ref, rerr := referenceDecode([]byte(c.in)); rerr != nil || !reflect.DeepEqual(ref, o) {
					t.Fatalf("decoded %+v, the reference %+v (%v)", o, ref, rerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %v, want one containing %q", err, c.err)
			}
			if !errors.Is(err, outcome.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

// FuzzDecodeMatchesReference: Decode accepts nothing the reference
// decoder refuses and decodes it to the same outcome; it refuses only
// what the reference refuses, or what stricter names.
func FuzzDecodeMatchesReference(f *testing.F) {
	f.Add([]byte(okJSON))
	f.Add([]byte(withField(`"error":"x\u00e9\ud800"`)))
	f.Add([]byte(withField(`"reboot_required":null`)))
	f.Add([]byte(strings.Replace(okJSON, `"plan_id"`, `"plan\u005fid"`, 1)))
	f.Add([]byte(okJSON + " }"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := outcome.Decode(b)
		// A Decoder holding a previous outcome's strings reads the same.
		var dec outcome.Decoder
		if _, err := dec.Decode([]byte(okJSON)); err != nil {
			t.Fatal(err)
		}
		if do, derr := dec.Decode(b); (derr == nil) != (err == nil) || !reflect.DeepEqual(do, o) {
			t.Fatalf("Decoder read %+v (%v), Decode %+v (%v)", do, derr, o, err)
		}
		ref, rerr := referenceDecode(b)
		switch {
		case err == nil && rerr != nil:
			t.Fatalf("Decode accepted what the reference refuses (%v): %+v", rerr, o)
		case err == nil && !reflect.DeepEqual(o, ref):
			t.Fatalf("Decode read %+v, the reference %+v", o, ref)
		case err != nil && rerr == nil && !stricter(b, err):
			t.Fatalf("Decode refused what the reference accepts: %v", err)
		case err != nil && !errors.Is(err, outcome.ErrMalformed):
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
	})
}

// TestDecoderReusesStrings: a Decoder reads what Decode reads, and a
// string equal to the previous outcome's is that string, not a copy; a
// message it refuses changes nothing it reads after.
func TestDecoderReusesStrings(t *testing.T) {
	// Strings of more than one byte: those of one are never allocated.
	first := strings.NewReplacer(`"plan_id":"p"`, `"plan_id":"plan-17"`, `"package":"x"`, `"package":"openssl"`,
		`"to_version":"1"`, `"to_version":"3.0.2-1"`, `"host_id":"h"`, `"host_id":"host-1"`).Replace(okJSON)
	second := strings.NewReplacer(`"action_id":"a"`, `"action_id":"a-2"`, `"host_id":"host-1"`, `"host_id":"host-2"`).Replace(first)
	if strings.Count(second, "-2") != 2 || !strings.Contains(first, "plan-17") {
		t.Fatal("the fixture okJSON changed: update the test")
	}
	var dec outcome.Decoder
	var got []outcome.Outcome
	for _, msg := range []string{`{"plan_id":"plan-17","package":"other"`, first, second} {
		o, err := dec.Decode([]byte(msg))
		want, werr := outcome.Decode([]byte(msg))
		if (err == nil) != (werr == nil) || !reflect.DeepEqual(o, want) {
			t.Fatalf("%s: Decoder read %+v (%v), Decode %+v (%v)", msg, o, err, want, werr)
		}
		if err == nil {
			got = append(got, o)
		}
	}
	a, b := got[0], got[1]
	if a.ActionID == b.ActionID || a.HostID == b.HostID {
		t.Fatalf("the two outcomes share action or host: %+v, %+v", a, b)
	}
	for _, f := range []struct{ name, x, y string }{
		{"plan_id", a.PlanID, b.PlanID}, {"package", a.Package, b.Package}, {"to_version", a.ToVersion, b.ToVersion},
	} {
		if unsafe.StringData(f.x) != unsafe.StringData(f.y) {
			t.Errorf("%s %q allocated again for the second outcome", f.name, f.y)
		}
	}
}

// BenchmarkDecode decodes a typical outcome (the bench's shape; see
// bench/cmd/pgbench/step_outcome.go) and, for comparison, the reference
// decoder's cost on it.
func BenchmarkDecode(b *testing.B) {
	start := time.Date(2026, 11, 2, 22, 0, 0, 0, time.UTC)
	msg, err := outcome.Encode(outcome.Outcome{
		PlanID: "pgbench-plan", ActionID: "act-0001234", HostID: "host-0001234", Package: "openssl",
		FromVersion: "3.0.2-0ubuntu1.10", ToVersion: "3.0.2-0ubuntu1.12", Status: outcome.Succeeded, Attempt: 1,
		StartedAt: start, FinishedAt: start.Add(30 * time.Second),
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		dec  func([]byte) (outcome.Outcome, error)
	}{{"one-pass", outcome.Decode}, {"decoder", new(outcome.Decoder).Decode}, {"reference", referenceDecode}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.dec(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
