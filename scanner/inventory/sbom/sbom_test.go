package sbom

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/scanner/inventory/internal/golden"
	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestSharedSBOMs(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "inventories", "sbom")
	for _, tc := range []struct {
		file, format string
		want         int
		ecosystems   map[string]int
		golden       bool
		os           string // the OS ecosystem the document's metadata names
	}{
		{"osv-scanner-alpine.cdx.xml", "cyclonedx-xml", 14, map[string]int{"Alpine:v3.17": 14}, true, "Alpine:v3.17"},
		{"osv-scanner-postgres-stretch.cdx.xml", "cyclonedx-xml", 135, map[string]int{"Debian:9": 132, "Go": 3}, false, "Debian:9"},
		{"trivy-fluentd-multiple-lockfiles.cdx.json", "cyclonedx-json", 160, map[string]int{"Debian:10": 105, "RubyGems": 55}, true, "Debian:10"},
		{"claircore-ubi_latest.spdx.json.gz", "spdx-json", 1525, map[string]int{"Red Hat:enterprise_linux:9": 1507, "PyPI": 18}, false, ""},
		{"claircore-konflux-syft+hermeto.spdx.json.gz", "spdx-json", 1529, map[string]int{"Red Hat:enterprise_linux:9": 1511, "PyPI": 18}, false, ""},
		{"claircore-ubi8-micro.spdx.json", "spdx-json", 0, map[string]int{}, false, ""},
		// The purls carry no distro qualifier; syft's "distro" names Alpine 3.14.2.
		{"syft-alpine.syft.json", "syft-json", 14, map[string]int{"Alpine:v3.14": 14}, false, "Alpine:v3.14"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := Extractor{}.Extract(context.Background(), &extract.Input{Path: tc.file, Reader: f})
			if err != nil {
				t.Fatal(err)
			}
			gotOS := ""
			if res.OS != nil {
				gotOS = res.OS.Ecosystem
			}
			if gotOS != tc.os {
				t.Errorf("document OS %q, want %q", gotOS, tc.os)
			}
			got := map[string]int{}
			for _, p := range res.Packages {
				got[p.Ecosystem]++
			}
			if len(res.Packages) != tc.want || len(got) != len(tc.ecosystems) {
				t.Fatalf("got %d packages %v, want %d %v (warnings %q)", len(res.Packages), got, tc.want, tc.ecosystems, res.Warnings)
			}
			for e, n := range tc.ecosystems {
				if got[e] != n {
					t.Errorf("ecosystem %s: %d packages, want %d", e, got[e], n)
				}
			}
			if tc.golden {
				golden.JSON(t, tc.file+".golden.json", res.Packages)
			}
		})
	}
}

func TestFromPURL(t *testing.T) {
	for purl, want := range map[string]inventory.Package{
		"pkg:golang/golang.org/x/text@v0.3.6":                         {Ecosystem: "Go", Name: "golang.org/x/text", Version: "0.3.6"},
		"pkg:npm/%40babel/core@7.1.0":                                 {Ecosystem: "npm", Name: "@babel/core", Version: "7.1.0"},
		"pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.1": {Ecosystem: "Maven", Name: "com.fasterxml.jackson.core:jackson-databind", Version: "2.9.1"},
		"pkg:pypi/werkzeug@0.11":                                      {Ecosystem: "PyPI", Name: "werkzeug", Version: "0.11"},
		"pkg:composer/guzzlehttp/guzzle@7.4.0":                        {Ecosystem: "Packagist", Name: "guzzlehttp/guzzle", Version: "7.4.0"},
		"pkg:cargo/smallvec@1.6.0":                                    {Ecosystem: "crates.io", Name: "smallvec", Version: "1.6.0"},
		"pkg:nuget/Newtonsoft.Json@12.0.1":                            {Ecosystem: "NuGet", Name: "Newtonsoft.Json", Version: "12.0.1"},
		"pkg:gem/rack@2.0.1":                                          {Ecosystem: "RubyGems", Name: "rack", Version: "2.0.1"},
		"pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&distro=debian-12&upstream=openssl": {Ecosystem: "Debian:12", Name: "libssl3",
			Version: "3.0.15-1~deb12u1", Arch: "amd64", SourceName: "openssl", SourceVersion: "3.0.15-1~deb12u1"},
		"pkg:deb/ubuntu/libc6@2.35-0ubuntu3?distro=ubuntu-22.04&upstream=glibc%402.35-0ubuntu3": {Ecosystem: "Ubuntu:22.04:LTS", Name: "libc6",
			Version: "2.35-0ubuntu3", SourceName: "glibc", SourceVersion: "2.35-0ubuntu3"},
		"pkg:apk/alpine/libcrypto3@3.1.0-r4?arch=x86_64&distro=alpine-3.18.4&upstream=openssl": {Ecosystem: "Alpine:v3.18", Name: "libcrypto3",
			Version: "3.1.0-r4", Arch: "x86_64", SourceName: "openssl", SourceVersion: "3.1.0-r4"},
		"pkg:rpm/redhat/bind-libs@9.16.23-24.el9_5?arch=x86_64&epoch=32&distro=rhel-9.5&upstream=bind-9.16.23-24.el9_5.src.rpm": {
			Ecosystem: "Red Hat:enterprise_linux:9", Name: "bind-libs", Version: "32:9.16.23-24.el9_5", Arch: "x86_64", SourceName: "bind", SourceVersion: "32:9.16.23-24.el9_5"},
	} {
		got, err := FromPURL(purl, extract.Distro{})
		want.PURL = purl
		if err != nil || got != want {
			t.Errorf("FromPURL(%s)\n got %+v, %v\nwant %+v", purl, got, err, want)
		}
	}
	for _, bad := range []string{"", "pkg:", "pkg:deb/debian/x", "pkg:oci/x@sha256:1", "notapurl"} {
		if p, err := FromPURL(bad, extract.Distro{}); err == nil {
			t.Errorf("FromPURL(%q) = %+v, want error", bad, p)
		}
	}
}

func TestNotAnSBOM(t *testing.T) {
	for _, in := range []string{"", "{}", "<html/>", "Package: x\n", `{"bomFormat": "CycloneDX", "components": [`} {
		if _, err := (Extractor{}).Extract(context.Background(), &extract.Input{Path: "x", Reader: strings.NewReader(in)}); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func FuzzExtract(f *testing.F) {
	f.Add([]byte(`{"bomFormat":"CycloneDX","components":[{"purl":"pkg:npm/a@1","components":[{"purl":"pkg:deb/debian/b@1?distro=debian-12"}]}]}`))
	f.Add([]byte(`{"spdxVersion":"SPDX-2.3","packages":[{"externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:rpm/redhat/a@1-1?epoch=2"}]}]}`))
	f.Add([]byte(`<bom xmlns="http://cyclonedx.org/schema/bom/1.4"><components><component><purl>pkg:apk/alpine/a@1-r0</purl></component></components></bom>`))
	if data, err := os.ReadFile(filepath.Join(testenv.SharedData(f), "inventories/sbom/osv-scanner-alpine.cdx.xml")); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, _ := Extractor{}.Extract(context.Background(), &extract.Input{Path: "x", Reader: bytes.NewReader(data)})
		for _, p := range res.Packages {
			if p.Ecosystem == "" || p.Name == "" || p.Version == "" {
				t.Fatalf("package with empty identity: %+v", p)
			}
		}
	})
}
