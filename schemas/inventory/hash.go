package inventory

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
)

// HashPackages returns the content hash of a package list: lower-case hex
// SHA-256, independent of the list's order (duplicates count).
//
// Each package becomes one canonical record: its eight fields in the order
// Ecosystem, Name, Version, Arch, SourceName, SourceVersion, PURL, Location,
// each written as uvarint(len) followed by the bytes. The records are sorted
// bytewise and hashed in that order, each preceded by uvarint(record len).
// Length prefixes (not separators) keep "a\tb"+"c" and "a"+"b\tc" apart.
// Location is part of the hash because hosts that share a hash share one
// stored copy of the rows, Location included.
func HashPackages(pkgs []Package) string {
	var hs hashScratch
	return hs.hash(pkgs)
}

// hashScratch keeps HashPackages' buffers for reuse by Encoder and Decoder.
type hashScratch struct {
	recs  [][]byte
	arena []byte
}

func (hs *hashScratch) hash(pkgs []Package) string {
	total := 0
	for i := range pkgs {
		total += canonicalLen(&pkgs[i])
	}
	if cap(hs.arena) < total {
		hs.arena = make([]byte, 0, total)
	}
	if cap(hs.recs) < len(pkgs) {
		hs.recs = make([][]byte, 0, len(pkgs))
	}
	arena := hs.arena[:0]
	recs := hs.recs[:0]
	for i := range pkgs {
		start := len(arena)
		arena = appendCanonical(arena, &pkgs[i])
		recs = append(recs, arena[start:len(arena):len(arena)])
	}
	hs.recs, hs.arena = recs, arena
	slices.SortFunc(recs, bytes.Compare)
	h := sha256.New()
	var lenBuf [binary.MaxVarintLen64]byte
	for _, r := range recs {
		n := binary.PutUvarint(lenBuf[:], uint64(len(r)))
		h.Write(lenBuf[:n])
		h.Write(r)
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

func packageFields(p *Package) [8]string {
	return [8]string{p.Ecosystem, p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.PURL, p.Location}
}

func canonicalLen(p *Package) int {
	n := 0
	for _, f := range packageFields(p) {
		n += uvarintLen(uint64(len(f))) + len(f)
	}
	return n
}

func appendCanonical(b []byte, p *Package) []byte {
	for _, f := range packageFields(p) {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
