package inventory_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/patchgrid/patchgrid/schemas/inventory"
)

// v2Parts splits a v2 message into its meta bytes and its decompressed
// package section (nil when the scan has no packages).
func v2Parts(tb testing.TB, msg []byte) (meta, section []byte) {
	tb.Helper()
	if msg[4] != 2 {
		tb.Fatalf("version %d, want 2", msg[4])
	}
	n, k := binary.Uvarint(msg[6:])
	meta = msg[6+k : 6+k+int(n)]
	rest := msg[6+k+int(n):]
	if len(rest) == 0 {
		return meta, nil
	}
	raw, k := binary.Uvarint(rest)
	if msg[5]&1 == 0 {
		return meta, rest[k:]
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer dec.Close()
	section, err = dec.DecodeAll(rest[k:], nil)
	if err != nil || len(section) != int(raw) {
		tb.Fatalf("section: %d bytes, %v", len(section), err)
	}
	return meta, section
}

// buildV2 assembles a v2 message with an uncompressed section (flags 0).
func buildV2(meta, section []byte) []byte {
	msg := append([]byte(inventory.Magic), 2, 0)
	msg = binary.AppendUvarint(msg, uint64(len(meta)))
	msg = append(msg, meta...)
	if section != nil {
		msg = binary.AppendUvarint(msg, uint64(len(section)))
		msg = append(msg, section...)
	}
	return msg
}

// rawV2 is msg (v2) with its section uncompressed, for byte-level cases.
func rawV2(tb testing.TB, msg []byte) []byte {
	return buildV2(v2Parts(tb, msg))
}

func TestGoldenV2(t *testing.T) {
	s := smallScan()
	path := filepath.Join("testdata", "scan-v2.golden.hex")
	if *update {
		b, err := inventory.Encode(s)
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
	got, err := inventory.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("golden decodes to\n%+v\nwant\n%+v", got, s)
	}
	// Compare the layout, not the zstd bytes (they may change with the
	// library).
	now, err := inventory.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	m1, s1 := v2Parts(t, now)
	m2, s2 := v2Parts(t, msg)
	if !bytes.Equal(m1, m2) || !bytes.Equal(s1, s2) || !bytes.Equal(now[:6], msg[:6]) {
		t.Fatal("the v2 layout changed: bump SchemaVersion instead (or run -update if the change is intended and compatible)")
	}
}

func TestDecodeErrorsV2(t *testing.T) {
	good, err := inventory.Encode(smallScan())
	if err != nil {
		t.Fatal(err)
	}
	meta, section := v2Parts(t, good)
	hb, err := inventory.Encode(heartbeat())
	if err != nil {
		t.Fatal(err)
	}
	hbMeta, _ := v2Parts(t, hb)
	// The meta's last byte is the package count (2 for smallScan, 0 for a
	// heartbeat): one byte either way.
	withCount := func(m []byte, n byte) []byte { m = bytes.Clone(m); m[len(m)-1] = n; return m }
	// A heartbeat's flags byte: criticality 4 then flags 3 (internet-facing,
	// heartbeat); find it by its neighbours in smallScan's meta.
	fullAsHeartbeat := bytes.Clone(meta)
	if i := bytes.Index(fullAsHeartbeat, []byte{4, 1, 2, 3, 'p', 'c', 'i'}); i < 0 {
		t.Fatal("flags not found in meta")
	} else {
		fullAsHeartbeat[i+1] = 3
	}
	compressedSection := good[len(good)-(len(good)-6-1-len(meta)):]
	for _, tc := range []struct {
		name string
		msg  []byte
		want inventory.Reason
	}{
		{"meta length missing", good[:6], inventory.ReasonTruncated},
		{"meta longer than message", good[:6+1+len(meta)/2], inventory.ReasonTruncated},
		{"absurd meta length", append(append([]byte(inventory.Magic), 2, 1), binary.AppendUvarint(nil, 1<<40)...), inventory.ReasonTooLarge},
		{"trailing meta bytes", buildV2(append(bytes.Clone(hbMeta), 0), nil), inventory.ReasonMalformed},
		{"invalid utf-8 in meta", buildV2(bytes.Replace(meta, []byte("web-01"), []byte("web\xff01"), 1), section), inventory.ReasonMalformed},
		{"packages declared, no section", buildV2(meta, nil), inventory.ReasonTruncated},
		{"section without packages", append(buildV2(withCount(meta, 0), nil), 1, 2, 3), inventory.ReasonMalformed},
		{"heartbeat with packages", buildV2(fullAsHeartbeat, section), inventory.ReasonInvalid},
		{"more packages than the section can hold", buildV2(withCount(meta, 120), section), inventory.ReasonMalformed},
		{"fewer packages than the section holds", buildV2(withCount(meta, 1), section), inventory.ReasonMalformed},
		{"truncated section", buildV2(meta, section)[:len(buildV2(meta, section))-1], inventory.ReasonTruncated},
		{"corrupt zstd section", func() []byte {
			b := bytes.Clone(good)
			b[len(b)-6] ^= 0xff
			return b
		}(), inventory.ReasonBadCompression},
		{"section inflates short", func() []byte {
			b := append([]byte(inventory.Magic), 2, 1)
			b = binary.AppendUvarint(b, uint64(len(meta)))
			b = append(b, meta...)
			b = binary.AppendUvarint(b, uint64(len(section)+1))
			_, k := binary.Uvarint(compressedSection)
			return append(b, compressedSection[k:]...)
		}(), inventory.ReasonBadCompression},
		{"hash mismatch", buildV2(meta, bytes.Replace(section, []byte("openssh-server"), []byte("openssh-client"), 1)), inventory.ReasonInvalid},
		{"invalid utf-8 in section", buildV2(meta, bytes.Replace(section, []byte("golang.org/x/text"), []byte("golang.org/x/t\xffxt"), 1)), inventory.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := inventory.Decode(tc.msg)
			if err == nil {
				t.Fatalf("decoded %+v", s)
			}
			if inventory.ReasonOf(err) != tc.want {
				t.Fatalf("got %v (reason %q), want reason %q", err, inventory.ReasonOf(err), tc.want)
			}
			t.Log(err)
		})
	}
	// The uncompressed form of a good message decodes.
	if _, err := inventory.Decode(buildV2(meta, section)); err != nil {
		t.Fatalf("uncompressed v2: %v", err)
	}
}

