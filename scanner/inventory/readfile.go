package inventory

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/patchgrid/patchgrid/scanner/inventory/apk"
	"github.com/patchgrid/patchgrid/scanner/inventory/dpkg"
	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/scanner/inventory/lang"
	"github.com/patchgrid/patchgrid/scanner/inventory/osrelease"
	"github.com/patchgrid/patchgrid/scanner/inventory/rpm"
	"github.com/patchgrid/patchgrid/scanner/inventory/rpmdb"
	"github.com/patchgrid/patchgrid/scanner/inventory/sbom"
	schema "github.com/patchgrid/patchgrid/schemas/inventory"
)

// Formats ReadFile recognises.
const (
	FormatDpkgStatus  = "dpkg-status"
	FormatAPKDB       = "apk-installed"
	FormatRPMQA       = "rpm-qa"
	FormatRPMManifest = "rpm-manifest"
	FormatRPMDB       = "rpmdb"
	FormatSBOM        = "sbom"
	FormatLockfile    = "lockfile"
)

// File is what ReadFile found in one inventory file.
type File struct {
	Format   string
	OS       schema.OS // best guess; OS.Ecosystem is "" when the release is unknown
	Packages []schema.Package
	Warnings []string
}

// ReadOptions shapes ReadFileWith.
type ReadOptions struct {
	// OS is the release the packages come from, as `scan --os` takes it
	// ("Debian:12", case-insensitive; osrelease.FromFlag). It wins over
	// what the file, its SBOM metadata or an os-release beside it say.
	OS string
}

// ReadFile is ReadFileWith without options.
func ReadFile(ctx context.Context, path string) (*File, error) {
	return ReadFileWith(ctx, path, ReadOptions{})
}

// ReadFileWith detects the format of one inventory file (a dpkg status
// file, an apk installed database, an rpm database, rpm -qa output, an
// rpm-manifest JSON, an SBOM or a language lockfile), reads its packages and
// finds the OS they come from, first found wins: opt.OS; an SBOM's metadata
// (syft distro, CycloneDX/SPDX operating-system component); a file named
// os-release beside the inventory file; then guesses from the packages
// themselves (base-files, redhat-release and .elN releases, SBOM distro
// qualifiers) and distro names in the file name (alpine3.18). Packages are
// labelled with that OS's ecosystem and Location is path.
//
// A file that cannot be read to its end, or a package database or SBOM
// that yields no package, is an error naming it: it is never a (partial)
// scan.
func ReadFileWith(ctx context.Context, path string, opt ReadOptions) (*File, error) {
	var flagged *schema.OS
	if opt.OS != "" {
		fields, eco, err := osrelease.FromFlag(opt.OS)
		if err != nil {
			return nil, fmt.Errorf("--os: %w", err)
		}
		flagged = &schema.OS{ID: fields["ID"], VersionID: fields["VERSION_ID"], Ecosystem: eco}
	}
	format, err := detect(path)
	if err != nil {
		return nil, err
	}
	if format == FormatLockfile {
		res, err := lang.Scan(ctx, path)
		if err != nil {
			return nil, err
		}
		sortPackages(res.Packages)
		f := &File{Format: format, Packages: res.Packages, Warnings: res.Warnings}
		if flagged != nil {
			f.OS = *flagged
		}
		return f, nil
	}
	var ex extract.Extractor
	switch format {
	case FormatDpkgStatus:
		ex = dpkg.Extractor{}
	case FormatAPKDB:
		ex = apk.Extractor{}
	case FormatRPMQA:
		ex = rpm.QAExtractor{}
	case FormatRPMManifest:
		ex = rpm.ManifestExtractor{}
	case FormatRPMDB:
		ex = rpmdb.Extractor{}
	case FormatSBOM:
		ex = sbom.Extractor{}
	}
	// Packages are labelled with the distro during extraction, so read once
	// to find the OS and again with it.
	first, err := extractFile(ctx, ex, path, path, extract.Distro{})
	if err != nil {
		return nil, fmt.Errorf("read %s as %s (no packages are kept from it): %w", path, format, err)
	}
	if len(first.Packages) == 0 {
		return nil, fmt.Errorf("read %s as %s: no package could be read from it (%d warnings: %s); an empty inventory is not a scan",
			path, format, len(first.Warnings), strings.Join(capWarnings(path, first.Warnings), "; "))
	}
	var warn []string
	var found schema.OS
	switch {
	case flagged != nil:
		found = *flagged
	case first.OS != nil && first.OS.Ecosystem != "":
		found = schema.OS{ID: first.OS.ID, VersionID: first.OS.VersionID, Ecosystem: first.OS.Ecosystem}
	default:
		var ok bool
		if found, ok, warn = osReleaseBeside(path); !ok {
			found = guessOS(first.Packages, path)
		}
	}
	res := first
	if found.Ecosystem != "" && (format != FormatSBOM || flagged != nil) {
		d := extract.Distro{ID: found.ID, VersionID: found.VersionID, Ecosystem: found.Ecosystem}
		if rl, ok := ex.(relabeler); ok {
			// Cheaper than a second read: half of a dpkg scan's CPU.
			rl.Relabel(d, res.Packages)
		} else if res, err = extractFile(ctx, ex, path, path, d); err != nil {
			return nil, fmt.Errorf("read %s as %s: %w", path, format, err)
		}
	}
	sortPackages(res.Packages)
	return &File{Format: format, OS: found, Packages: res.Packages, Warnings: append(warn, res.Warnings...)}, nil
}

