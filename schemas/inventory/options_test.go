package inventory_test

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/inventory"
)

// packagesOffset walks a v1 body (schemas/inventory/README.md) to the first
// byte of the package columns, returning it and the package count.
func packagesOffset(t *testing.T, b []byte) (off, np int) {
	t.Helper()
	off = tableEnd(t, b)
	uv := func() uint64 {
		v, n := binary.Uvarint(b[off:])
		if n <= 0 {
			t.Fatalf("bad uvarint at %d", off)
		}
		off += n
		return v
	}
	list := func() {
		for range uv() {
			uv()
		}
	}
	uv() // host id
	uv() // scan id
	_, n := binary.Varint(b[off:])
	off += n // scanned_at seconds
	uv()     // nanoseconds
	for range 6 {
		uv() // hostname, OS (4), kernel running
	}
	list()   // kernels installed
	uv()     // owner
	uv()     // ring
	off += 2 // criticality, flags
	list()   // tags
	uv()     // maintenance window
	uv()     // inventory hash
	list()   // warnings
	return off, int(uv())
}

// TestDecodeWithSkipPackages covers v1, where skipping still walks the
// package columns; v2 skips the compressed section whole (codec_v2_test.go).
func TestDecodeWithSkipPackages(t *testing.T) {
	full := smallScan()
	good, err := encodeV1(full)
	if err != nil {
		t.Fatal(err)
	}
	goodBody := body(t, good)
	hb, err := encodeV1(heartbeat())
	if err != nil {
		t.Fatal(err)
	}
	pkgOff, np := packagesOffset(t, goodBody)
	if np != len(full.Packages) {
		t.Fatalf("walked to %d packages, want %d", np, len(full.Packages))
	}
	// The first reference of the name column is absolute: package 0's name.
	// Setting it to 0 (the empty string) breaks the "name present" rule.
	noName := bytes.Clone(goodBody[:pkgOff])
	rest := goodBody[pkgOff:]
	for range np { // skip the ecosystem column
		_, n := binary.Varint(rest)
		rest = rest[n:]
	}
	_, n := binary.Varint(rest)
	noName = append(append(noName, goodBody[pkgOff:len(goodBody)-len(rest)]...), 0)
	noName = append(noName, rest[n:]...)
	// The last byte is the last location delta: make it point past the table.
	beyond := bytes.Clone(goodBody)
	beyond[len(beyond)-1] = 0x7e // zigzag 63
	badUTF8Pkg := bytes.Replace(goodBody, []byte("golang.org/x/text"), []byte("golang.org/x/t\xffxt"), 1)
	hashMismatch := bytes.Replace(goodBody, []byte("openssh-server"), []byte("openssh-client"), 1)

	noPackages := *full
	noPackages.Packages = nil
	always := func(string) bool { return true }
	for _, tc := range []struct {
		name     string
		msg      []byte
		skip     func(string) bool
		want     *inventory.Scan // nil: an error of reason wantErr
		wantErr  inventory.Reason
		skipped  bool
		asked    bool // SkipPackages must be consulted
		pkgCount int
	}{
		{name: "no option decodes everything", msg: good, want: full, pkgCount: 2},
		{name: "unknown hash decodes everything", msg: good, skip: func(string) bool { return false }, want: full, pkgCount: 2, asked: true},
		{name: "known hash skips the packages", msg: good, skip: always, want: &noPackages, skipped: true, pkgCount: 2, asked: true},
		{name: "heartbeat never asks", msg: hb, skip: always, want: heartbeat()},
		{name: "skip: truncated package column", msg: raw(goodBody[:len(goodBody)-1]), skip: always, wantErr: inventory.ReasonTruncated, asked: true},
		{name: "skip: reference beyond the table", msg: raw(beyond), skip: always, wantErr: inventory.ReasonMalformed, asked: true},
		{name: "no skip: reference beyond the table", msg: raw(beyond), wantErr: inventory.ReasonMalformed},
		{name: "skip: package without a name", msg: raw(noName), skip: always, wantErr: inventory.ReasonInvalid, asked: true},
		{name: "no skip: package without a name", msg: raw(noName), wantErr: inventory.ReasonInvalid},
		{name: "skip: scan-level invalid utf-8 still fails", msg: raw(bytes.Replace(goodBody, []byte("web-01"), []byte("web\xff01"), 1)),
			skip: always, wantErr: inventory.ReasonMalformed},
		// What skipping gives up, by design: nothing from these packages is used.
		{name: "skip: package invalid utf-8 is not checked", msg: raw(badUTF8Pkg), skip: always, want: &noPackages, skipped: true, pkgCount: 2, asked: true},
		{name: "no skip: package invalid utf-8", msg: raw(badUTF8Pkg), wantErr: inventory.ReasonMalformed},
		{name: "skip: hash is not verified", msg: raw(hashMismatch), skip: always, want: &noPackages, skipped: true, pkgCount: 2, asked: true},
		{name: "no skip: hash mismatch", msg: raw(hashMismatch), wantErr: inventory.ReasonInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked []string
			opt := inventory.DecodeOptions{}
			if tc.skip != nil {
				opt.SkipPackages = func(h string) bool { asked = append(asked, h); return tc.skip(h) }
			}
			var dec inventory.Decoder
			got, err := dec.DecodeWith(tc.msg, opt)
			if tc.want == nil {
				if inventory.ReasonOf(err) != tc.wantErr {
					t.Fatalf("got %+v, %v; want reason %q", got.Scan, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Scan, tc.want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got.Scan, tc.want)
			}
			if got.PackagesSkipped != tc.skipped || got.PackageCount != tc.pkgCount {
				t.Fatalf("skipped %v count %d, want %v %d", got.PackagesSkipped, got.PackageCount, tc.skipped, tc.pkgCount)
			}
			if tc.asked != (len(asked) == 1) || tc.asked && asked[0] != full.InventoryHash {
				t.Fatalf("SkipPackages asked with %q, want asked=%v", asked, tc.asked)
			}
		})
	}
}

