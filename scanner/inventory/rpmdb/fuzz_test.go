package rpmdb

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
)

// maxFuzzDB bounds a fuzzed database: large enough for an NDB slot page
// with a package blob, small enough to keep each execution (and the
// minimising of new inputs) short.
const maxFuzzDB = 32 << 10

// fuzzDeadline is each input's context deadline; fuzzHang is when an
// input that has not returned counts as hung.
const (
	fuzzDeadline = 5 * time.Second
	fuzzHang     = 20 * time.Second
)

// FuzzExtract: an rpm database is a file from a scanned machine or image,
// read by go-rpmdb from a path, so each input is written to a temporary
// file. Whatever the bytes (sqlite, NDB, Berkeley DB or none of them), the
// extractor returns within its deadline, without panicking, and either
// fails naming the file with no packages, or returns only packages with a
// name and a version and no signing keys.
func FuzzExtract(f *testing.F) {
	dir := testdataDir(f)
	blob, err := os.ReadFile(filepath.Join(dir, "blob.bin")) // one package's rpm header
	if err != nil {
		f.Fatal(err)
	}
	// The built seeds must reach the package path, not only the errors.
	for name, seed := range map[string][]byte{"sqlite": sqliteSeed(f, blob), "ndb": ndbSeed(blob)} {
		file := filepath.Join(f.TempDir(), name)
		if err := os.WriteFile(file, seed, 0o600); err != nil {
			f.Fatal(err)
		}
		res, err := Extractor{}.Extract(context.Background(), &extract.Input{Path: file, File: file})
		if err != nil || len(res.Packages) != 1 {
			f.Fatalf("%s seed: %d packages, %v; want the one of blob.bin", name, len(res.Packages), err)
		}
		f.Add(seed)
	}
	// The smallest real Berkeley DB (94 KB) cut to its first four pages
	// (metadata and hash pages): whole, every new input found from it
	// would take the fuzzer a minute to minimise.
	if bdb, err := os.ReadFile(filepath.Join(dir, "libuuid", "Packages")); err == nil {
		f.Add(bdb[:min(len(bdb), 4*4096)])
	}
	f.Add(blob)
	f.Add([]byte("SQLite format 3\x00"))
	f.Add(ndbSeed(nil))

	var execs int
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxFuzzDB {
			return
		}
		// go-rpmdb's Open leaves the file of a database it refuses (every
		// non-NDB input passes through ndb.Open) to the garbage collector's
		// finalizer; a scan opens a few databases, the fuzzer thousands a
		// minute with little garbage, and ran out of descriptors.
		if execs++; execs%256 == 0 {
			runtime.GC()
		}
		file := filepath.Join(t.TempDir(), "Packages")
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), fuzzDeadline)
		defer cancel()
		in := &extract.Input{Path: "/var/lib/rpm/Packages", File: file,
			Distro: extract.Distro{ID: "rhel", VersionID: "9.5", Ecosystem: "Red Hat:enterprise_linux:9"}}
		// The deadline must hold even when the reader never checks it: a
		// scan that hangs on one corrupt database never finishes.
		type result struct {
			res extract.Result
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := Extractor{}.Extract(ctx, in)
			done <- result{res, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(fuzzHang):
			t.Fatalf("Extract still running %s after its %s deadline (%d bytes, starting %q)", fuzzHang-fuzzDeadline, fuzzDeadline, len(b), b[:min(len(b), 16)])
		}
		res, err := r.res, r.err
		if err != nil {
			if len(res.Packages) != 0 || !strings.Contains(err.Error(), in.Path) {
				t.Fatalf("error %v with %d packages; want an error naming %s and no packages", err, len(res.Packages), in.Path)
			}
			return
		}
		for _, p := range res.Packages {
			if p.Name == "" || p.Version == "" || p.Name == "gpg-pubkey" || p.Location != in.Path {
				t.Fatalf("package %+v kept", p)
			}
		}
	})
}

// sqliteSeed is an rpmdb.sqlite (the layout rpm 4.16+ writes) holding one
// package header.
func sqliteSeed(f *testing.F, blob []byte) []byte {
	file := filepath.Join(f.TempDir(), "rpmdb.sqlite")
	db, err := sql.Open("sqlite", file)
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		"CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)",
		"INSERT INTO Packages (blob) VALUES (?)",
	} {
		var args []any
		if strings.HasPrefix(stmt, "INSERT") {
			args = append(args, blob)
		}
		if _, err := db.Exec(stmt, args...); err != nil {
			f.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// ndbSeed is an NDB Packages.db (rpm's "new database", SUSE) with one slot
// page and, unless blob is nil, one package in the first slot; the layout
// follows go-rpmdb's pkg/ndb (rpm's lib/backend/ndb/rpmpkg.c).
func ndbSeed(blob []byte) []byte {
	const page, blk = 4096, 16
	le := binary.LittleEndian
	var b bytes.Buffer
	u32 := func(v ...uint32) {
		for _, x := range v {
			binary.Write(&b, le, x)
		}
	}
	u32('R'|'p'<<8|'m'<<16|'P'<<24, 0, 1, 1, 0, 0, 0, 0) // header: magic, version, generation, one slot page
	const slotMagic = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	for i := 0; i < page/16-2; i++ {
		if i == 0 && blob != nil {
			u32(slotMagic, 1, page/blk, uint32(1+(len(blob)+blk-1)/blk))
		} else {
			u32(slotMagic, 0, 0, 0)
		}
	}
	if blob != nil {
		u32('B'|'l'<<8|'b'<<16|'S'<<24, 1, 0, uint32(len(blob)))
		b.Write(blob)
	}
	return b.Bytes()
}
