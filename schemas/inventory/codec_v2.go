package inventory

import (
	"encoding/binary"
	"fmt"
	"sync"
	"unicode/utf8"
)

// Schema v2 (README.md, "Message schema v2") splits a scan in two: the
// scan-level fields, uncompressed, then the package list as a section of
// its own (string table and columns, as in v1), compressed on its own.
// The split is what makes package sets cheap to repeat: a consumer that
// already stored a set skips its section without decompressing it, and a
// producer sending one set for many hosts compresses it once
// (SectionCache). v1 compressed both together, so every message cost a
// full decompression, and every encode a full compression.

// minPackageBytes is the smallest raw section space one package takes:
// eight one-byte references. It bounds a declared package count by the
// declared section length before anything is allocated.
const minPackageBytes = numPackageColumns

// SectionCache holds compressed v2 package sections by inventory hash, up
// to a byte budget; once full it keeps what it has and encodes the rest
// afresh. A hash names one package multiset (HashPackages), so any list
// with that hash may be sent as the cached section. Safe for concurrent
// use.
type SectionCache struct {
	mu       sync.Mutex
	maxBytes int
	bytes    int
	sections map[string][]byte
}

// NewSectionCache returns a cache of at most maxBytes of sections.
func NewSectionCache(maxBytes int) *SectionCache {
	return &SectionCache{maxBytes: maxBytes, sections: map[string][]byte{}}
}

func (c *SectionCache) get(hash string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.sections[hash]
	return b, ok
}

func (c *SectionCache) put(hash string, section []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.sections[hash]; ok || c.bytes+len(section) > c.maxBytes {
		return
	}
	c.sections[hash] = section
	c.bytes += len(section)
}

// appendV2 writes s in the v2 layout; hash is the (verified or trusted)
// inventory hash.
func (e *Encoder) appendV2(dst []byte, s *Scan, hash string) ([]byte, error) {
	fail := func(err error) ([]byte, error) {
		return dst, fmt.Errorf("encode scan %s of host %s: %w", s.ScanID, s.HostID, err)
	}
	m := e.meta[:0]
	var bad string
	str := func(v string) {
		if bad == "" && !utf8.ValidString(v) {
			bad = v
		}
		m = binary.AppendUvarint(m, uint64(len(v)))
		m = append(m, v...)
	}
	list := func(vs []string) {
		m = binary.AppendUvarint(m, uint64(len(vs)))
		for _, v := range vs {
			str(v)
		}
	}
	str(s.HostID)
	str(s.ScanID)
	m = binary.AppendVarint(m, s.ScannedAt.Unix())
	m = binary.AppendUvarint(m, uint64(s.ScannedAt.Nanosecond()))
	str(s.Hostname)
	str(s.OS.ID)
	str(s.OS.VersionID)
	str(s.OS.PrettyName)
	str(s.OS.Ecosystem)
	str(s.KernelRunning)
	list(s.KernelsInstalled)
	str(s.Meta.Owner)
	str(s.Meta.Ring)
	var flags byte
	if s.Meta.InternetFacing {
		flags |= 1
	}
	if s.Heartbeat {
		flags |= 2
	}
	m = append(m, s.Meta.Criticality, flags)
	list(s.Meta.Tags)
	str(s.Meta.MaintenanceWindow)
	str(hash)
	list(s.Warnings)
	m = binary.AppendUvarint(m, uint64(len(s.Packages)))
	e.meta = m
	if bad != "" {
		return fail(decodeErr(ReasonMalformed, "meta", -1, "invalid UTF-8 in %q", bad))
	}
	if len(m) > MaxBodySize {
		return fail(decodeErr(ReasonTooLarge, "meta", -1, "%d bytes exceeds %d", len(m), MaxBodySize))
	}
	var section []byte
	if len(s.Packages) > 0 {
		var ok bool
		if e.Sections != nil {
			section, ok = e.Sections.get(hash)
		}
		if !ok {
			// A section that goes into the cache must be its own slice;
			// otherwise the Encoder's scratch buffer serves.
			var buf []byte
			if e.Sections == nil {
				buf = e.section[:0]
			}
			var err error
			if section, err = e.packageSection(buf, s.Packages); err != nil {
				return fail(err)
			}
			if e.Sections != nil {
				e.Sections.put(hash, section)
			} else {
				e.section = section
			}
		}
	}
	dst = append(dst, Magic...)
	dst = append(dst, SchemaVersion, flagZstd)
	dst = binary.AppendUvarint(dst, uint64(len(m)))
	dst = append(dst, m...)
	return append(dst, section...), nil
}

