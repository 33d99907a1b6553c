package apk

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/scanner/inventory/internal/golden"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestExtractShared(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "inventories", "apk")
	for _, tc := range []struct {
		file     string
		distro   extract.Distro
		want     int
		warnings int
	}{
		{"scalibr-alpine3.18.installed", extract.Distro{ID: "alpine", VersionID: "3.18.4", Ecosystem: "Alpine:v3.18"}, 15, 0},
		{"syft-alpine3.16.installed", extract.Distro{ID: "alpine", VersionID: "3.16.2", Ecosystem: "Alpine:v3.16"}, 14, 0},
		// trivy's file holds a synthetic record without a version.
		{"trivy-alpine.installed", extract.Distro{ID: "alpine", VersionID: "3.4.6", Ecosystem: "Alpine:v3.4"}, 15, 1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := Extractor{}.Extract(context.Background(), &extract.Input{Path: "/lib/apk/db/installed", Reader: f, Distro: tc.distro})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) != tc.want || len(res.Warnings) != tc.warnings {
				t.Fatalf("got %d packages, warnings %q; want %d packages, %d warnings", len(res.Packages), res.Warnings, tc.want, tc.warnings)
			}
			golden.JSON(t, strings.TrimSuffix(tc.file, ".installed")+".golden.json", res.Packages)
		})
	}
}

func TestOriginIsSource(t *testing.T) {
	res, err := Extractor{}.Extract(context.Background(), &extract.Input{Path: "db", Reader: strings.NewReader("P:libcrypto3\r\nV:3.1.0-r4\nA:x86_64\no:openssl\n\nP:zlib\nV:1.2.13-r1\n"),
		Distro: extract.Distro{ID: "alpine", VersionID: "3.18.4", Ecosystem: "Alpine:v3.18"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) != 2 {
		t.Fatalf("%+v", res.Packages)
	}
	p := res.Packages[0]
	if p.SourceName != "openssl" || p.SourceVersion != "3.1.0-r4" || p.MatchName() != "openssl" ||
		p.PURL != "pkg:apk/alpine/libcrypto3@3.1.0-r4?arch=x86_64&distro=3.18.4&upstream=openssl" {
		t.Errorf("%+v", p)
	}
	if z := res.Packages[1]; z.SourceName != "zlib" || z.Arch != "" {
		t.Errorf("%+v", z)
	}
}

func FuzzExtract(f *testing.F) {
	f.Add([]byte("P:a\nV:1-r0\no:b\n\nP:c\n\nx\n:\n"))
	if data, err := os.ReadFile(filepath.Join(testenv.SharedData(f), "inventories/apk/trivy-alpine.installed")); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, _ := Extractor{}.Extract(context.Background(), &extract.Input{Path: "db", Reader: bytes.NewReader(data)})
		for _, p := range res.Packages {
			if p.Name == "" || p.Version == "" || p.SourceName == "" {
				t.Fatalf("package with empty identity: %+v", p)
			}
		}
	})
}
