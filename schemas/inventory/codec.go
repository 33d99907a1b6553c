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

// Wire format constants (README.md, "Message schema v2" and "v1").
const (
	Magic = "PGSC"
	// SchemaVersion is what Encode writes; Decode reads it and every
	// earlier version.
	SchemaVersion = 2
	version1      = 1

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

// zstdSlack is the room the zstd decoder's fast copies need past the end of
// the output (klauspost/compress's compressedBlockOverAlloc).
const zstdSlack = 16

// zstd encoders and decoders are expensive to build and safe for concurrent
// EncodeAll/DecodeAll, so the process shares one of each.
var (
	sharedZstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		enc, err := zstd.NewWriter(nil,
			// SpeedFastest: on a 745-package body (87 KB) 4% larger
			// output than SpeedDefault (21.3 vs 20.4 KB) for 22% less
			// encoding time; decoding is no slower.
			zstd.WithEncoderLevel(zstd.SpeedFastest),
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

// Encode returns the wire encoding (SchemaVersion) of s. It fills InventoryHash on the
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
	// TrustHash makes Append take a non-empty InventoryHash as given
	// instead of re-hashing the packages to verify it (a quarter of the
	// cost of encoding a full scan). For callers that computed it with
	// HashPackages from the very same list, such as the fleet simulator,
	// which hashes each distinct list once for thousands of scans. A wrong
	// hash is then caught by the consumer only when it stores that set;
	// scanners leave the hash empty and have it computed.
	TrustHash bool
	// Version is the wire version to write: 0 means SchemaVersion; 1 for
	// consumers that predate v2 (deploy consumers first, then producers).
	Version uint8
	// Sections, when set, caches the compressed package section of v2 by
	// inventory hash, so that thousands of hosts with the same package set
	// cost one compression (see SectionCache). Share one between Encoders.
	Sections *SectionCache

	hs      hashScratch
	body    []byte
	meta    []byte
	section []byte // the last v2 package section, when not cached
	index   map[string]uint32
	strs    []string
	refs    []uint32
	strLen  int
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
	if !s.Heartbeat && (hash == "" || !e.TrustHash) {
		computed := e.hs.hash(s.Packages)
		if hash == "" {
			hash = computed
		} else if hash != computed {
			return dst, fmt.Errorf("encode scan %s of host %s: %w", s.ScanID, s.HostID,
				invalid("inventory_hash", "hash %s does not match the packages (%s)", hash, computed))
		}
	}
	switch e.Version {
	case 0, SchemaVersion:
		return e.appendV2(dst, s, hash)
	case version1:
		return e.appendV1(dst, s, hash)
	}
	return dst, fmt.Errorf("encode scan %s of host %s: unknown wire version %d", s.ScanID, s.HostID, e.Version)
}

// appendV1 writes the v1 layout: one string table and one zstd frame for
// the whole scan.
func (e *Encoder) appendV1(dst []byte, s *Scan, hash string) ([]byte, error) {
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
	dst = append(dst, version1, flagZstd)
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
	spans []span
}

// span locates one string-table entry in the decompressed body.
type span struct{ off, len uint32 }

// DecodeOptions tune Decoder.DecodeWith.
type DecodeOptions struct {
	// SkipPackages, when set, is asked with the inventory hash of every
	// full scan whether the caller already holds that package set (a
	// consumer that stored it). When it returns true the package section is
	// checked for structure only (every count and string reference in
	// range, ecosystem, name and version present) and not materialized:
	// Scan.Packages stays nil and Decoded.PackageCount gives the count.
	// Neither the package strings' UTF-8 nor the hash are verified then;
	// that is the point (they are most of the decoding cost), and it is
	// safe because nothing from those packages is used: the stored set is
	// the one verified when its hash was first seen.
	SkipPackages func(inventoryHash string) bool
}

// Decoded is the result of DecodeWith.
type Decoded struct {
	Scan *Scan
	// PackageCount is the number of packages the message carries, whether
	// or not they were materialized.
	PackageCount int
	// PackagesSkipped says SkipPackages returned true: Scan.Packages is nil.
	PackagesSkipped bool
	// Version is the message's wire version.
	Version uint8
}

// Decode parses and validates one message.
func (d *Decoder) Decode(msg []byte) (*Scan, error) {
	r, err := d.DecodeWith(msg, DecodeOptions{})
	return r.Scan, err
}

// DecodeWith is Decode with options. Every failure is a *DecodeError.
func (d *Decoder) DecodeWith(msg []byte, opt DecodeOptions) (Decoded, error) {
	if len(msg) < headerMinLen {
		if len(msg) >= len(Magic) && string(msg[:len(Magic)]) != Magic {
			return Decoded{}, decodeErr(ReasonBadMagic, "header", 0, "got %q, want %q", msg[:len(Magic)], Magic)
		}
		return Decoded{}, decodeErr(ReasonTruncated, "header", 0, "%d bytes is shorter than the %d-byte header", len(msg), headerMinLen)
	}
	if string(msg[:len(Magic)]) != Magic {
		return Decoded{}, decodeErr(ReasonBadMagic, "header", 0, "got %q, want %q", msg[:len(Magic)], Magic)
	}
	v := msg[len(Magic)]
	if v != version1 && v != SchemaVersion {
		return Decoded{}, decodeErr(ReasonUnknownVersion, "header.version", len(Magic), "schema version %d, this build reads 1 and %d", v, SchemaVersion)
	}
	flags := msg[len(Magic)+1]
	if flags&^knownFlags != 0 {
		return Decoded{}, decodeErr(ReasonUnknownVersion, "header.flags", len(Magic)+1, "unknown flag bits %#02x", flags&^knownFlags)
	}
	if v == SchemaVersion {
		return d.decodeV2(msg, flags, opt)
	}
	rest := msg[len(Magic)+2:]
	bodyLen, n := binary.Uvarint(rest)
	if n <= 0 {
		return Decoded{}, decodeErr(ReasonTruncated, "header.body_len", len(Magic)+2, "bad uvarint")
	}
	if bodyLen > MaxBodySize {
		return Decoded{}, decodeErr(ReasonTooLarge, "header.body_len", len(Magic)+2, "declared body of %d bytes exceeds %d", bodyLen, MaxBodySize)
	}
	body, err := d.inflate(rest[n:], flags, bodyLen, "body")
	if err != nil {
		return Decoded{}, err
	}
	res, err := d.parseBody(body, opt.SkipPackages)
	if err != nil {
		return Decoded{}, err
	}
	s := res.Scan
	if err := s.Validate(); err != nil {
		return Decoded{}, err
	}
	if !s.Heartbeat && !res.PackagesSkipped {
		if got := d.hs.hash(s.Packages); got != s.InventoryHash {
			return Decoded{}, invalid("inventory_hash", "hash %s does not match the packages (%s)", s.InventoryHash, got)
		}
	}
	return res, nil
}

// inflate returns payload decompressed (flags bit 0) or as it is, checking
// that it is exactly declared bytes long. The result lives in d.body.
func (d *Decoder) inflate(payload []byte, flags byte, declared uint64, field string) ([]byte, error) {
	if flags&flagZstd == 0 {
		if uint64(len(payload)) != declared {
			return nil, decodeErr(ReasonTruncated, field, -1, "%d bytes, header declares %d", len(payload), declared)
		}
		return payload, nil
	}
	// Cap at the declared length plus zstdSlack, so a lying header cannot
	// make the frame inflate further (the length check below rejects the
	// few slack bytes). The slack lets the decoder use its fast block
	// copies, which may write up to 16 bytes past a match; with an
	// exact-size buffer it falls back to bounds-exact copies, about twice
	// as slow.
	limit := int(declared) + zstdSlack
	if cap(d.body) < limit {
		d.body = make([]byte, 0, limit)
	}
	out, err := sharedZstdDecoder().DecodeAll(payload, d.body[:0:limit])
	if err != nil {
		return nil, &DecodeError{Reason: ReasonBadCompression, Field: field, Offset: -1, Err: err}
	}
	if len(out) != int(declared) {
		return nil, decodeErr(ReasonBadCompression, field, -1, "decompressed %d bytes, header declares %d", len(out), declared)
	}
	return out, nil
}

// bodyReader reads the v1 body; the first error sticks and later reads
// return zero values, so parseBody checks once per section.
type bodyReader struct {
	b     []byte
	off   int
	text  string   // b as a string, for readers of inline strings (v2 meta)
	spans []span   // the string table, as offsets into b
	table []string // the string table materialized (packages only)
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

// lookup returns a scan-level string: validated and copied on its own, so
// the table need not be materialized for a scan whose packages are skipped.
func (r *bodyReader) lookup(ref uint64) string {
	if r.err != nil || ref == 0 {
		return ""
	}
	if ref > uint64(len(r.spans)) {
		r.fail(ReasonMalformed, "string reference %d beyond the table of %d", ref, len(r.spans))
		return ""
	}
	sp := r.spans[ref-1]
	b := r.b[sp.off : sp.off+sp.len]
	if !utf8.Valid(b) {
		r.fail(ReasonMalformed, "string %d is not valid UTF-8", ref-1)
		return ""
	}
	return string(b)
}

// tableLookup returns a string of the materialized table.
func (r *bodyReader) tableLookup(ref uint64) string {
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

// indexTable reads a string table (uvarint n, n strings) into d.spans,
// offsets only: nothing is validated or copied yet.
func (d *Decoder) indexTable(r *bodyReader) error {
	body := r.b
	n := r.count("strings", MaxBodySize)
	if r.err != nil {
		return r.err
	}
	spans := d.spans[:0]
	r.field = "strings"
	for i := range n {
		var l uint64
		if r.off < len(body) && body[r.off] < 0x80 { // most strings are short: inline
			l = uint64(body[r.off])
			r.off++
		} else if l = r.uvarint(); r.err != nil {
			return r.err
		}
		if l > uint64(len(body)-r.off) {
			r.fail(ReasonTruncated, "string %d of %d bytes but only %d left", i, l, len(body)-r.off)
			return r.err
		}
		spans = append(spans, span{off: uint32(r.off), len: uint32(l)})
		r.off += int(l)
	}
	d.spans = spans
	r.spans = spans

	return nil
}

// scanFields reads the scan-level fields, in wire order (the same in v1 and
// v2; only how a string is written differs: str and strList).
func (r *bodyReader) scanFields(str func(string) string, strList func(string, int) []string) *Scan {
	s := &Scan{}
	s.HostID = str("host_id")
	s.ScanID = str("scan_id")
	r.field = "scanned_at"
	sec, nsec := r.varint(), r.uvarint()
	if r.err == nil && nsec >= 1e9 {
		r.fail(ReasonMalformed, "nanoseconds %d out of range", nsec)
	}
	s.ScannedAt = time.Unix(sec, int64(nsec)).UTC()
	s.Hostname = str("hostname")
	s.OS.ID = str("os.id")
	s.OS.VersionID = str("os.version_id")
	s.OS.PrettyName = str("os.pretty_name")
	s.OS.Ecosystem = str("os.ecosystem")
	s.KernelRunning = str("kernel_running")
	s.KernelsInstalled = strList("kernels_installed", MaxListLen)
	s.Meta.Owner = str("meta.owner")
	s.Meta.Ring = str("meta.ring")
	r.field = "meta.criticality"
	s.Meta.Criticality = r.byte()
	r.field = "flags"
	flags := r.byte()
	if r.err == nil && flags&^3 != 0 {
		r.fail(ReasonMalformed, "unknown scan flag bits %#02x", flags&^3)
	}
	s.Meta.InternetFacing = flags&1 != 0
	s.Heartbeat = flags&2 != 0
	s.Meta.Tags = strList("meta.tags", MaxListLen)
	s.Meta.MaintenanceWindow = str("meta.maintenance_window")
	s.InventoryHash = str("inventory_hash")
	s.Warnings = strList("warnings", MaxListLen)
	return s
}

// parseBody parses a decompressed v1 body. The string table is indexed
// first (offsets only); scan-level strings are validated and copied one by
// one, and the whole table is materialized only when the packages are.
func (d *Decoder) parseBody(body []byte, skip func(string) bool) (Decoded, error) {
	r := &bodyReader{b: body}
	if err := d.indexTable(r); err != nil {
		return Decoded{}, err
	}
	s := r.scanFields(r.str, r.strList)
	np := r.count("packages", MaxPackages)
	if r.err != nil {
		return Decoded{}, r.err
	}
	res := Decoded{Scan: s, PackageCount: np, Version: version1}
	if np > 0 && !s.Heartbeat && skip != nil && skip(s.InventoryHash) {
		res.PackagesSkipped = true
		r.checkPackageRefs(np)
	} else {
		// Without skipping, every table entry is checked, referenced or
		// not, as a v1 body requires.
		if err := d.materializeTable(r); err != nil {
			return Decoded{}, err
		}
		defer clear(d.table) // do not pin the last message's text in a pooled Decoder
		if np > 0 {
			s.Packages = r.packages(np)
		}
	}
	if r.err != nil {
		return Decoded{}, r.err
	}
	if r.off != len(body) {
		r.field = ""
		r.fail(ReasonMalformed, "%d trailing bytes after the last field", len(body)-r.off)
		return Decoded{}, r.err
	}
	return res, nil
}

// materializeTable turns the whole string table into strings sharing one
// allocation (a decoded scan costs one copy of its text), validating UTF-8.
func (d *Decoder) materializeTable(r *bodyReader) error {
	all := string(r.b)
	table := d.table[:0]
	for i, sp := range r.spans {
		str := all[sp.off : sp.off+sp.len]
		if !utf8.ValidString(str) {
			r.field = "strings"
			r.fail(ReasonMalformed, "string %d is not valid UTF-8", i)
			return r.err
		}
		table = append(table, str)
	}
	d.table = table
	r.table = table
	return nil
}

// packageColumns names the package columns in wire order, for errors.
var packageColumns = [numPackageColumns]string{"ecosystem", "name", "version", "arch", "source_name", "source_version", "purl", "location"}

// packages reads np packages, column by column, from the materialized table.
func (r *bodyReader) packages(np int) []Package {
	pkgs := make([]Package, np)
	for col, name := range packageColumns {
		r.field = "packages." + name
		var prev int64
		for i := range pkgs {
			ref := r.packageRef(&prev, i)
			if r.err != nil {
				return nil
			}
			v := r.tableLookup(uint64(ref))
			p := &pkgs[i]
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
	return pkgs
}

// checkPackageRefs walks the package columns without materializing them:
// the same structural checks as packages, plus the presence rules of
// Validate (ecosystem, name and version), so a message whose packages are
// skipped fails for the same structural reasons as one whose are not.
func (r *bodyReader) checkPackageRefs(np int) {
	// This loop is most of the cost of a skipped scan (eight references
	// per package), so one-byte varints, the usual delta, are read inline.
	size := int64(len(r.spans))
	b := r.b
	for col, name := range packageColumns {
		r.field = "packages." + name
		var prev int64
		for i := range np {
			var ref int64
			if r.off < len(b) && b[r.off] < 0x80 {
				x := b[r.off]
				ref = prev + (int64(x>>1) ^ -int64(x&1)) // zigzag
				r.off++
				if ref < 0 {
					r.fail(ReasonMalformed, "negative string reference %d for package %d", ref, i)
					return
				}
				prev = ref
			} else if ref = r.packageRef(&prev, i); r.err != nil {
				return
			}
			if ref > size {
				r.fail(ReasonMalformed, "string reference %d beyond the table of %d", ref, size)
				return
			}
			if ref == 0 && col <= 2 {
				r.err = invalid(fmt.Sprintf("packages[%d].%s", i, name), "package %d has no %s", i, name)
				return
			}
		}
	}
}

// packageRef reads the next delta-coded reference of a package column.
func (r *bodyReader) packageRef(prev *int64, i int) int64 {
	ref := *prev + r.varint()
	if r.err != nil {
		return 0
	}
	if ref < 0 {
		r.fail(ReasonMalformed, "negative string reference %d for package %d", ref, i)
		return 0
	}
	*prev = ref
	return ref
}