// packageSection appends to dst the package part of a v2 message:
// uvarint(raw length), then the zstd frame of the raw section (its own
// string table, then the eight columns of delta references, as in v1).
func (e *Encoder) packageSection(dst []byte, pkgs []Package) ([]byte, error) {
	e.reset()
	for col := 0; col < numPackageColumns; col++ {
		for i := range pkgs {
			e.refs = append(e.refs, e.ref(packageFields(&pkgs[i])[col]))
		}
	}
	for i, str := range e.strs {
		if !utf8.ValidString(str) {
			return nil, decodeErr(ReasonMalformed, fmt.Sprintf("packages.strings[%d]", i), -1, "invalid UTF-8 in %q", str)
		}
	}
	b := e.body
	b = binary.AppendUvarint(b, uint64(len(e.strs)))
	for _, str := range e.strs {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	refs := e.refs
	for col := 0; col < numPackageColumns; col++ {
		var prev int64
		for _, r := range refs[:len(pkgs)] {
			b = binary.AppendVarint(b, int64(r)-prev)
			prev = int64(r)
		}
		refs = refs[len(pkgs):]
	}
	e.body = b
	if len(b) > MaxBodySize {
		return nil, decodeErr(ReasonTooLarge, "packages", -1, "section of %d bytes exceeds %d", len(b), MaxBodySize)
	}
	if dst == nil {
		dst = make([]byte, 0, 16+len(b)/3)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return sharedZstdEncoder().EncodeAll(b, dst), nil
}

// decodeV2 decodes a v2 message whose header (magic, version, flags) is
// checked.
func (d *Decoder) decodeV2(msg []byte, flags byte, opt DecodeOptions) (Decoded, error) {
	off := len(Magic) + 2
	metaLen, n := binary.Uvarint(msg[off:])
	if n <= 0 {
		return Decoded{}, decodeErr(ReasonTruncated, "header.meta_len", off, "bad uvarint")
	}
	if metaLen > MaxBodySize {
		return Decoded{}, decodeErr(ReasonTooLarge, "header.meta_len", off, "declared %d bytes exceeds %d", metaLen, MaxBodySize)
	}
	off += n
	if metaLen > uint64(len(msg)-off) {
		return Decoded{}, decodeErr(ReasonTruncated, "meta", off, "%d bytes declared, %d left", metaLen, len(msg)-off)
	}
	r := &bodyReader{b: msg[off : off+int(metaLen)]}
	// One copy of the meta holds every scan-level string (substrings).
	r.text = string(r.b)
	s := r.scanFields(r.istr, r.istrList)
	r.field = "packages"
	np := r.uvarint()
	if r.err == nil && np > MaxPackages {
		r.fail(ReasonTooLarge, "count %d exceeds %d", np, MaxPackages)
	}
	if r.err == nil && r.off != len(r.b) {
		r.field = "meta"
		r.fail(ReasonMalformed, "%d trailing bytes after the last field", len(r.b)-r.off)
	}
	if r.err != nil {
		return Decoded{}, r.err
	}
	rest := msg[off+int(metaLen):]
	res := Decoded{Scan: s, PackageCount: int(np), Version: SchemaVersion}
	switch {
	case np == 0 && len(rest) > 0:
		return Decoded{}, decodeErr(ReasonMalformed, "packages", len(msg)-len(rest), "%d bytes after a scan without packages", len(rest))
	case np > 0 && s.Heartbeat:
		return Decoded{}, invalid("packages", "heartbeat carries %d packages", np)
	case np > 0 && len(rest) == 0:
		return Decoded{}, decodeErr(ReasonTruncated, "packages", len(msg), "%d packages declared, no section", np)
	}
	if err := s.Validate(); err != nil {
		return Decoded{}, err
	}
	if np == 0 {
		return res, nil
	}
	if opt.SkipPackages != nil && opt.SkipPackages(s.InventoryHash) {
		// The section is not even decompressed: nothing from it would be
		// used (see DecodeOptions.SkipPackages).
		res.PackagesSkipped = true
		return res, nil
	}
	rawLen, n := binary.Uvarint(rest)
	if n <= 0 {
		return Decoded{}, decodeErr(ReasonTruncated, "packages.len", len(msg)-len(rest), "bad uvarint")
	}
	if rawLen > MaxBodySize {
		return Decoded{}, decodeErr(ReasonTooLarge, "packages.len", len(msg)-len(rest), "declared %d bytes exceeds %d", rawLen, MaxBodySize)
	}
	if np*minPackageBytes > rawLen {
		return Decoded{}, decodeErr(ReasonMalformed, "packages", -1, "%d packages cannot fit in %d bytes", np, rawLen)
	}
	section, err := d.inflate(rest[n:], flags, rawLen, "packages")
	if err != nil {
		return Decoded{}, err
	}
	sr := &bodyReader{b: section}
	if err := d.indexTable(sr); err != nil {
		return Decoded{}, err
	}
	if err := d.materializeTable(sr); err != nil {
		return Decoded{}, err
	}
	defer clear(d.table) // do not pin the last message's text in a pooled Decoder
	s.Packages = sr.packages(int(np))
	if sr.err == nil && sr.off != len(section) {
		sr.field = "packages"
		sr.fail(ReasonMalformed, "%d trailing bytes after the last column", len(section)-sr.off)
	}
	if sr.err != nil {
		return Decoded{}, sr.err
	}
	if err := s.Validate(); err != nil {
		return Decoded{}, err
	}
	if got := d.hs.hash(s.Packages); got != s.InventoryHash {
		return Decoded{}, invalid("inventory_hash", "hash %s does not match the packages (%s)", s.InventoryHash, got)
	}
	return res, nil
}

// istr reads an inline string (uvarint length, bytes): the v2 scan fields,
// as substrings of r.text.
func (r *bodyReader) istr(field string) string {
	r.field = field
	l := r.uvarint()
	if r.err != nil {
		return ""
	}
	if l > uint64(len(r.b)-r.off) {
		r.fail(ReasonTruncated, "string of %d bytes but only %d left", l, len(r.b)-r.off)
		return ""
	}
	v := r.text[r.off : r.off+int(l)]
	if !utf8.ValidString(v) {
		r.fail(ReasonMalformed, "invalid UTF-8")
		return ""
	}
	r.off += int(l)
	return v
}

// istrList reads a list of inline strings.
func (r *bodyReader) istrList(field string, max int) []string {
	n := r.count(field, max)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.istr(field)
	}
	return out
}
