package inventory_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/patchgrid/patchgrid/scanner/inventory/dpkg"
	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// realScan is a full scan of the real 745-package Debian 12 host.
func realScan(tb testing.TB) *inventory.Scan {
	tb.Helper()
	f, err := os.Open(filepath.Join(testenv.SharedData(tb), "inventories/dpkg/debian12-bookworm-host-b.status"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	res, err := dpkg.Extractor{}.Extract(context.Background(), &extract.Input{Path: "/var/lib/dpkg/status", Reader: f,
		Distro: extract.Distro{ID: "debian", VersionID: "12", Ecosystem: "Debian:12"}})
	if err != nil || len(res.Packages) != 745 {
		tb.Fatalf("%d packages, %v", len(res.Packages), err)
	}
	s := smallScan()
	s.Packages = res.Packages
	s.InventoryHash = inventory.HashPackages(s.Packages)
	s.KernelsInstalled = []string{"6.1.0-37-amd64", "6.1.0-38-amd64"}
	return s
}

func smallScan() *inventory.Scan {
	s := &inventory.Scan{
		HostID:        "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
		ScanID:        "5f0c4a8e2b7d4e61a9c3f1e2d3b4a596",
		ScannedAt:     time.Date(2026, 11, 22, 3, 30, 15, 123456789, time.UTC),
		Hostname:      "web-01.example.internal",
		OS:            inventory.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", Ecosystem: "Debian:12"},
		KernelRunning: "6.1.0-37-amd64",
		Meta: inventory.Meta{Owner: "team-web", Ring: "prod", Criticality: 4, InternetFacing: true,
			Tags: []string{"pci", "frontend"}, MaintenanceWindow: "Sun 02:00-04:00 UTC"},
		Packages: []inventory.Package{
			{Ecosystem: "Debian:12", Name: "openssh-server", Version: "1:9.2p1-2+deb12u5", Arch: "amd64", SourceName: "openssh",
				SourceVersion: "1:9.2p1-2+deb12u5", PURL: "pkg:deb/debian/openssh-server@1:9.2p1-2%2Bdeb12u5?arch=amd64&distro=debian-12&upstream=openssh",
				Location: "/var/lib/dpkg/status"},
			{Ecosystem: "Go", Name: "golang.org/x/text", Version: "0.3.6", PURL: "pkg:golang/golang.org/x/text@v0.3.6", Location: "/srv/app/go.mod"},
		},
		Warnings: []string{"/srv/old/package-lock.json: unexpected end of JSON input"},
	}
	s.InventoryHash = inventory.HashPackages(s.Packages)
	return s
}

func heartbeat() *inventory.Scan {
	s := smallScan()
	s.Heartbeat = true
	s.Packages = nil
	s.Warnings = nil
	return s
}

func TestRoundTrip(t *testing.T) {
	empty := smallScan()
	empty.Packages = nil
	empty.InventoryHash = inventory.HashPackages(nil)
	for name, s := range map[string]*inventory.Scan{"small": smallScan(), "heartbeat": heartbeat(), "empty": empty, "real": realScan(t)} {
		for _, version := range []uint8{1, inventory.SchemaVersion} {
			t.Run(fmt.Sprintf("%s/v%d", name, version), func(t *testing.T) {
				e := inventory.Encoder{Version: version}
				b, err := e.Append(nil, s)
				if err != nil {
					t.Fatal(err)
				}
				if b[4] != version {
					t.Fatalf("wrote version %d, want %d", b[4], version)
				}
				got, err := inventory.Decode(b)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, s) {
					t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, s)
				}
				t.Logf("%d packages: %d bytes encoded", len(s.Packages), len(b))
			})
		}
	}
}

func TestEncodeFillsHash(t *testing.T) {
	s := smallScan()
	s.InventoryHash = ""
	b, err := inventory.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := inventory.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.InventoryHash != "" || got.InventoryHash != inventory.HashPackages(s.Packages) {
		t.Fatalf("hash on the wire %q, input modified to %q", got.InventoryHash, s.InventoryHash)
	}
}

