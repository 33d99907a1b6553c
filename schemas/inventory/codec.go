package inventory

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// Wire format constants of schema v1 (README.md, "Message schema v1").
const (
	Magic         = "PGSC"
	SchemaVersion = 1

	flagZstd     = 1 << 0
	knownFlags   = flagZstd
	headerMinLen = len(Magic) + 2 + 1

	// MaxBodySize caps the decompressed body; larger messages are rejected
	// before anything is allocated for them.
	MaxBodySize = 64 << 20
	// MaxPackages caps the package count of one scan.
	MaxPackages = 1 << 20
	// MaxListLen caps kernels, tags and warnings.
	MaxListLen = 1 << 16
)

const numPackageColumns = 8

// zstd encoders and decoders are expensive to build and safe for concurrent
// EncodeAll/DecodeAll, so the process shares one of each.
var (
	sharedZstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithEncoderCRC(true))
		if err != nil {
			panic(fmt.Sprintf("zstd encoder with static options: %v", err))
		}
		return enc
	})
	sharedZstdDecoder = sync.OnceValue(func() *zstd.Decoder {
		dec, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderMaxMemory(MaxBodySize),
			// The destination's capacity (the declared body length) is the
			// hard limit: a frame that inflates beyond it is an error.
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			panic(fmt.Sprintf("zstd decoder with static options: %v", err))
		}
		return dec
	})
	encoderPool = sync.Pool{New: func() any { return new(Encoder) }}
	decoderPool = sync.Pool{New: func() any { return new(Decoder) }}
)

// Encode returns the v1 wire encoding of s. It fills InventoryHash on the
// wire when s leaves it empty (s itself is not modified) and refuses a scan
// that Validate rejects or whose hash does not match its packages.
func Encode(s *Scan) ([]byte, error) {
	e := encoderPool.Get().(*Encoder)
	defer encoderPool.Put(e)
	return e.Append(nil, s)
}

// Decode parses and validates one message. Every failure is a *DecodeError
// whose Reason says what is wrong.
func Decode(b []byte) (*Scan, error) {
	d := decoderPool.Get().(*Decoder)
	defer decoderPool.Put(d)
	return d.Decode(b)
}

// Encoder keeps scratch space between messages; reuse one per goroutine to
// encode without garbage. The zero value is ready to use.
type Encoder struct {
	hs     hashScratch
	body   []byte
	index  map[string]uint32
	strs   []string
	refs   []uint32
	strLen int
}

func (e *Encoder) reset() {
	e.body = e.body[:0]
	if e.index == nil {
		e.index = make(map[string]uint32)
	} else {
		clear(e.index)
	}
	e.strs = e.strs[:0]
	e.refs = e.refs[:0]
	e.strLen = 0
}

// ref interns s and returns its table reference: 0 is the empty string,
// i > 0 is table entry i-1.
func (e *Encoder) ref(s string) uint32 {
	if s == "" {
		return 0
	}
	if r, ok := e.index[s]; ok {
		return r
	}
	e.strs = append(e.strs, s)
	r := uint32(len(e.strs))
	e.index[s] = r
	e.strLen += len(s)
	return r
}

