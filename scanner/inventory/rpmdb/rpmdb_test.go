package rpmdb

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
)

// testdataDir is go-rpmdb's own corpus of real rpm databases, in the module
// cache (the shared corpus has only rpm lists, no databases).
func testdataDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/erikvarga/go-rpmdb").Output()
	dir := filepath.Join(strings.TrimSpace(string(out)), "pkg", "testdata")
	if err != nil {
		t.Skipf("go-rpmdb module not found: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("go-rpmdb testdata: %v", err)
	}
	return dir
}

func TestRealDatabases(t *testing.T) {
	dir := testdataDir(t)
	for _, tc := range []struct {
		db, pkg, version, source string
	}{
		{"fedora35/rpmdb.sqlite", "bash", "5.1.8-2.fc35", "bash"},
		{"centos7-plain/Packages", "openssl-libs", "1:1.0.2k-12.el7", "openssl"},
		{"sle15-bci/Packages.db", "", "", ""},
	} {
		t.Run(tc.db, func(t *testing.T) {
			file := filepath.Join(dir, tc.db)
			res, err := Extractor{}.Extract(context.Background(), &extract.Input{Path: "/var/lib/rpm/" + filepath.Base(tc.db), File: file,
				Distro: extract.Distro{ID: "rhel", VersionID: "9.5", Ecosystem: "Red Hat:enterprise_linux:9"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Packages) < 10 || len(res.Warnings) != 0 {
				t.Fatalf("%d packages, warnings %q", len(res.Packages), res.Warnings)
			}
			t.Logf("%d packages", len(res.Packages))
			if tc.pkg == "" {
				return
			}
			for _, p := range res.Packages {
				if p.Name == tc.pkg {
					if !strings.HasPrefix(p.Version, tc.version) || p.SourceName != tc.source || p.Arch == "" || p.PURL == "" {
						t.Errorf("%+v", p)
					}
					return
				}
			}
			t.Errorf("%s not found", tc.pkg)
		})
	}
}

func TestCorruptDatabase(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "rpmdb.sqlite")
	if err := os.WriteFile(bad, []byte("SQLite format 3\x00 but not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := (Extractor{}).Extract(context.Background(), &extract.Input{Path: "/var/lib/rpm/rpmdb.sqlite", File: bad}); err == nil ||
		!strings.Contains(err.Error(), "/var/lib/rpm/rpmdb.sqlite") {
		t.Fatalf("corrupt database: %v", err)
	}
}

func TestFileRequired(t *testing.T) {
	for p, want := range map[string]bool{
		"var/lib/rpm/rpmdb.sqlite":          true,
		"usr/lib/sysimage/rpm/rpmdb.sqlite": true,
		"var/lib/rpm/Packages":              true,
		"var/lib/rpm/Name":                  false,
		"tmp/rpmdb.sqlite":                  false,
	} {
		if (Extractor{}).FileRequired(p) != want {
			t.Errorf("FileRequired(%q) != %v", p, want)
		}
	}
}

// TestTruncatedDatabase: a database cut short (BDB, sqlite, NDB) is an
// error naming the file, never a shorter package list and never a panic
// (go-rpmdb panics on truncated NDB files).
func TestTruncatedDatabase(t *testing.T) {
	dir := testdataDir(t)
	for _, f := range []string{"centos7-plain/Packages", "cbl-mariner-2.0/rpmdb.sqlite", "sle15-bci/Packages.db"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, fifths := range []int{1, 2, 4} {
			p := filepath.Join(t.TempDir(), filepath.Base(f))
			if err := os.WriteFile(p, b[:len(b)*fifths/5], 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := Extractor{}.Extract(context.Background(), &extract.Input{Path: p, File: p})
			if err == nil || !strings.Contains(err.Error(), p) || len(res.Packages) != 0 {
				t.Errorf("%s cut to %d/5: %d packages, err %v; want an error naming the file and no packages", f, fifths, len(res.Packages), err)
			}
		}
	}
}