func TestHashPackagesOrderIndependent(t *testing.T) {
	s := realScan(t)
	h := inventory.HashPackages(s.Packages)
	rev := make([]inventory.Package, len(s.Packages))
	for i, p := range s.Packages {
		rev[len(rev)-1-i] = p
	}
	if inventory.HashPackages(rev) != h {
		t.Fatal("hash depends on order")
	}
	rev[0].Version += "+1"
	if inventory.HashPackages(rev) == h {
		t.Fatal("hash ignores a version change")
	}
	// Field boundaries matter: moving a byte between fields changes the hash.
	a := []inventory.Package{{Ecosystem: "Debian:12", Name: "ab", Version: "1"}}
	b := []inventory.Package{{Ecosystem: "Debian:12", Name: "a", Version: "b1"}}
	if inventory.HashPackages(a) == inventory.HashPackages(b) {
		t.Fatal("field boundaries are ambiguous")
	}
	if got := inventory.HashPackages(nil); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("empty list hash %s is not sha256 of nothing", got)
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	for name, mut := range map[string]func(*inventory.Scan){
		"empty host id":          func(s *inventory.Scan) { s.HostID = "" },
		"empty scan id":          func(s *inventory.Scan) { s.ScanID = "" },
		"zero time":              func(s *inventory.Scan) { s.ScannedAt = time.Time{} },
		"criticality":            func(s *inventory.Scan) { s.Meta.Criticality = 9 },
		"heartbeat with package": func(s *inventory.Scan) { s.Heartbeat = true },
		"hash mismatch":          func(s *inventory.Scan) { s.InventoryHash = strings.Repeat("0", 64) },
		"bad hash":               func(s *inventory.Scan) { s.InventoryHash = "xyz" },
		"no ecosystem":           func(s *inventory.Scan) { s.Packages[0].Ecosystem = "" },
		"no version":             func(s *inventory.Scan) { s.Packages[1].Version = "" },
		"invalid utf-8":          func(s *inventory.Scan) { s.Hostname = "web\xff" },
	} {
		s := smallScan()
		mut(s)
		if _, err := inventory.Encode(s); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// body returns the decompressed body of an encoded message.
func body(t testing.TB, msg []byte) []byte {
	t.Helper()
	_, n := binary.Uvarint(msg[6:])
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	b, err := dec.DecodeAll(msg[6+n:], nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encodeV1 encodes s in the v1 layout, which the helpers below (body, raw)
// and the byte-level error cases are written for.
func encodeV1(s *inventory.Scan) ([]byte, error) {
	e := inventory.Encoder{Version: 1}
	return e.Append(nil, s)
}

// raw builds a v1 message with an uncompressed body (flags 0), the form tests
// use to reach the body parser with exact bytes.
func raw(b []byte) []byte {
	msg := append([]byte(inventory.Magic), 1, 0)
	msg = binary.AppendUvarint(msg, uint64(len(b)))
	return append(msg, b...)
}

func TestDecodeErrors(t *testing.T) {
	good, err := encodeV1(smallScan())
	if err != nil {
		t.Fatal(err)
	}
	goodBody := body(t, good)
	hb, err := encodeV1(heartbeat())
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
	// Replace one string in the body's table with another of the same
	// length, keeping the layout intact.
	replace := func(old, new string) []byte {
		if len(old) != len(new) || !bytes.Contains(goodBody, []byte(old)) {
			t.Fatalf("cannot replace %q", old)
		}
		return raw(bytes.Replace(goodBody, []byte(old), []byte(new), 1))
	}
	hbBody := body(t, hb)
	for _, tc := range []struct {
		name string
		msg  []byte
		want inventory.Reason
	}{
		{"empty", nil, inventory.ReasonTruncated},
		{"short header", good[:5], inventory.ReasonTruncated},
		{"bad magic", mutate(good, func(b []byte) []byte { b[0] = 'X'; return b }), inventory.ReasonBadMagic},
		{"json", []byte(`{"HostID":"x"}`), inventory.ReasonBadMagic},
		{"version 3", mutate(good, func(b []byte) []byte { b[4] = 3; return b }), inventory.ReasonUnknownVersion},
		{"unknown flag", mutate(good, func(b []byte) []byte { b[5] |= 0x80; return b }), inventory.ReasonUnknownVersion},
		{"absurd size", append(append([]byte(inventory.Magic), 1, 1), binary.AppendUvarint(nil, 1<<40)...), inventory.ReasonTooLarge},
		{"size over cap", append(append([]byte(inventory.Magic), 1, 1), binary.AppendUvarint(nil, inventory.MaxBodySize+1)...), inventory.ReasonTooLarge},
		{"corrupt zstd", mutate(good, func(b []byte) []byte { b[len(b)-6] ^= 0xff; return b }), inventory.ReasonBadCompression},
		{"truncated zstd", good[:len(good)-10], inventory.ReasonBadCompression},
		{"not zstd", append(good[:7:7], []byte("plain bytes, not a frame")...), inventory.ReasonBadCompression},
		{"body shorter than declared", mutate(good, func(b []byte) []byte { b[6]++; return b }), inventory.ReasonBadCompression},
		{"truncated body", raw(goodBody[:len(goodBody)/2]), inventory.ReasonTruncated},
		{"raw length mismatch", raw(goodBody)[:len(raw(goodBody))-1], inventory.ReasonTruncated},
		{"trailing bytes", raw(append(bytes.Clone(goodBody), 0)), inventory.ReasonMalformed},
		{"absurd string count", raw(binary.AppendUvarint(nil, 1<<30)), inventory.ReasonTooLarge},
		{"string count beyond body", raw(binary.AppendUvarint(nil, 1000)), inventory.ReasonTruncated},
		{"string beyond body", raw([]byte{1, 200, 'a'}), inventory.ReasonTruncated},
		{"ref beyond table", raw([]byte{0, 5}), inventory.ReasonMalformed},
		{"invalid utf-8", raw(bytes.Replace(goodBody, []byte("web-01"), []byte("web\xff01"), 1)), inventory.ReasonMalformed},
		{"empty host id", mutate(hbBody, func(b []byte) []byte { return raw(setRef(t, b, 0)) }), inventory.ReasonInvalid},
		{"heartbeat with packages", replaceFlags(t, goodBody), inventory.ReasonInvalid},
		{"hash mismatch", replace("openssh-server", "openssh-client"), inventory.ReasonInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := inventory.Decode(tc.msg)
			if err == nil {
				t.Fatalf("decoded %+v", s)
			}
			var de *inventory.DecodeError
			if !errors.As(err, &de) || de.Reason != tc.want || inventory.ReasonOf(err) != tc.want {
				t.Fatalf("got %v (reason %q), want reason %q", err, inventory.ReasonOf(err), tc.want)
			}
			t.Log(err)
		})
	}
}

// setRef rewrites the first reference after the string table (the host id).
func setRef(t *testing.T, b []byte, ref byte) []byte {
	off := tableEnd(t, b)
	if b[off] >= 0x80 {
		t.Fatal("multi-byte ref")
	}
	b[off] = ref
	return b
}

func tableEnd(t *testing.T, b []byte) int {
	n, off := binary.Uvarint(b)
	for range n {
		l, k := binary.Uvarint(b[off:])
		off += k + int(l)
	}
	return off
}

// replaceFlags sets the heartbeat flag on a full scan's body. The flags byte
// follows the criticality byte 4 of smallScan; find it after the table.
func replaceFlags(t *testing.T, b []byte) []byte {
	b = bytes.Clone(b)
	off := tableEnd(t, b)
	for i := off; i+1 < len(b); i++ {
		if b[i] == 4 && b[i+1] == 1 { // criticality 4, flags = internet-facing
			b[i+1] = 3
			return raw(b)
		}
	}
	t.Fatal("flags not found")
	return nil
}

func TestGolden(t *testing.T) {
	s := smallScan()
	path := filepath.Join("testdata", "scan-v1.golden.hex")
	if *update {
		b, err := encodeV1(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	msg, err := hex.DecodeString(strings.TrimSpace(string(h)))
	if err != nil {
		t.Fatal(err)
	}
	// Messages written by earlier builds must stay readable.
	got, err := inventory.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("golden decodes to\n%+v\nwant\n%+v", got, s)
	}
	// The body layout is ours and must not drift; the zstd bytes around it
	// may change with the library, so compare decompressed bodies.
	now, err := encodeV1(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body(t, now), body(t, msg)) || !bytes.Equal(now[:6], msg[:6]) {
		t.Fatal("the v1 layout changed: bump SchemaVersion instead (or run -update if the change is intended and compatible)")
	}
}

func FuzzDecode(f *testing.F) {
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
	b, err := inventory.Encode(realScan(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	if b, err = encodeV1(realScan(f)); err != nil {
		f.Fatal(err)
	}
	f.Add(raw(body(f, b)[:4096]))
	f.Add([]byte("PGSC\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, err := inventory.Decode(msg)
		if err != nil {
			if inventory.ReasonOf(err) == "" {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := inventory.Encode(s)
		if err != nil {
			t.Fatalf("decoded scan does not encode: %v", err)
		}
		s2, err := inventory.Decode(again)
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("re-encode round trip: %v", err)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	s := realScan(b)
	var enc inventory.Encoder
	buf, err := enc.Append(nil, s)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		buf, err = enc.Append(buf[:0], s)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "wire-bytes")
	b.ReportMetric(float64(len(buf))/float64(len(s.Packages)), "wire-bytes/pkg")
}

func BenchmarkDecode(b *testing.B) {
	s := realScan(b)
	msg, err := inventory.Encode(s)
	if err != nil {
		b.Fatal(err)
	}
	var dec inventory.Decoder
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashPackages(b *testing.B) {
	s := realScan(b)
	b.ReportAllocs()
	for b.Loop() {
		inventory.HashPackages(s.Packages)
	}
}