// Append appends the encoding of s to dst.
func (e *Encoder) Append(dst []byte, s *Scan) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return dst, fmt.Errorf("encode scan %s of host %s: %w", s.ScanID, s.HostID, err)
	}
	hash := s.InventoryHash
	if !s.Heartbeat {
		computed := e.hs.hash(s.Packages)
		if hash == "" {
			hash = computed
		} else if hash != computed {
			return dst, fmt.Errorf("encode scan %s of host %s: %w", s.ScanID, s.HostID,
				invalid("inventory_hash", "hash %s does not match the packages (%s)", hash, computed))
		}
	}
	e.reset()

	// Interning happens in the order fields are written, column by column,
	// so each package column's references mostly grow by one and their
	// deltas compress to almost nothing.
	e.refs = append(e.refs,
		e.ref(s.HostID), e.ref(s.ScanID), e.ref(s.Hostname),
		e.ref(s.OS.ID), e.ref(s.OS.VersionID), e.ref(s.OS.PrettyName), e.ref(s.OS.Ecosystem),
		e.ref(s.KernelRunning))
	for _, k := range s.KernelsInstalled {
		e.refs = append(e.refs, e.ref(k))
	}
	e.refs = append(e.refs, e.ref(s.Meta.Owner), e.ref(s.Meta.Ring))
	for _, t := range s.Meta.Tags {
		e.refs = append(e.refs, e.ref(t))
	}
	e.refs = append(e.refs, e.ref(s.Meta.MaintenanceWindow), e.ref(hash))
	for _, w := range s.Warnings {
		e.refs = append(e.refs, e.ref(w))
	}
	for col := 0; col < numPackageColumns; col++ {
		for i := range s.Packages {
			e.refs = append(e.refs, e.ref(packageFields(&s.Packages[i])[col]))
		}
	}
	for i, str := range e.strs {
		if !utf8.ValidString(str) {
			return dst, fmt.Errorf("encode scan %s of host %s: %w", s.ScanID, s.HostID,
				decodeErr(ReasonMalformed, fmt.Sprintf("strings[%d]", i), -1, "invalid UTF-8 in %q", str))
		}
	}

	b := e.body
	b = binary.AppendUvarint(b, uint64(len(e.strs)))
	for _, str := range e.strs {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	refs := e.refs
	next := func() uint32 { r := refs[0]; refs = refs[1:]; return r }
	b = binary.AppendUvarint(b, uint64(next())) // host id
	b = binary.AppendUvarint(b, uint64(next())) // scan id
	b = binary.AppendVarint(b, s.ScannedAt.Unix())
	b = binary.AppendUvarint(b, uint64(s.ScannedAt.Nanosecond()))
	for range 6 { // hostname, OS (4), kernel running
		b = binary.AppendUvarint(b, uint64(next()))
	}
	b = appendRefList(b, len(s.KernelsInstalled), next)
	b = binary.AppendUvarint(b, uint64(next())) // owner
	b = binary.AppendUvarint(b, uint64(next())) // ring
	var flags byte
	if s.Meta.InternetFacing {
		flags |= 1
	}
	if s.Heartbeat {
		flags |= 2
	}
	b = append(b, s.Meta.Criticality, flags)
	b = appendRefList(b, len(s.Meta.Tags), next)
	b = binary.AppendUvarint(b, uint64(next())) // maintenance window
	b = binary.AppendUvarint(b, uint64(next())) // inventory hash
	b = appendRefList(b, len(s.Warnings), next)
	b = binary.AppendUvarint(b, uint64(len(s.Packages)))
	for col := 0; col < numPackageColumns; col++ {
		var prev int64
		for range s.Packages {
			r := int64(next())
			b = binary.AppendVarint(b, r-prev)
			prev = r
		}
	}
	e.body = b
	if len(b) > MaxBodySize {
		return dst, fmt.Errorf("encode scan %s of host %s: %w", s.ScanID, s.HostID,
			decodeErr(ReasonTooLarge, "", -1, "body of %d bytes exceeds %d", len(b), MaxBodySize))
	}

	dst = append(dst, Magic...)
	dst = append(dst, SchemaVersion, flagZstd)
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return sharedZstdEncoder().EncodeAll(b, dst), nil
}

func appendRefList(b []byte, n int, next func() uint32) []byte {
	b = binary.AppendUvarint(b, uint64(n))
	for range n {
		b = binary.AppendUvarint(b, uint64(next()))
	}
	return b
}

// Decoder keeps its decompression buffer and string table between messages;
// reuse one per goroutine. The zero value is ready to use. Decoded scans do
// not alias the Decoder's buffers.
type Decoder struct {
	hs    hashScratch
	body  []byte
	table []string
}

