package inventory

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/scanner/inventory/dpkg"
	schema "github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// FakeRoot builds a filesystem root holding a shared inventory as its
// package database, the way a mounted image or container layer looks.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readShared(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.SharedData(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const debianOSRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
`

func TestCollectDebianRoot(t *testing.T) {
	root := fakeRoot(t, map[string]string{
		"etc/os-release":      debianOSRelease,
		"etc/machine-id":      "4c4c4544004d3510804ab4c04f4e4e32\n",
		"etc/hostname":        "bookworm-b\n",
		"var/lib/dpkg/status": readShared(t, "inventories/dpkg/debian12-bookworm-host-b.status"),
		// A corrupt distroless entry: warned about, the rest still counted.
		"var/lib/dpkg/status.d/corrupt": "\x00\x01garbage\nPackage: x\n",
		"var/lib/dpkg/status.d/kernel":  "Package: linux-image-6.1.0-37-amd64\nSource: linux (6.1.140-1)\nVersion: 6.1.140-1\nArchitecture: amd64\n",
	})
	langDir := filepath.Join(testenv.SharedData(t), "inventories", "lang", "trivy-fixtures", "gomod")
	now := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	s, err := Collect(context.Background(), Config{Root: root, Paths: []string{langDir}, Meta: schema.Meta{Owner: "ops", Ring: "prod"}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if s.HostID != "4c4c4544004d3510804ab4c04f4e4e32" || s.Hostname != "bookworm-b" || s.ScannedAt != now || len(s.ScanID) != 32 || s.Meta.Owner != "ops" {
		t.Errorf("identity: %+v", s)
	}
	if s.OS != (schema.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", Ecosystem: "Debian:12"}) {
		t.Errorf("OS %+v", s.OS)
	}
	if s.KernelRunning != "" {
		t.Errorf("a fake root has no running kernel, got %q", s.KernelRunning)
	}
	var deb, gomod int
	for _, p := range s.Packages {
		switch p.Ecosystem {
		case "Debian:12":
			deb++
			if !strings.HasPrefix(p.Location, "/var/lib/dpkg/status") {
				t.Errorf("location %q", p.Location)
			}
		case "Go":
			gomod++
		default:
			t.Errorf("unexpected ecosystem %+v", p)
		}
	}
	if deb != 746 || gomod == 0 {
		t.Errorf("%d debian, %d go packages", deb, gomod)
	}
	if len(s.KernelsInstalled) != 1 || s.KernelsInstalled[0] != "6.1.140-1" {
		t.Errorf("installed kernels %q", s.KernelsInstalled)
	}
	var corruptWarned bool
	for _, w := range s.Warnings {
		corruptWarned = corruptWarned || strings.HasPrefix(w, "/var/lib/dpkg/status.d/corrupt:")
	}
	if !corruptWarned {
		t.Errorf("no warning names the corrupt file: %q", s.Warnings)
	}
	if s.InventoryHash != schema.HashPackages(s.Packages) {
		t.Error("inventory hash does not match")
	}
	if _, err := schema.Encode(s); err != nil {
		t.Fatalf("collected scan does not encode: %v", err)
	}
}

func TestCollectAlpineRootWithBrokenEntries(t *testing.T) {
	root := fakeRoot(t, map[string]string{
		"etc/os-release":          "ID=alpine\nVERSION_ID=3.4.6\nPRETTY_NAME=\"Alpine Linux v3.4\"\n",
		"var/lib/dbus/machine-id": "feedfacefeedfacefeedfacefeedface\n",
		"lib/apk/db/installed":    readShared(t, "inventories/apk/trivy-alpine.installed"),
	})
	s, err := Collect(context.Background(), Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if s.HostID != "feedfacefeedfacefeedfacefeedface" || s.OS.Ecosystem != "Alpine:v3.4" || len(s.Packages) != 15 || len(s.Warnings) != 1 {
		t.Fatalf("host %q eco %q, %d packages, warnings %q", s.HostID, s.OS.Ecosystem, len(s.Packages), s.Warnings)
	}
}

func TestCollectNeedsHostID(t *testing.T) {
	root := fakeRoot(t, map[string]string{"etc/os-release": debianOSRelease})
	if _, err := Collect(context.Background(), Config{Root: root}); err == nil {
		t.Fatal("no machine-id and no host id accepted")
	}
	s, err := Collect(context.Background(), Config{Root: root, HostID: "given"})
	if err != nil || s.HostID != "given" || len(s.Packages) != 0 {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestCollectSBOM(t *testing.T) {
	sbomFile := filepath.Join(testenv.SharedData(t), "inventories", "sbom", "osv-scanner-alpine.cdx.xml")
	s, err := Collect(context.Background(), Config{Root: t.TempDir(), SBOM: sbomFile})
	if err != nil {
		t.Fatal(err)
	}
	if s.HostID != "sbom:osv-scanner-alpine.cdx.xml" || s.OS.Ecosystem != "Alpine:v3.17" || len(s.Packages) != 14 {
		t.Fatalf("host %q OS %+v %d packages", s.HostID, s.OS, len(s.Packages))
	}
}

// TestReadFileShared reads every shared inventory the fleet simulator may
// use and checks the format and OS guess.
func TestReadFileShared(t *testing.T) {
	inv := filepath.Join(testenv.SharedData(t), "inventories")
	for _, tc := range []struct {
		file, format, eco string
		pkgs              int
	}{
		{"dpkg/debian12-bookworm-host.status", FormatDpkgStatus, "Debian:12", 733},
		{"dpkg/debian12-bookworm-host-b.status", FormatDpkgStatus, "Debian:12", 745},
		{"dpkg/trivy-ubuntu1804.status", FormatDpkgStatus, "Ubuntu:18.04:LTS", 90},
		{"dpkg/claircore-texlive.status", FormatDpkgStatus, "Ubuntu:18.04:LTS", 357},
		{"apk/scalibr-alpine3.18.installed", FormatAPKDB, "Alpine:v3.18", 15},
		{"apk/syft-alpine3.16.installed", FormatAPKDB, "Alpine:v3.16", 14},
		{"rpm/claircore-rhel-testdata-httpd-24_9.5-1734525854.rpm-qa.txt", FormatRPMQA, "Red Hat:enterprise_linux:9", 243},
		{"rpm/claircore-ubi8_ubi-5cc9ca3ddd19c7782937e026-amd64.rpm-manifest.json", FormatRPMManifest, "Red Hat:enterprise_linux:8", 178},
		{"rpm/claircore-rhel-testdata-bdb.rpm-manifest.json", FormatRPMManifest, "Red Hat:enterprise_linux:8", 174},
		{"sbom/trivy-fluentd-multiple-lockfiles.cdx.json", FormatSBOM, "Debian:10", 160},
		{"sbom/claircore-ubi_latest.spdx.json.gz", FormatSBOM, "Red Hat:enterprise_linux:9", 1525},
		{"lang/trivy-fixtures/gomod/go.mod", FormatLockfile, "", 19},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := ReadFile(context.Background(), filepath.Join(inv, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if f.Format != tc.format || f.OS.Ecosystem != tc.eco || len(f.Packages) != tc.pkgs {
				t.Fatalf("format %s, OS %+v, %d packages", f.Format, f.OS, len(f.Packages))
			}
			for _, p := range f.Packages {
				if tc.eco != "" && strings.Contains(p.Ecosystem, ":") && p.Ecosystem != tc.eco {
					t.Fatalf("package labelled %s, OS guessed %s", p.Ecosystem, tc.eco)
				}
			}
		})
	}
	if _, err := ReadFile(context.Background(), filepath.Join(inv, "dpkg", "debian12-bookworm-host-b.upgrades.tsv")); err == nil {
		t.Error("an upgrades table read as an inventory")
	}
}

// TestCollectRHELRootWithCorruptDatabase: a real Berkeley DB rpm database
// from go-rpmdb's corpus next to a truncated sqlite one. Which of the two is
// the live database cannot be told, so the scan is an error naming the
// truncated one, not the other's packages passed off as the host's.
func TestCollectRHELRootWithCorruptDatabase(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/erikvarga/go-rpmdb").Output()
	if err != nil {
		t.Skipf("go-rpmdb module not found: %v", err)
	}
	bdb := filepath.Join(strings.TrimSpace(string(out)), "pkg", "testdata", "centos7-plain", "Packages")
	root := fakeRoot(t, map[string]string{
		"etc/os-release":                    "ID=\"rhel\"\nVERSION_ID=\"9.5\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.5 (Plow)\"\n",
		"etc/machine-id":                    "0123456789abcdef0123456789abcdef\n",
		"usr/lib/sysimage/rpm/rpmdb.sqlite": "SQLite format 3\x00 truncated",
	})
	if err := os.MkdirAll(filepath.Join(root, "var/lib/rpm"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bdb, filepath.Join(root, "var/lib/rpm/Packages")); err != nil {
		t.Fatal(err)
	}
	s, err := Collect(context.Background(), Config{Root: root})
	if err == nil || !strings.Contains(err.Error(), "/usr/lib/sysimage/rpm/rpmdb.sqlite") || s != nil {
		t.Fatalf("truncated rpmdb: scan %v, err %v; want an error naming the database", s != nil, err)
	}
	// Alone, the good database scans.
	if err := os.Remove(filepath.Join(root, "usr/lib/sysimage/rpm/rpmdb.sqlite")); err != nil {
		t.Fatal(err)
	}
	s, err = Collect(context.Background(), Config{Root: root})
	if err != nil || s.OS.Ecosystem != "Red Hat:enterprise_linux:9" || len(s.Packages) < 100 {
		t.Fatalf("good database: %v", err)
	}
	if _, err := schema.Encode(s); err != nil {
		t.Fatal(err)
	}
}

// TestPartialInventoriesAreErrors: the examples of a scan that could
// not read its whole inventory. Each is an error naming the input, never a
// scan with the packages read before the failure.
func TestPartialInventoriesAreErrors(t *testing.T) {
	status := readShared(t, "inventories/dpkg/debian12-bookworm-host.status")
	// A Description line over dpkg.MaxLineLen half-way through the file:
	// the reader used to stop there and publish the packages before it.
	half := strings.Index(status[len(status)/2:], "\nDescription: ") + len(status)/2 + len("\nDescription: ")
	long := status[:half] + strings.Repeat("x", dpkg.MaxLineLen+1) + status[half:]
	root := fakeRoot(t, map[string]string{
		"etc/os-release":      debianOSRelease,
		"etc/machine-id":      "4c4c4544004d3510804ab4c04f4e4e32\n",
		"var/lib/dpkg/status": long,
	})
	if s, err := Collect(context.Background(), Config{Root: root}); err == nil || !strings.Contains(err.Error(), "/var/lib/dpkg/status") {
		n := 0
		if s != nil {
			n = len(s.Packages)
		}
		t.Errorf("dpkg line over the limit: %d packages, err %v; want an error naming the file", n, err)
	}
	if _, err := ReadFile(context.Background(), filepath.Join(root, "var/lib/dpkg/status")); err == nil {
		t.Error("ReadFile: dpkg line over the limit accepted")
	}

	empty := filepath.Join(testenv.SharedData(t), "inventories", "sbom", "claircore-ubi8-micro.spdx.json")
	if _, err := Collect(context.Background(), Config{Root: t.TempDir(), SBOM: empty}); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("SBOM with 0 packages: err %v, want an error naming it", err)
	}
	if _, err := ReadFile(context.Background(), empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("ReadFile: SBOM with 0 packages: err %v", err)
	}
}

// TestOfflineInventoryOS: offline inventories keep their OS, from the SBOM's
// metadata, an os-release beside the file, or --os.
func TestOfflineInventoryOS(t *testing.T) {
	ctx := context.Background()
	inv := filepath.Join(testenv.SharedData(t), "inventories")
	// syft JSON whose purls carry no distro qualifier: its "distro" says Alpine 3.14.2.
	f, err := ReadFile(ctx, filepath.Join(inv, "sbom", "syft-alpine.syft.json"))
	if err != nil || f.OS.Ecosystem != "Alpine:v3.14" || f.Packages[0].Ecosystem != "Alpine:v3.14" {
		t.Errorf("syft distro: %+v %v", f, err)
	}
	s, err := Collect(ctx, Config{Root: t.TempDir(), SBOM: filepath.Join(inv, "sbom", "syft-alpine.syft.json")})
	if err != nil || s.OS.Ecosystem != "Alpine:v3.14" {
		t.Errorf("Collect, syft distro: %v %v", s, err)
	}

	// An apk database whose name and packages say no release (trivy's):
	// unknown alone, Alpine 3.4 with an os-release beside it, 3.18 with --os.
	dir := t.TempDir()
	apkFile := filepath.Join(dir, "installed")
	if err := os.WriteFile(apkFile, []byte(readShared(t, "inventories/apk/trivy-alpine.installed")), 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := ReadFile(ctx, apkFile); err != nil || f.OS.Ecosystem != "" {
		t.Fatalf("no OS information: %+v %v", f.OS, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "os-release"), []byte("ID=alpine\nVERSION_ID=3.4.6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err = ReadFile(ctx, apkFile)
	if err != nil || f.OS.Ecosystem != "Alpine:v3.4" || f.Packages[0].Ecosystem != "Alpine:v3.4" {
		t.Fatalf("os-release beside: %+v %v", f.OS, err)
	}
	f, err = ReadFileWith(ctx, apkFile, ReadOptions{OS: "ALPINE:v3.18"})
	if err != nil || f.OS.Ecosystem != "Alpine:v3.18" || f.Packages[0].Ecosystem != "Alpine:v3.18" {
		t.Fatalf("--os: %+v %v", f.OS, err)
	}
	if _, err := ReadFileWith(ctx, apkFile, ReadOptions{OS: "Gentoo:1"}); err == nil {
		t.Error("bad --os accepted")
	}

	// A root without os-release, given --os.
	root := fakeRoot(t, map[string]string{
		"etc/machine-id":      "4c4c4544004d3510804ab4c04f4e4e32\n",
		"var/lib/dpkg/status": readShared(t, "inventories/dpkg/debian12-bookworm-host-b.status"),
	})
	s, err = Collect(ctx, Config{Root: root, OS: "debian:12"})
	if err != nil || s.OS.Ecosystem != "Debian:12" || s.Packages[0].Ecosystem != "Debian:12" {
		t.Fatalf("root with --os: %v %v", s, err)
	}
	for _, w := range s.Warnings {
		if strings.Contains(w, "os-release") {
			t.Errorf("--os answered the missing os-release, still warned: %q", w)
		}
	}
}
