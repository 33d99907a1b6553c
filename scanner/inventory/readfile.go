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

// ReadFile detects the format of one inventory file (a dpkg status file, an
// apk installed database, an rpm database, rpm -qa output, an rpm-manifest
// JSON, an SBOM or a language lockfile), reads its packages and guesses the OS they come from:
// from base-files (Debian/Ubuntu), redhat-release and .elN releases (RHEL),
// SBOM distro qualifiers, or distro names in the file name (alpine3.18).
// Packages are labelled with that OS's ecosystem and Location is path.
func ReadFile(ctx context.Context, path string) (*File, error) {
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
		return &File{Format: format, Packages: res.Packages, Warnings: res.Warnings}, nil
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
	// to guess the OS and again with it.
	first, err := extractFile(ctx, ex, path, path, extract.Distro{})
	if err != nil {
		return nil, fmt.Errorf("read %s as %s: %w", path, format, err)
	}
	guess := guessOS(first.Packages, path)
	res := first
	if format != FormatSBOM && guess.Ecosystem != "" {
		res, err = extractFile(ctx, ex, path, path, extract.Distro{ID: guess.ID, VersionID: guess.VersionID, Ecosystem: guess.Ecosystem})
		if err != nil {
			return nil, fmt.Errorf("read %s as %s: %w", path, format, err)
		}
	}
	sortPackages(res.Packages)
	return &File{Format: format, OS: guess, Packages: res.Packages, Warnings: res.Warnings}, nil
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