// Decode parses and validates one message.
func (d *Decoder) Decode(msg []byte) (*Scan, error) {
	if len(msg) < headerMinLen {
		if len(msg) >= len(Magic) && string(msg[:len(Magic)]) != Magic {
			return nil, decodeErr(ReasonBadMagic, "header", 0, "got %q, want %q", msg[:len(Magic)], Magic)
		}
		return nil, decodeErr(ReasonTruncated, "header", 0, "%d bytes is shorter than the %d-byte header", len(msg), headerMinLen)
	}
	if string(msg[:len(Magic)]) != Magic {
		return nil, decodeErr(ReasonBadMagic, "header", 0, "got %q, want %q", msg[:len(Magic)], Magic)
	}
	if v := msg[len(Magic)]; v != SchemaVersion {
		return nil, decodeErr(ReasonUnknownVersion, "header.version", len(Magic), "schema version %d, this build reads %d", v, SchemaVersion)
	}
	flags := msg[len(Magic)+1]
	if flags&^knownFlags != 0 {
		return nil, decodeErr(ReasonUnknownVersion, "header.flags", len(Magic)+1, "unknown flag bits %#02x", flags&^knownFlags)
	}
	rest := msg[len(Magic)+2:]
	bodyLen, n := binary.Uvarint(rest)
	if n <= 0 {
		return nil, decodeErr(ReasonTruncated, "header.body_len", len(Magic)+2, "bad uvarint")
	}
	if bodyLen > MaxBodySize {
		return nil, decodeErr(ReasonTooLarge, "header.body_len", len(Magic)+2, "declared body of %d bytes exceeds %d", bodyLen, MaxBodySize)
	}
	payload := rest[n:]
	var body []byte
	if flags&flagZstd != 0 {
		if cap(d.body) < int(bodyLen) {
			d.body = make([]byte, 0, bodyLen)
		}
		// Cap at exactly the declared length so a lying header cannot
		// make the frame inflate further.
		out, err := sharedZstdDecoder().DecodeAll(payload, d.body[:0:bodyLen])
		if err != nil {
			return nil, &DecodeError{Reason: ReasonBadCompression, Field: "body", Offset: -1, Err: err}
		}
		if len(out) != int(bodyLen) {
			return nil, decodeErr(ReasonBadCompression, "body", -1, "decompressed %d bytes, header declares %d", len(out), bodyLen)
		}
		body = out
	} else {
		if uint64(len(payload)) != bodyLen {
			return nil, decodeErr(ReasonTruncated, "body", -1, "%d body bytes, header declares %d", len(payload), bodyLen)
		}
		body = payload
	}
	s, err := d.parseBody(body)
	if err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if !s.Heartbeat {
		if got := d.hs.hash(s.Packages); got != s.InventoryHash {
			return nil, invalid("inventory_hash", "hash %s does not match the packages (%s)", s.InventoryHash, got)
		}
	}
	return s, nil
}

// bodyReader reads the v1 body; the first error sticks and later reads
// return zero values, so parseBody checks once per section.
type bodyReader struct {
	b     []byte
	off   int
	table []string
	err   *DecodeError
	field string
}

func (r *bodyReader) fail(reason Reason, format string, args ...any) {
	if r.err == nil {
		r.err = decodeErr(reason, r.field, r.off, format, args...)
	}
}

func (r *bodyReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n == 0 {
		r.fail(ReasonTruncated, "body ends inside a varint")
		return 0
	}
	if n < 0 {
		r.fail(ReasonMalformed, "varint overflows 64 bits")
		return 0
	}
	r.off += n
	return v
}

func (r *bodyReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n == 0 {
		r.fail(ReasonTruncated, "body ends inside a varint")
		return 0
	}
	if n < 0 {
		r.fail(ReasonMalformed, "varint overflows 64 bits")
		return 0
	}
	r.off += n
	return v
}

func (r *bodyReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail(ReasonTruncated, "body ends before a byte field")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *bodyReader) lookup(ref uint64) string {
	if r.err != nil || ref == 0 {
		return ""
	}
	if ref > uint64(len(r.table)) {
		r.fail(ReasonMalformed, "string reference %d beyond the table of %d", ref, len(r.table))
		return ""
	}
	return r.table[ref-1]
}

func (r *bodyReader) str(field string) string {
	r.field = field
	return r.lookup(r.uvarint())
}

// count reads a list length, bounded by max and by the bytes left (every
// element takes at least one byte), so no count can force a big allocation.
func (r *bodyReader) count(field string, max int) int {
	r.field = field
	n := r.uvarint()
	if r.err != nil {
		return 0
	}
	if n > uint64(max) {
		r.fail(ReasonTooLarge, "count %d exceeds %d", n, max)
		return 0
	}
	if n > uint64(len(r.b)-r.off) {
		r.fail(ReasonTruncated, "count %d but only %d bytes left", n, len(r.b)-r.off)
		return 0
	}
	return int(n)
}

