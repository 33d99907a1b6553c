package dpkg

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/scanner/inventory/internal/golden"
	"github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

var debian12 = extract.Distro{ID: "debian", VersionID: "12", Ecosystem: "Debian:12"}

func extractString(t *testing.T, s string) extract.Result {
	t.Helper()
	res, err := Extractor{}.Extract(context.Background(), &extract.Input{Path: "/var/lib/dpkg/status", Reader: strings.NewReader(s), Distro: debian12})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestExtractShared(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "inventories", "dpkg")
	for _, tc := range []struct {
		file   string
		distro extract.Distro
		want   int
		golden bool
	}{
		{"debian12-bookworm-host.status", debian12, 733, true},
		{"debian12-bookworm-host-b.status", debian12, 745, false},
		{"trivy-ubuntu1804.status", extract.Distro{ID: "ubuntu", VersionID: "18.04", Ecosystem: "Ubuntu:18.04:LTS"}, 90, true},
		{"claircore-texlive.status", extract.Distro{ID: "ubuntu", VersionID: "18.04", Ecosystem: "Ubuntu:18.04:LTS"}, 357, false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := Extractor{}.Extract(context.Background(), &extract.Input{Path: "/var/lib/dpkg/status", Reader: f, Distro: tc.distro})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) != tc.want || len(res.Warnings) != 0 {
				t.Fatalf("got %d packages, %d warnings (%v); want %d, none", len(res.Packages), len(res.Warnings), res.Warnings, tc.want)
			}
			if tc.golden {
				golden.JSON(t, strings.TrimSuffix(tc.file, ".status")+".golden.json", res.Packages)
			}
		})
	}
}

func TestSourceField(t *testing.T) {
	res := extractString(t, `Package: openssh-server
Status: install ok installed
Architecture: amd64
Source: openssh
Version: 1:9.2p1-2+deb12u5
Description: secure shell (SSH) server
 multi-line description
 .
 more

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14+deb12u1

Package: linux-image-6.1.0-18-amd64
Status: install ok installed
Architecture: amd64
Source: linux-signed-amd64 (6.1.76+1)
Version: 6.1.76-1

Package: removed
Status: deinstall ok config-files
Version: 1.0

Package: held
Status: hold ok installed
Version: 2.0
`)
	want := []inventory.Package{
		{Ecosystem: "Debian:12", Name: "openssh-server", Version: "1:9.2p1-2+deb12u5", Arch: "amd64", SourceName: "openssh", SourceVersion: "1:9.2p1-2+deb12u5",
			PURL: "pkg:deb/debian/openssh-server@1:9.2p1-2%2Bdeb12u5?arch=amd64&distro=debian-12&upstream=openssh", Location: "/var/lib/dpkg/status"},
		{Ecosystem: "Debian:12", Name: "libgcc-s1", Version: "12.2.0-14+deb12u1", Arch: "amd64", SourceName: "gcc-12", SourceVersion: "12.2.0-14",
			PURL: "pkg:deb/debian/libgcc-s1@12.2.0-14%2Bdeb12u1?arch=amd64&distro=debian-12&upstream=gcc-12", Location: "/var/lib/dpkg/status"},
		{Ecosystem: "Debian:12", Name: "linux-image-6.1.0-18-amd64", Version: "6.1.76-1", Arch: "amd64", SourceName: "linux", SourceVersion: "6.1.76-1",
			PURL: "pkg:deb/debian/linux-image-6.1.0-18-amd64@6.1.76-1?arch=amd64&distro=debian-12&upstream=linux", Location: "/var/lib/dpkg/status"},
		{Ecosystem: "Debian:12", Name: "held", Version: "2.0", SourceName: "held", SourceVersion: "2.0",
			PURL: "pkg:deb/debian/held@2.0?distro=debian-12", Location: "/var/lib/dpkg/status"},
	}
	if len(res.Packages) != len(want) {
		t.Fatalf("got %d packages %+v", len(res.Packages), res.Packages)
	}
	for i := range want {
		if res.Packages[i] != want[i] {
			t.Errorf("package %d:\n got %+v\nwant %+v", i, res.Packages[i], want[i])
		}
	}
}

func TestBrokenRecordsWarnAndKeepTheRest(t *testing.T) {
	res := extractString(t, `Package: nover
Status: install ok installed

garbage line without colon
Package: good
Status: install ok installed
Version: 1.0

Package: badstatus
Status: installed
Version: 1.0
`)
	if len(res.Packages) != 1 || res.Packages[0].Name != "good" {
		t.Fatalf("packages %+v", res.Packages)
	}
	if len(res.Warnings) != 3 {
		t.Fatalf("want 3 warnings, got %q", res.Warnings)
	}
	for _, w := range res.Warnings {
		if !strings.HasPrefix(w, "/var/lib/dpkg/status: line ") {
			t.Errorf("warning does not name file and line: %q", w)
		}
	}
}

