// Package inventory collects what a host has installed: distro package
// databases under a filesystem root, language lockfiles under chosen paths,
// or an SBOM, plus the host's identity. It builds the scan message of
// schemas/inventory; scanner/publish sends it.
package inventory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/patchgrid/patchgrid/scanner/inventory/apk"
	"github.com/patchgrid/patchgrid/scanner/inventory/dpkg"
	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/scanner/inventory/lang"
	"github.com/patchgrid/patchgrid/scanner/inventory/osrelease"
	"github.com/patchgrid/patchgrid/scanner/inventory/rpmdb"
	"github.com/patchgrid/patchgrid/scanner/inventory/sbom"
	schema "github.com/patchgrid/patchgrid/schemas/inventory"
)

// MaxWarningsPerFile keeps one corrupt file from burying the others: past it,
// a file's warnings are summarised in one line.
const MaxWarningsPerFile = 20

// Config says what Collect reads.
type Config struct {
	// Root is the filesystem root whose package databases are read
	// (default "/"). Tests point it at a fake root.
	Root string
	// Paths are directories (or files) searched for language lockfiles.
	Paths []string
	// SBOM, when set, is the only package source: the scan describes the
	// SBOM's subject, not the root's package databases.
	SBOM string
	// HostID overrides the machine-id (required when the root has none;
	// defaults to "sbom:<file name>" for an SBOM scan).
	HostID string
	// Hostname overrides the host name (default: the kernel's for "/",
	// <root>/etc/hostname otherwise).
	Hostname string
	// OS, when set, is the OS release the packages come from, as `scan
	// --os` takes it ("Debian:12", case-insensitive; osrelease.FromFlag). It
	// wins over what the root's os-release or the SBOM's metadata say.
	OS   string
	Meta schema.Meta
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// OSExtractors are the distro database extractors Collect runs on a root.
func OSExtractors() []extract.Extractor {
	return []extract.Extractor{dpkg.Extractor{}, apk.Extractor{}, rpmdb.Extractor{}}
}

// candidateDirs are the directories whose files are offered to the OS
// extractors' FileRequired, relative to the root. Walking the whole root
// would cost minutes on a real host for nothing.
var candidateDirs = []string{"var/lib/dpkg", "var/lib/dpkg/status.d", "lib/apk/db", "var/lib/rpm", "usr/lib/sysimage/rpm"}

// Collect builds the scan of the host (or SBOM) that cfg describes.
func Collect(ctx context.Context, cfg Config) (*schema.Scan, error) {
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &schema.Scan{ScannedAt: cfg.Now().UTC(), Meta: cfg.Meta}
	id, err := newScanID()
	if err != nil {
		return nil, err
	}
	s.ScanID = id

	var (
		pkgs    []schema.Package
		osInfo  schema.OS
		flagged *extract.Distro // from cfg.OS
	)
	if cfg.OS != "" {
		fields, eco, err := osrelease.FromFlag(cfg.OS)
		if err != nil {
			return nil, fmt.Errorf("--os: %w", err)
		}
		flagged = &extract.Distro{ID: fields["ID"], VersionID: fields["VERSION_ID"], Ecosystem: eco}
	}
	if cfg.SBOM != "" {
		d := extract.Distro{}
		if flagged != nil {
			d = *flagged
		}
		res, err := readSBOM(ctx, cfg.SBOM, d)
		s.Warnings = append(s.Warnings, capWarnings(cfg.SBOM, res.Warnings)...)
		if err != nil {
			return nil, err
		}
		pkgs = res.Packages
		switch {
		case flagged != nil:
			osInfo = schema.OS{ID: flagged.ID, VersionID: flagged.VersionID, Ecosystem: flagged.Ecosystem}
		case res.OS != nil && res.OS.Ecosystem != "":
			osInfo = schema.OS{ID: res.OS.ID, VersionID: res.OS.VersionID, Ecosystem: res.OS.Ecosystem}
		default:
			osInfo = guessOS(pkgs, cfg.SBOM)
		}
		if cfg.HostID == "" {
			cfg.HostID = "sbom:" + filepath.Base(cfg.SBOM)
		}
		if cfg.Hostname == "" {
			cfg.Hostname = filepath.Base(cfg.SBOM)
		}
	} else {
		var (
			distro extract.Distro
			warn   []string
		)
		osInfo, distro, warn = readOS(cfg.Root)
		if flagged != nil {
			if osInfo.Ecosystem != "" && osInfo.Ecosystem != flagged.Ecosystem {
				warn = append(warn, fmt.Sprintf("--os %s overrides the root's os-release (%s)", flagged.Ecosystem, osInfo.Ecosystem))
			} else {
				warn = nil // the os-release problem --os answers
			}
			distro = *flagged
			osInfo = schema.OS{ID: flagged.ID, VersionID: flagged.VersionID, PrettyName: osInfo.PrettyName, Ecosystem: flagged.Ecosystem}
		}
		s.Warnings = append(s.Warnings, warn...)
		pkgs, warn, err = collectOS(ctx, cfg.Root, distro)
		s.Warnings = append(s.Warnings, warn...)
		if err != nil {
			return nil, err
		}
		s.KernelRunning = runningKernel(cfg.Root)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, p := range cfg.Paths {
		res, err := lang.Scan(ctx, p)
		s.Warnings = append(s.Warnings, capWarnings(p, res.Warnings)...)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			s.Warnings = append(s.Warnings, err.Error())
		}
		pkgs = append(pkgs, res.Packages...)
	}
	sortPackages(pkgs)
	s.OS = osInfo
	s.Packages = pkgs
	s.KernelsInstalled = installedKernels(pkgs)
	s.InventoryHash = schema.HashPackages(pkgs)

	s.HostID = cfg.HostID
	if s.HostID == "" {
		if s.HostID, err = machineID(cfg.Root); err != nil {
			return nil, err
		}
	}
	s.Hostname = cfg.Hostname
	if s.Hostname == "" {
		s.Hostname = hostname(cfg.Root)
	}
	for _, w := range s.Warnings {
		slog.Warn("inventory: incomplete input", "warning", w)
	}
	return s, nil
}

func newScanID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("scan id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func readOS(root string) (schema.OS, extract.Distro, []string) {
	for _, p := range osrelease.Paths {
		f, err := os.Open(filepath.Join(root, p))
		if err != nil {
			continue
		}
		fields, err := osrelease.Parse(f)
		f.Close()
		if err != nil {
			return schema.OS{}, extract.Distro{}, []string{filepath.Join(root, p) + ": " + err.Error()}
		}
		o := schema.OS{ID: fields["ID"], VersionID: fields["VERSION_ID"], PrettyName: fields["PRETTY_NAME"], Ecosystem: osrelease.Ecosystem(fields)}
		var warn []string
		if o.Ecosystem == "" {
			warn = append(warn, fmt.Sprintf("%s: no OSV ecosystem for ID=%q VERSION_ID=%q; distro packages will not match advisories", filepath.Join(root, p), o.ID, o.VersionID))
		}
		return o, extract.Distro{ID: o.ID, VersionID: o.VersionID, Ecosystem: o.Ecosystem}, warn
	}
	return schema.OS{}, extract.Distro{}, []string{filepath.Join(root, "etc/os-release") + ": not found"}
}

// collectOS offers the files of candidateDirs to every OS extractor. A
// database that cannot be read to its end (a dpkg status line over the
// reader's limit, a truncated rpmdb) is an error naming it: publishing what
// was read before the failure would be a partial inventory passed off as a
// full scan, closing exposures on packages that are still installed.
// Records skipped inside a readable file stay warnings.
func collectOS(ctx context.Context, root string, d extract.Distro) ([]schema.Package, []string, error) {
	var (
		pkgs []schema.Package
		warn []string
	)
	exs := OSExtractors()
	// seen holds resolved paths: on RHEL 9 /var/lib/rpm links to
	// /usr/lib/sysimage/rpm, one database under two names.
	seen := map[string]bool{}
	for _, dir := range candidateDirs {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				warn = append(warn, fmt.Sprintf("%s: %v", filepath.Join(root, dir), err))
			}
			continue
		}
		for _, e := range entries {
			rel := path.Join(dir, e.Name())
			if e.IsDir() {
				continue
			}
			real, err := filepath.EvalSymlinks(filepath.Join(root, rel))
			if err != nil || seen[real] {
				continue
			}
			seen[real] = true
			for _, ex := range exs {
				if !ex.FileRequired(rel) {
					continue
				}
				res, err := extractFile(ctx, ex, filepath.Join(root, rel), "/"+rel, d)
				warn = append(warn, capWarnings("/"+rel, res.Warnings)...)
				if err != nil {
					return nil, warn, fmt.Errorf("scan incomplete: %s (%s, under root %s) could not be read to its end; no scan is published from a partial inventory: %w",
						"/"+rel, ex.Name(), root, err)
				}
				pkgs = append(pkgs, res.Packages...)
			}
		}
	}
	return pkgs, warn, nil
}

