package rpm

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

var rhel9 = extract.Distro{ID: "rhel", VersionID: "9.5", Ecosystem: "Red Hat:enterprise_linux:9"}

func TestParseNEVRA(t *testing.T) {
	for in, want := range map[string]NEVRA{
		"bind-libs-32:9.16.23-24.el9_5.x86_64":                    {"bind-libs", "32", "9.16.23", "24.el9_5", "x86_64"},
		"acl-2.3.1-3.el9.x86_64":                                  {"acl", "", "2.3.1", "3.el9", "x86_64"},
		"lvm2-8:2.03.02-6.el8.src":                                {"lvm2", "8", "2.03.02", "6.el8", "src"},
		"gpg-pubkey-fd431d51-4ae0493b":                            {"gpg-pubkey", "", "fd431d51", "4ae0493b", ""},
		"nodejs-18.14.2-3.module+el9.2.0.z+18964+42696395.x86_64": {"nodejs", "", "18.14.2", "3.module+el9.2.0.z+18964+42696395", "x86_64"},
	} {
		got, err := ParseNEVRA(in)
		if err != nil || got != want {
			t.Errorf("ParseNEVRA(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "name", "name-1", "-1-2", "a-x:1-2.x86_64", "a-1:-2"} {
		if n, err := ParseNEVRA(bad); err == nil {
			t.Errorf("ParseNEVRA(%q) = %+v, want error", bad, n)
		}
	}
}

func TestEpochSpelling(t *testing.T) {
	for n, want := range map[NEVRA]string{
		{Version: "1", Release: "2"}:             "1-2",
		{Epoch: "0", Version: "1", Release: "2"}: "1-2",
		{Epoch: "8", Version: "1", Release: "2"}: "8:1-2",
	} {
		if got := n.EVR(); got != want {
			t.Errorf("%+v.EVR() = %q, want %q", n, got, want)
		}
	}
}

func run(t *testing.T, ex extract.Extractor, file string) extract.Result {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := ex.Extract(context.Background(), &extract.Input{Path: "/" + filepath.Base(file), Reader: f, Distro: rhel9})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func find(pkgs []inventory.Package, name string) *inventory.Package {
	for i := range pkgs {
		if pkgs[i].Name == name {
			return &pkgs[i]
		}
	}
	return nil
}

func TestSharedInventories(t *testing.T) {
	dir := filepath.Join(testenv.SharedData(t), "inventories", "rpm")
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 30 {
		t.Fatalf("want 30 rpm files, got %d", len(files))
	}
	for _, file := range files {
		var ex extract.Extractor = QAExtractor{}
		if strings.HasSuffix(file, ".json") {
			ex = ManifestExtractor{}
		}
		res := run(t, ex, file)
		if len(res.Packages) < 170 || len(res.Warnings) != 0 {
			t.Errorf("%s: %d packages, warnings %q", filepath.Base(file), len(res.Packages), res.Warnings)
		}
	}
	// The manifest form carries the source RPM; the qa form cannot.
	httpd := run(t, ManifestExtractor{}, filepath.Join(dir, "claircore-rhel-testdata-httpd-24_9.5-1734525854.rpm-manifest.json"))
	golden.JSON(t, "httpd-24_9.5.manifest.golden.json", httpd.Packages)
	bl := find(httpd.Packages, "bind-libs")
	if bl == nil || bl.Version != "32:9.16.23-24.el9_5" || bl.SourceName != "bind" || bl.SourceVersion != "32:9.16.23-24.el9_5" {
		t.Errorf("bind-libs = %+v", bl)
	}
	qa := run(t, QAExtractor{}, filepath.Join(dir, "claircore-rhel-testdata-httpd-24_9.5-1734525854.rpm-qa.txt"))
	golden.JSON(t, "httpd-24_9.5.qa.golden.json", qa.Packages)
	if q := find(qa.Packages, "bind-libs"); q == nil || q.Version != bl.Version || q.SourceName != "" {
		t.Errorf("qa bind-libs = %+v", q)
	}
	// ubi8 manifests: no binary epoch, the source NEVRA has it.
	ubi8 := run(t, ManifestExtractor{}, filepath.Join(dir, "claircore-ubi8_ubi-5cc9ca3ddd19c7782937e026-amd64.rpm-manifest.json"))
	dm := find(ubi8.Packages, "device-mapper-libs")
	if dm == nil || dm.Version != "8:1.02.155-6.el8" || dm.SourceName != "lvm2" || dm.SourceVersion != "8:2.03.02-6.el8" ||
		!strings.Contains(dm.PURL, "epoch=8") {
		t.Errorf("device-mapper-libs = %+v", dm)
	}
	if tar := find(ubi8.Packages, "tar"); tar == nil || tar.Version != "2:1.30-4.el8" {
		t.Errorf("tar = %+v", tar)
	}
	// bdb manifests have neither version nor nvra, only "nerva".
	bdb := run(t, ManifestExtractor{}, filepath.Join(dir, "claircore-rhel-testdata-bdb.rpm-manifest.json"))
	if tz := find(bdb.Packages, "tzdata"); tz == nil || tz.Version != "2019a-1.el8" || tz.Arch != "noarch" {
		t.Errorf("bdb tzdata = %+v", tz)
	}
}

func TestQueryFormat(t *testing.T) {
	in := "bash\t(none)\t5.1.8\t9.el9\tx86_64\tbash-5.1.8-9.el9.src.rpm\n" +
		"dbus-libs\t1\t1.12.20\t8.el9\tx86_64\tdbus-1.12.20-8.el9.src.rpm\n" +
		"gpg-pubkey\t(none)\tfd431d51\t4ae0493b\t(none)\t(none)\n" +
		"tzdata\t(none)\t2024b\t2.el9\t(none)\t(none)\n" +
		"broken\tline\n"
	res, err := QAExtractor{}.Extract(context.Background(), &extract.Input{Path: "qa", Reader: strings.NewReader(in), Distro: rhel9})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) != 3 || len(res.Warnings) != 1 {
		t.Fatalf("%+v %q", res.Packages, res.Warnings)
	}
	d := res.Packages[1]
	if d.Version != "1:1.12.20-8.el9" || d.SourceName != "dbus" || d.SourceVersion != "1:1.12.20-8.el9" {
		t.Errorf("%+v", d)
	}
	if tz := res.Packages[2]; tz.Name != "tzdata" || tz.Arch != "" || tz.SourceName != "" {
		t.Errorf("%+v", tz)
	}
}

func TestManifestBrokenEntries(t *testing.T) {
	in := `{"rpms":[{"name":"ok","version":"1","release":"1.el9","architecture":"x86_64"},{"name":"bad"},{"name":7},
	{"name":"e","version":"x:1","release":"1"}]}`
	res, err := ManifestExtractor{}.Extract(context.Background(), &extract.Input{Path: "m.json", Reader: strings.NewReader(in), Distro: rhel9})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) != 1 || len(res.Warnings) != 3 {
		t.Fatalf("%+v %q", res.Packages, res.Warnings)
	}
	if _, err := (ManifestExtractor{}).Extract(context.Background(), &extract.Input{Path: "m.json", Reader: strings.NewReader("{")}); err == nil {
		t.Fatal("truncated JSON accepted")
	}
}

func FuzzQA(f *testing.F) {
	f.Add([]byte("acl-2.3.1-3.el9.x86_64\n# comment\nbind-libs-32:9.16.23-24.el9_5.x86_64\n"))
	f.Add([]byte("a\t1\t2\t3\tx86_64\ta-2-3.src.rpm\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, _ := QAExtractor{}.Extract(context.Background(), &extract.Input{Path: "qa", Reader: bytes.NewReader(data), Distro: rhel9})
		for _, p := range res.Packages {
			if p.Name == "" || p.Version == "" {
				t.Fatalf("package with empty identity: %+v", p)
			}
		}
	})
}