func TestUnsignedKernelSource(t *testing.T) {
	for _, tc := range []struct {
		src, want string
		ok        bool
	}{
		{"linux-signed-amd64", "linux", true},
		{"linux-signed-arm64", "linux", true},
		{"linux-signed", "linux", true},
		{"linux-signed-hwe-6.5", "linux-hwe-6.5", true},
		{"linux", "", false},
		{"linux-signed-amd64-x", "linux-amd64-x", true},
		{"openssl", "", false},
	} {
		got, ok := unsignedKernelSource(tc.src)
		if got != tc.want || ok != tc.ok {
			t.Errorf("unsignedKernelSource(%q) = %q, %v; want %q, %v", tc.src, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFileRequired(t *testing.T) {
	for p, want := range map[string]bool{
		"var/lib/dpkg/status":                true,
		"var/lib/dpkg/status-old":            false,
		"var/lib/dpkg/status.d/base":         true,
		"var/lib/dpkg/status.d/base.md5sums": false,
		"var/lib/dpkg/available":             false,
	} {
		if got := (Extractor{}).FileRequired(p); got != want {
			t.Errorf("FileRequired(%q) = %v", p, got)
		}
	}
}

func FuzzExtract(f *testing.F) {
	f.Add([]byte("Package: a\nStatus: install ok installed\nVersion: 1\nSource: b (2)\n\n"))
	f.Add([]byte("Package: a\n continuation\n\n\n:x\nSource: (\n"))
	if data, err := os.ReadFile(filepath.Join(testenv.SharedData(f), "inventories/dpkg/trivy-ubuntu1804.status")); err == nil {
		f.Add(data[:min(len(data), 8192)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, _ := Extractor{}.Extract(context.Background(), &extract.Input{Path: "status", Reader: bytes.NewReader(data), Distro: debian12})
		for _, p := range res.Packages {
			if p.Name == "" || p.Version == "" || p.SourceName == "" || p.SourceVersion == "" {
				t.Fatalf("package with empty identity: %+v", p)
			}
		}
	})
}

// TestPURLMatchesLibrary holds the hand-written PURL to packageurl-go's
// canonical form: every package of the shared dpkg corpus under several
// distros, and names, versions and namespaces that need escaping.
func TestPURLMatchesLibrary(t *testing.T) {
	var pkgs []inventory.Package
	files, err := filepath.Glob(filepath.Join(testenv.SharedData(t), "inventories", "dpkg", "*.status"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dpkg status files in the corpus (%v)", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Extractor{}.Extract(context.Background(), &extract.Input{Path: "/var/lib/dpkg/status", Reader: bytes.NewReader(b)})
		if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, res.Packages...)
	}
	pkgs = append(pkgs,
		inventory.Package{Name: "g++-12", Version: "1:12.2.0-14+deb12u1", Arch: "amd64", SourceName: "gcc 12"},
		inventory.Package{Name: "päckage", Version: "1.0~rc1/2", Arch: "", SourceName: "päckage"},
		inventory.Package{Name: "x", Version: "", Arch: "arm64", SourceName: "a&b=c?d#e"},
		inventory.Package{Name: "", Version: "0", SourceName: ""},
	)
	distros := []extract.Distro{{}, {ID: "debian", VersionID: "12"}, {ID: "ubuntu", VersionID: "22.04"}, {Ecosystem: "Ubuntu:22.04:LTS"},
		{ID: "deb ian", VersionID: "1%2"}, {ID: "debian"}, {ID: "a/b", VersionID: "1"}, {ID: "a//b/", VersionID: "1"}}
	n := 0
	for _, d := range distros {
		for i := range pkgs {
			p := pkgs[i]
			p.Ecosystem = ecosystem(d)
			ns := d.ID
			if ns == "" {
				ns = strings.ToLower(strings.SplitN(p.Ecosystem, ":", 2)[0])
			}
			var distro, upstream string
			if d.ID != "" && d.VersionID != "" {
				distro = d.ID + "-" + d.VersionID
			}
			if p.SourceName != "" && p.SourceName != p.Name {
				upstream = p.SourceName
			}
			if got, want := PURL(d, &p), purlLibrary(ns, &p, distro, upstream); got != want {
				t.Errorf("PURL(%+v, %s %s %s) = %q, packageurl-go %q", d, p.Name, p.Version, p.Arch, got, want)
				if n++; n > 10 {
					t.Fatal("too many differences")
				}
			}
		}
	}
}

// TestRelabelEqualsExtractAgain: packages read without a distro and
// relabelled are those read with it (ReadFileWith relabels instead of
// reading the file twice).
func TestRelabelEqualsExtractAgain(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testenv.SharedData(t), "inventories", "dpkg", "*.status"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dpkg status files in the corpus (%v)", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		read := func(d extract.Distro) []inventory.Package {
			res, err := Extractor{}.Extract(context.Background(), &extract.Input{Path: "/var/lib/dpkg/status", Reader: bytes.NewReader(b), Distro: d})
			if err != nil {
				t.Fatal(err)
			}
			return res.Packages
		}
		for _, d := range []extract.Distro{debian12, {ID: "ubuntu", VersionID: "18.04", Ecosystem: "Ubuntu:18.04:LTS"}, {Ecosystem: "Debian:11"}} {
			got, want := read(extract.Distro{}), read(d)
			Extractor{}.Relabel(d, got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s as %+v: relabelled packages differ from those read with the distro", filepath.Base(f), d)
			}
		}
	}
}
