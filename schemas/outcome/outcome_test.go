package outcome_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/outcome"
)

var update = flag.Bool("update", false, "rewrite testdata/decode.golden")

// TestDecodeGolden decodes every testdata/*.json and compares each result
// (the re-encoded outcome, or the error) with testdata/decode.golden.
func TestDecodeGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	var got bytes.Buffer
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		o, err := outcome.Decode(bytes.TrimSpace(b))
		got.WriteString(filepath.Base(f) + ": ")
		if err != nil {
			if !errors.Is(err, outcome.ErrMalformed) {
				t.Errorf("%s: error %v does not wrap ErrMalformed", f, err)
			}
			got.WriteString("error: " + err.Error() + "\n")
			continue
		}
		enc, err := outcome.Encode(o)
		if err != nil {
			t.Fatalf("%s: re-encode: %v", f, err)
		}
		got.WriteString("ok: " + string(enc) + "\n")
	}
	golden := "testdata/decode.golden"
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got.String() != string(want) {
		t.Errorf("decode results differ from %s (-update rewrites it):\n%s", golden, got.String())
	}
}

func TestEncodeValidates(t *testing.T) {
	ok := outcome.Outcome{PlanID: "p", ActionID: "a", HostID: "h", Package: "curl", ToVersion: "8.0", Status: outcome.Succeeded,
		Attempt: 1, StartedAt: time.Unix(100, 0), FinishedAt: time.Unix(200, 0)}
	b, err := outcome.Encode(ok)
	if err != nil {
		t.Fatal(err)
	}
	back, err := outcome.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	ok.SchemaVersion = outcome.Version
	ok.StartedAt, ok.FinishedAt = ok.StartedAt.UTC(), ok.FinishedAt.UTC()
	if !reflect.DeepEqual(back, ok) {
		t.Fatalf("round trip: %+v != %+v", back, ok)
	}
	long := ok
	long.Error = strings.Repeat("x", outcome.MaxErrorBytes+1)
	long.Status = outcome.Failed
	var fe *outcome.FieldError
	if _, err := outcome.Encode(long); !errors.As(err, &fe) || fe.Field != "error" {
		t.Fatalf("over-long error text: %v", err)
	}
	if _, err := outcome.Decode(bytes.Repeat([]byte(" "), outcome.MaxMessageBytes+1)); err == nil {
		t.Fatal("an over-size message decoded")
	}
}

// FuzzDecode: whatever the bytes, Decode returns an outcome that validates
// and survives a round trip unchanged, or an ErrMalformed error; it never
// panics.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := outcome.Decode(b)
		if err != nil {
			if !errors.Is(err, outcome.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("decoded outcome does not validate: %v", err)
		}
		enc, err := outcome.Encode(o)
		if err != nil {
			t.Fatalf("decoded outcome does not encode: %v", err)
		}
		again, err := outcome.Decode(enc)
		if err != nil || !reflect.DeepEqual(again, o) {
			t.Fatalf("round trip: %+v %v, want %+v", again, err, o)
		}
	})
}