// TestDecodeWithReusedDecoder checks that skipping does not leave state that
// changes the next, full decode.
func TestDecodeWithReusedDecoder(t *testing.T) {
	s := realScan(t)
	msg, err := inventory.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	var dec inventory.Decoder
	for i, skip := range []bool{true, false, true, false} {
		got, err := dec.DecodeWith(msg, inventory.DecodeOptions{SkipPackages: func(string) bool { return skip }})
		if err != nil {
			t.Fatal(err)
		}
		if got.PackagesSkipped != skip || got.PackageCount != len(s.Packages) {
			t.Fatalf("round %d: skipped %v count %d", i, got.PackagesSkipped, got.PackageCount)
		}
		if !skip && !reflect.DeepEqual(got.Scan, s) {
			t.Fatalf("round %d: full decode differs", i)
		}
	}
}

func BenchmarkDecodeSkipPackages(b *testing.B) {
	s := realScan(b)
	msg, err := inventory.Encode(s)
	if err != nil {
		b.Fatal(err)
	}
	var dec inventory.Decoder
	opt := inventory.DecodeOptions{SkipPackages: func(string) bool { return true }}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.DecodeWith(msg, opt); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDecodeSkip: whatever decodes in full also decodes with its packages
// skipped, to the same scan without them; and skipping accepts nothing else
// beyond what it gives up checking (v1: package UTF-8 and the hash; v2: the
// whole package section).
func FuzzDecodeSkip(f *testing.F) {
	for _, s := range []*inventory.Scan{smallScan(), heartbeat()} {
		b, err := inventory.Encode(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(rawV2(f, b))
		if b, err = encodeV1(s); err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(raw(body(f, b)))
	}
	skip := inventory.DecodeOptions{SkipPackages: func(string) bool { return true }}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var full, skipped inventory.Decoder
		want, errFull := full.DecodeWith(msg, inventory.DecodeOptions{})
		got, errSkip := skipped.DecodeWith(msg, skip)
		if errSkip != nil && inventory.ReasonOf(errSkip) == "" {
			t.Fatalf("untyped error %v", errSkip)
		}
		if errFull == nil {
			if errSkip != nil {
				t.Fatalf("decodes in full but not skipped: %v", errSkip)
			}
			w := *want.Scan
			w.Packages = nil
			if !reflect.DeepEqual(got.Scan, &w) || got.PackageCount != len(want.Scan.Packages) {
				t.Fatalf("skipped decode differs:\n%+v\nwant\n%+v", got.Scan, &w)
			}
			return
		}
		if errSkip == nil {
			// v1 skipping still walks the package columns: it may only
			// miss UTF-8 and the hash. v2 skips the section whole.
			r := inventory.ReasonOf(errFull)
			v1Miss := r == inventory.ReasonMalformed || r == inventory.ReasonInvalid
			if !got.PackagesSkipped || got.Version == 1 && !v1Miss {
				t.Fatalf("skipping accepted a v%d message rejected in full for %v", got.Version, errFull)
			}
		}
	})
}

func TestEncoderTrustHash(t *testing.T) {
	other := smallScan()
	other.Packages = other.Packages[:1]
	wrongHash := inventory.HashPackages(other.Packages) // well-formed, for another list
	for _, tc := range []struct {
		name       string
		trust      bool
		hash       string
		encodeErr  bool
		decodeFull inventory.Reason // "" = decodes
	}{
		{name: "verified, right hash", hash: smallScan().InventoryHash},
		{name: "verified, wrong hash", hash: wrongHash, encodeErr: true},
		{name: "verified, empty hash is computed", hash: ""},
		{name: "trusted, right hash", trust: true, hash: smallScan().InventoryHash},
		{name: "trusted, empty hash is computed", trust: true, hash: ""},
		// Trusting a wrong hash is the caller's bug; full decoding catches it.
		{name: "trusted, wrong hash", trust: true, hash: wrongHash, decodeFull: inventory.ReasonInvalid},
		{name: "trusted, malformed hash still refused", trust: true, hash: "not-hex", encodeErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := smallScan()
			s.InventoryHash = tc.hash
			enc := inventory.Encoder{TrustHash: tc.trust}
			msg, err := enc.Append(nil, s)
			if (err != nil) != tc.encodeErr {
				t.Fatalf("encode: %v, want error %v", err, tc.encodeErr)
			}
			if err != nil {
				return
			}
			got, err := inventory.Decode(msg)
			if inventory.ReasonOf(err) != tc.decodeFull {
				t.Fatalf("decode: %v, want reason %q", err, tc.decodeFull)
			}
			if err == nil && got.InventoryHash != smallScan().InventoryHash {
				t.Fatalf("hash on the wire %s, want %s", got.InventoryHash, smallScan().InventoryHash)
			}
		})
	}
}

func BenchmarkEncodeTrustHash(b *testing.B) {
	s := realScan(b)
	enc := inventory.Encoder{TrustHash: true}
	buf, err := enc.Append(nil, s)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = enc.Append(buf[:0], s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "wire-bytes")
}
