package rpmdb

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
)

// Hostile NDB databases are refused before go-rpmdb reads them: no blob is
// allocated at its declared size, and nothing reaches standard output.
func TestHostileNDB(t *testing.T) {
	blob, err := os.ReadFile(filepath.Join(testdataDir(t), "blob.bin"))
	if err != nil {
		t.Fatal(err)
	}
	good := ndbSeed(blob)
	le := binary.LittleEndian
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	const slot0, blobHdr = 32, 4096
	for _, tc := range []struct {
		name, want string
		db         []byte
	}{
		{"huge blob length", "blob declares 4294967295 bytes", edit(func(b []byte) []byte { le.PutUint32(b[blobHdr+12:], 0xffffffff); return b })},
		{"bad slot magic", "slot 3: bad magic 0x0", edit(func(b []byte) []byte { le.PutUint32(b[slot0+3*16:], 0); return b })},
		{"blob past the end", "past the end of the file", edit(func(b []byte) []byte { le.PutUint32(b[slot0+8:], 1<<20); return b })},
		{"truncated slot pages", "truncated", good[:2000]},
		{"too many slot pages", "slot pages (want 1..2048)", edit(func(b []byte) []byte { le.PutUint32(b[12:], 4096); return b })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "Packages.db")
			if err := os.WriteFile(file, tc.db, 0o600); err != nil {
				t.Fatal(err)
			}
			stdout := captureStdout(t, func() {
				res, err := Extractor{}.Extract(context.Background(), &extract.Input{Path: "var/lib/rpm/Packages.db", File: file})
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "var/lib/rpm/Packages.db") || len(res.Packages) != 0 {
					t.Errorf("got %d packages, %v; want an error naming the file and %q", len(res.Packages), err, tc.want)
				}
			})
			if stdout != "" {
				t.Errorf("wrote to stdout: %q", stdout)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		if err := checkNDB(writeTemp(t, good)); err != nil {
			t.Errorf("valid NDB refused: %v", err)
		}
	})
}

func writeTemp(t *testing.T, b []byte) string {
	file := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// captureStdout runs f with os.Stdout sent to a pipe, and returns what f
// wrote there.
func captureStdout(t *testing.T, f func()) string {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() { os.Stdout = saved }()
	f()
	w.Close()
	os.Stdout = saved
	return <-done
}
