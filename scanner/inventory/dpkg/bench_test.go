package dpkg_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	scaninv "github.com/patchgrid/patchgrid/scanner/inventory"
	"github.com/patchgrid/patchgrid/scanner/inventory/dpkg"
	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

const hostB = "debian12-bookworm-host-b.status"

// BenchmarkExtract reads the 745-package Debian 12 status file of the
// shared corpus (the agent's hot path; bench step scanner: compares it with
// reading the file).
func BenchmarkExtract(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(testenv.SharedData(b), "inventories", "dpkg", hostB))
	if err != nil {
		b.Fatal(err)
	}
	d := extract.Distro{ID: "debian", VersionID: "12", Ecosystem: "Debian:12"}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := dpkg.Extractor{}.Extract(context.Background(), &extract.Input{Path: "/var/lib/dpkg/status", Reader: bytes.NewReader(data), Distro: d})
		if err != nil || len(res.Packages) != 745 {
			b.Fatalf("%d packages, err %v", len(res.Packages), err)
		}
	}
}

// BenchmarkReadFile is what the bench step scanner:dpkg/<file> times: a
// whole inventory file read, its OS found, its packages labelled.
func BenchmarkReadFile(b *testing.B) {
	path := filepath.Join(testenv.SharedData(b), "inventories", "dpkg", hostB)
	b.ReportAllocs()
	for b.Loop() {
		f, err := scaninv.ReadFile(context.Background(), path)
		if err != nil || len(f.Packages) != 745 {
			b.Fatalf("%d packages, err %v", len(f.Packages), err)
		}
	}
}