func (r *bodyReader) strList(field string, max int) []string {
	n := r.count(field, max)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.lookup(r.uvarint())
	}
	return out
}

func (d *Decoder) parseBody(body []byte) (*Scan, error) {
	r := &bodyReader{b: body}
	n := r.count("strings", MaxBodySize)
	if r.err != nil {
		return nil, r.err
	}
	// One string allocation holds every table entry; the entries are
	// substrings of it, so a decoded scan costs one copy of its text.
	all := string(body)
	table := d.table[:0]
	for i := range n {
		r.field = "strings"
		l := r.uvarint()
		if r.err != nil {
			return nil, r.err
		}
		if l > uint64(len(body)-r.off) {
			r.fail(ReasonTruncated, "string %d of %d bytes but only %d left", i, l, len(body)-r.off)
			return nil, r.err
		}
		s := all[r.off : r.off+int(l)]
		if !utf8.ValidString(s) {
			r.fail(ReasonMalformed, "string %d is not valid UTF-8", i)
			return nil, r.err
		}
		table = append(table, s)
		r.off += int(l)
	}
	d.table = table
	r.table = table
	defer clear(d.table) // do not pin the last message's text in a pooled Decoder

	s := &Scan{}
	s.HostID = r.str("host_id")
	s.ScanID = r.str("scan_id")
	r.field = "scanned_at"
	sec, nsec := r.varint(), r.uvarint()
	if r.err == nil && nsec >= 1e9 {
		r.fail(ReasonMalformed, "nanoseconds %d out of range", nsec)
	}
	s.ScannedAt = time.Unix(sec, int64(nsec)).UTC()
	s.Hostname = r.str("hostname")
	s.OS.ID = r.str("os.id")
	s.OS.VersionID = r.str("os.version_id")
	s.OS.PrettyName = r.str("os.pretty_name")
	s.OS.Ecosystem = r.str("os.ecosystem")
	s.KernelRunning = r.str("kernel_running")
	s.KernelsInstalled = r.strList("kernels_installed", MaxListLen)
	s.Meta.Owner = r.str("meta.owner")
	s.Meta.Ring = r.str("meta.ring")
	r.field = "meta.criticality"
	s.Meta.Criticality = r.byte()
	r.field = "flags"
	flags := r.byte()
	if r.err == nil && flags&^3 != 0 {
		r.fail(ReasonMalformed, "unknown scan flag bits %#02x", flags&^3)
	}
	s.Meta.InternetFacing = flags&1 != 0
	s.Heartbeat = flags&2 != 0
	s.Meta.Tags = r.strList("meta.tags", MaxListLen)
	s.Meta.MaintenanceWindow = r.str("meta.maintenance_window")
	s.InventoryHash = r.str("inventory_hash")
	s.Warnings = r.strList("warnings", MaxListLen)
	np := r.count("packages", MaxPackages)
	if r.err != nil {
		return nil, r.err
	}
	if np > 0 {
		s.Packages = make([]Package, np)
		cols := [numPackageColumns]string{"ecosystem", "name", "version", "arch", "source_name", "source_version", "purl", "location"}
		for col, name := range cols {
			r.field = "packages." + name
			var prev int64
			for i := range s.Packages {
				ref := prev + r.varint()
				if r.err != nil {
					return nil, r.err
				}
				if ref < 0 {
					r.fail(ReasonMalformed, "negative string reference %d for package %d", ref, i)
					return nil, r.err
				}
				prev = ref
				v := r.lookup(uint64(ref))
				p := &s.Packages[i]
				switch col {
				case 0:
					p.Ecosystem = v
				case 1:
					p.Name = v
				case 2:
					p.Version = v
				case 3:
					p.Arch = v
				case 4:
					p.SourceName = v
				case 5:
					p.SourceVersion = v
				case 6:
					p.PURL = v
				case 7:
					p.Location = v
				}
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(body) {
		r.field = ""
		r.fail(ReasonMalformed, "%d trailing bytes after the last field", len(body)-r.off)
		return nil, r.err
	}
	return s, nil
}