func extractFile(ctx context.Context, ex extract.Extractor, file, location string, d extract.Distro) (extract.Result, error) {
	f, err := os.Open(file)
	if err != nil {
		return extract.Result{}, err
	}
	defer f.Close()
	return ex.Extract(ctx, &extract.Input{Path: location, Reader: f, File: file, Distro: d})
}

// readSBOM reads an SBOM's packages. One that yields none is an error: an
// empty scan would close every exposure of its subject.
func readSBOM(ctx context.Context, file string, d extract.Distro) (extract.Result, error) {
	res, err := extractFile(ctx, sbom.Extractor{}, file, file, d)
	if err != nil {
		return res, fmt.Errorf("SBOM %s: %w", file, err)
	}
	if len(res.Packages) == 0 {
		why := "it lists no component with a package URL"
		if len(res.Warnings) > 0 {
			why = strings.Join(res.Warnings, "; ")
		}
		return res, fmt.Errorf("SBOM %s: no package could be read from it (%s); an empty scan is not published", file, why)
	}
	return res, nil
}

func capWarnings(file string, w []string) []string {
	if len(w) <= MaxWarningsPerFile {
		return w
	}
	out := append([]string(nil), w[:MaxWarningsPerFile]...)
	return append(out, fmt.Sprintf("%s: %d more warnings not shown (corrupt file?)", file, len(w)-MaxWarningsPerFile))
}