// relabeler is an extractor whose packages depend on the distro only
// through labels it can set again (ecosystem, PURL), so that ReadFileWith
// need not read the file a second time once it knows the OS.
type relabeler interface {
	Relabel(d extract.Distro, pkgs []schema.Package)
}

// osReleaseBeside reads a file named os-release in the inventory file's
// directory, the way an exported dpkg status, apk database or rpm list is
// usually shipped with the host's /etc/os-release. ok is false when there
// is none or it names no release patchgrid maps.
func osReleaseBeside(path string) (o schema.OS, ok bool, warn []string) {
	p := filepath.Join(filepath.Dir(path), "os-release")
	f, err := os.Open(p)
	if err != nil {
		return schema.OS{}, false, nil
	}
	defer f.Close()
	fields, err := osrelease.Parse(f)
	if err != nil {
		return schema.OS{}, false, []string{p + ": " + err.Error()}
	}
	o = schema.OS{ID: fields["ID"], VersionID: fields["VERSION_ID"], PrettyName: fields["PRETTY_NAME"], Ecosystem: osrelease.Ecosystem(fields)}
	if o.Ecosystem == "" {
		return schema.OS{}, false, []string{fmt.Sprintf("%s: no OSV ecosystem for ID=%q VERSION_ID=%q", p, o.ID, o.VersionID)}
	}
	return o, true, nil
}

var lockfileNames = map[string]bool{
	"go.mod": true, "package-lock.json": true, "yarn.lock": true, "pnpm-lock.yaml": true, "bun.lock": true,
	"requirements.txt": true, "Pipfile.lock": true, "poetry.lock": true, "uv.lock": true, "pom.xml": true,
	"gradle.lockfile": true, "Cargo.lock": true, "composer.lock": true, "Gemfile.lock": true,
}