// TestDecodeV2SkipDoesNotInflate: a skipped v2 section is not touched at
// all, which is the point of the split; a section that is needed still is
// checked in full.
func TestDecodeV2SkipDoesNotInflate(t *testing.T) {
	s := realScan(t)
	msg, err := inventory.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(msg)
	corrupt[len(corrupt)-20] ^= 0xff
	skip := inventory.DecodeOptions{SkipPackages: func(h string) bool { return h == s.InventoryHash }}
	var dec inventory.Decoder
	got, err := dec.DecodeWith(corrupt, skip)
	if err != nil || !got.PackagesSkipped || got.PackageCount != len(s.Packages) || got.Scan.Packages != nil || got.Version != 2 {
		t.Fatalf("skipped decode: %+v, %v", got, err)
	}
	if _, err := dec.DecodeWith(corrupt, inventory.DecodeOptions{}); inventory.ReasonOf(err) != inventory.ReasonBadCompression {
		t.Fatalf("full decode of a corrupt section: %v", err)
	}
}

func TestSectionCache(t *testing.T) {
	s := realScan(t)
	plain, err := inventory.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	cache := inventory.NewSectionCache(1 << 20)
	e := inventory.Encoder{Sections: cache}
	other := *s
	other.HostID, other.ScanID = "another-host", "another-scan"
	// The same list in another order has the same hash: the cached section
	// stands for it (a set, as stored).
	other.Packages = append([]inventory.Package(nil), s.Packages...)
	other.Packages[0], other.Packages[1] = other.Packages[1], other.Packages[0]
	for i, sc := range []*inventory.Scan{s, &other, s} {
		msg, err := e.Append(nil, sc)
		if err != nil {
			t.Fatal(err)
		}
		_, sec := v2Parts(t, msg)
		_, want := v2Parts(t, plain)
		if !bytes.Equal(sec, want) {
			t.Fatalf("scan %d: section differs from the uncached encoding", i)
		}
		got, err := inventory.Decode(msg)
		if err != nil {
			t.Fatal(err)
		}
		if got.HostID != sc.HostID || got.InventoryHash != s.InventoryHash || len(got.Packages) != len(s.Packages) {
			t.Fatalf("scan %d decodes to host %s hash %s, %d packages", i, got.HostID, got.InventoryHash, len(got.Packages))
		}
	}
	// Over budget: nothing is cached, everything still encodes.
	small := inventory.NewSectionCache(10)
	e = inventory.Encoder{Sections: small}
	for range 2 {
		if _, err := e.Append(nil, s); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEncoderUnknownVersion(t *testing.T) {
	e := inventory.Encoder{Version: 9}
	if _, err := e.Append(nil, smallScan()); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Fatalf("version 9: %v", err)
	}
}

func BenchmarkEncodeV2CachedSection(b *testing.B) {
	s := realScan(b)
	e := inventory.Encoder{TrustHash: true, Sections: inventory.NewSectionCache(1 << 20)}
	buf, err := e.Append(nil, s)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = e.Append(buf[:0], s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "wire-bytes")
}