func sortPackages(pkgs []schema.Package) {
	sort.SliceStable(pkgs, func(i, j int) bool {
		a, b := &pkgs[i], &pkgs[j]
		if a.Ecosystem != b.Ecosystem {
			return a.Ecosystem < b.Ecosystem
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		if a.Arch != b.Arch {
			return a.Arch < b.Arch
		}
		return a.Location < b.Location
	})
}

// installedKernels lists the distinct versions of kernel image packages.
func installedKernels(pkgs []schema.Package) []string {
	seen := map[string]bool{}
	var out []string
	for i := range pkgs {
		p := &pkgs[i]
		if !isKernelPackage(p.Name) || seen[p.Version] {
			continue
		}
		seen[p.Version] = true
		out = append(out, p.Version)
	}
	sort.Strings(out)
	return out
}

func isKernelPackage(name string) bool {
	switch name {
	case "kernel", "kernel-core", "linux-lts", "linux-virt", "linux-edge":
		return true
	}
	return strings.HasPrefix(name, "linux-image-")
}

// runningKernel is uname -r, and only for the live root: a mounted image or
// test root has no running kernel.
func runningKernel(root string) string {
	if filepath.Clean(root) != "/" {
		return ""
	}
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	b := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

func machineID(root string) (string, error) {
	for _, p := range []string{"etc/machine-id", "var/lib/dbus/machine-id"} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			continue
		}
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	}
	return "", fmt.Errorf("no machine-id under %s (etc/machine-id, var/lib/dbus/machine-id): set a host id", root)
}

func hostname(root string) string {
	if filepath.Clean(root) == "/" {
		if h, err := os.Hostname(); err == nil {
			return h
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "etc/hostname"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