func detect(path string) (string, error) {
	base := filepath.Base(path)
	if lockfileNames[base] {
		return FormatLockfile, nil
	}
	if base == "Packages" || base == "Packages.db" || base == "rpmdb.sqlite" {
		return FormatRPMDB, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var r io.Reader = f
	head := make([]byte, 2)
	n, _ := io.ReadFull(f, head)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if n == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	buf, err := io.ReadAll(io.LimitReader(r, 1<<16))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if sbom.Detect(buf) != "" {
		return FormatSBOM, nil
	}
	t := bytes.TrimSpace(buf)
	if len(t) > 0 && t[0] == '{' && bytes.Contains(t, []byte(`"rpms"`)) {
		return FormatRPMManifest, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(buf))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Package: "):
			return FormatDpkgStatus, nil
		case strings.HasPrefix(line, "P:"), strings.HasPrefix(line, "C:Q"):
			return FormatAPKDB, nil
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		}
		if _, err := rpm.ParseNEVRA(strings.TrimSpace(line)); err == nil {
			return FormatRPMQA, nil
		}
		break
	}
	return "", fmt.Errorf("%s: unknown inventory format (not dpkg status, apk installed, rpm -qa, rpm-manifest, SBOM or a known lockfile)", path)
}

var (
	reElRelease     = regexp.MustCompile(`\.el(\d+)`)
	reAlpineName    = regexp.MustCompile(`(?i)alpine-?v?(\d+)\.(\d+)`)
	reUbuntuBase    = regexp.MustCompile(`^(\d+)(?:\.\d+)*ubuntu`)
	reDebianBase    = regexp.MustCompile(`^(\d+)(?:\.\d+)*(?:\+deb\d+u\d+)?$`)
	ubuntuBaseFiles = map[int]string{10: "18.04", 11: "20.04", 12: "22.04", 13: "24.04"}
)

// guessOS infers the distro release from the packages themselves, then from
// the file name.
func guessOS(pkgs []schema.Package, path string) schema.OS {
	mk := func(id, ver string) schema.OS {
		f := map[string]string{"ID": id, "VERSION_ID": ver}
		return schema.OS{ID: id, VersionID: ver, Ecosystem: osrelease.Ecosystem(f)}
	}
	// SBOM packages and re-labelled packages carry the ecosystem already.
	for i := range pkgs {
		e := pkgs[i].Ecosystem
		if strings.Count(e, ":") >= 1 {
			parts := strings.Split(e, ":")
			switch parts[0] {
			case "Debian":
				return schema.OS{ID: "debian", VersionID: parts[1], Ecosystem: e}
			case "Ubuntu":
				return schema.OS{ID: "ubuntu", VersionID: parts[1], Ecosystem: e}
			case "Alpine":
				return schema.OS{ID: "alpine", VersionID: strings.TrimPrefix(parts[1], "v"), Ecosystem: e}
			case "Red Hat":
				return schema.OS{ID: "rhel", VersionID: parts[len(parts)-1], Ecosystem: e}
			}
		}
	}
	var elMajor, rhRelease string
	for i := range pkgs {
		p := &pkgs[i]
		switch {
		case p.Name == "base-files" && strings.HasPrefix(p.Ecosystem, "Debian"):
			if m := reUbuntuBase.FindStringSubmatch(p.Version); m != nil {
				major, _ := strconv.Atoi(m[1])
				if v, ok := ubuntuBaseFiles[major]; ok {
					return mk("ubuntu", v)
				}
			} else if m := reDebianBase.FindStringSubmatch(p.Version); m != nil {
				return mk("debian", m[1])
			}
		case p.Name == "redhat-release":
			rhRelease, _, _ = strings.Cut(p.Version, "-")
		}
		if elMajor == "" && strings.HasPrefix(p.Ecosystem, "Red Hat") {
			if m := reElRelease.FindStringSubmatch(p.Version); m != nil {
				elMajor = m[1]
			}
		}
	}
	if rhRelease != "" {
		return mk("rhel", rhRelease)
	}
	if elMajor != "" {
		return mk("rhel", elMajor)
	}
	if m := reAlpineName.FindStringSubmatch(filepath.Base(path)); m != nil && len(pkgs) > 0 && strings.HasPrefix(pkgs[0].Ecosystem, "Alpine") {
		return mk("alpine", m[1]+"."+m[2])
	}
	return schema.OS{}
}
