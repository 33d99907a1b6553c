package rpmdb

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// NDB layout (rpm's lib/backend/ndb/rpmpkg.c), as go-rpmdb reads it: a
// 32-byte header, then SlotNPages pages of 16-byte slots (the header takes
// the first two), each slot pointing at a blob of 16-byte blocks that
// starts with a 16-byte blob header carrying the blob's length.
const (
	ndbHeaderMagic = 'R' | 'p'<<8 | 'm'<<16 | 'P'<<24
	ndbSlotMagic   = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	ndbBlockSize   = 16
	ndbMaxPages    = 2048 // go-rpmdb's own bound
)

// checkNDB vets an NDB database before go-rpmdb reads it, because the
// library trusts the file: it allocates each blob's declared length before
// reading it (a 9 KB file declaring a 4 GB blob reserves 4 GB of heap), and
// it prints "bad slot magic" to standard output, which would corrupt a
// scan's JSON or SARIF output. A file that is not NDB passes unchecked (the
// library tries sqlite and Berkeley DB, which read bounded pages).
func checkNDB(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	var hdr [8]uint32
	if err := binary.Read(f, binary.LittleEndian, &hdr); err != nil || hdr[0] != ndbHeaderMagic {
		return nil // not NDB (or too short to be): the library decides
	}
	pages := hdr[3]
	if pages == 0 || pages > ndbMaxPages {
		return fmt.Errorf("ndb: %d slot pages (want 1..%d)", pages, ndbMaxPages)
	}
	nslots := int64(pages)*4096/ndbBlockSize - 2
	if 32+nslots*ndbBlockSize > size {
		return fmt.Errorf("ndb: %d slot pages need %d bytes, the file has %d (truncated)", pages, 32+nslots*ndbBlockSize, size)
	}
	slots := make([]uint32, nslots*4)
	if err := binary.Read(f, binary.LittleEndian, slots); err != nil {
		return fmt.Errorf("ndb: read slots: %w", err)
	}
	var blob [4]uint32
	for i := int64(0); i < nslots; i++ {
		magic, pkg, blk := slots[4*i], slots[4*i+1], slots[4*i+2]
		if magic != ndbSlotMagic {
			return fmt.Errorf("ndb: slot %d: bad magic %#x", i, magic)
		}
		if pkg == 0 {
			continue
		}
		off := int64(blk) * ndbBlockSize
		if off+ndbBlockSize > size {
			return fmt.Errorf("ndb: package %d: blob at offset %d is past the end of the file (%d bytes)", pkg, off, size)
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return fmt.Errorf("ndb: package %d: %w", pkg, err)
		}
		if err := binary.Read(f, binary.LittleEndian, &blob); err != nil {
			return fmt.Errorf("ndb: package %d: blob header: %w", pkg, err)
		}
		if n := int64(blob[3]); n > size-off-ndbBlockSize {
			return fmt.Errorf("ndb: package %d: blob declares %d bytes, only %d remain in the file", pkg, n, size-off-ndbBlockSize)
		}
	}
	return nil
}
