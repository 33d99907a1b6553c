// Package dpkg reads dpkg's status database (/var/lib/dpkg/status) and the
// per-package files distroless images keep in /var/lib/dpkg/status.d/.
package dpkg

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/schemas/inventory"
)

// MaxLineLen bounds one line of a status file; real ones stay far below.
const MaxLineLen = 4 << 20

// Extractor reads dpkg status files.
type Extractor struct{}

// Name implements extract.Extractor.
func (Extractor) Name() string { return "os/dpkg" }

// FileRequired implements extract.Extractor.
func (Extractor) FileRequired(p string) bool {
	if p == "var/lib/dpkg/status" {
		return true
	}
	dir, base := path.Split(p)
	// status.d holds one paragraph per package plus *.md5sums files.
	return dir == "var/lib/dpkg/status.d/" && base != "" && !strings.HasSuffix(base, ".md5sums")
}

// Extract implements extract.Extractor. Only packages whose status word is
// "installed" are kept (any want flag: "install", "hold", "deinstall" all
// still have the files on disk); status.d paragraphs have no Status field
// and are installed by definition.
func (Extractor) Extract(ctx context.Context, in *extract.Input) (extract.Result, error) {
	var res extract.Result
	sc := bufio.NewScanner(in.Reader)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineLen)
	var (
		para      map[string]string
		lastKey   string
		lineNo    int
		paraStart int
	)
	flush := func() {
		if para != nil {
			if p, ok := toPackage(para, in, paraStart, &res); ok {
				res.Packages = append(res.Packages, p)
			}
		}
		para, lastKey = nil, ""
	}
	for sc.Scan() {
		lineNo++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			flush()
			if lineNo%1024 == 0 && ctx.Err() != nil {
				return res, ctx.Err()
			}
			continue
		}
		if para == nil {
			para = make(map[string]string, 8)
			paraStart = lineNo
		}
		if line[0] == ' ' || line[0] == '\t' {
			// Continuation lines only matter for fields we do not read
			// (Description, Conffiles); keep the first line of each field.
			if lastKey == "" {
				res.Warnf(in.Path, "line %d: continuation line outside a field", lineNo)
			}
			continue
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			res.Warnf(in.Path, "line %d: not a 'Field: value' line", lineNo)
			lastKey = ""
			continue
		}
		lastKey = string(k)
		switch lastKey {
		case "Package", "Status", "Version", "Architecture", "Source":
			para[lastKey] = string(bytes.TrimSpace(v))
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("read %s after line %d: %w", in.Path, lineNo, err)
	}
	return res, nil
}

func toPackage(f map[string]string, in *extract.Input, line int, res *extract.Result) (inventory.Package, bool) {
	if st, ok := f["Status"]; ok {
		words := strings.Fields(st)
		if len(words) != 3 {
			res.Warnf(in.Path, "line %d: package %q has malformed Status %q", line, f["Package"], st)
			return inventory.Package{}, false
		}
		if words[2] != "installed" {
			return inventory.Package{}, false
		}
	}
	name, version := f["Package"], f["Version"]
	if name == "" || version == "" {
		res.Warnf(in.Path, "line %d: paragraph without Package or Version (Package %q, Version %q)", line, name, version)
		return inventory.Package{}, false
	}
	p := inventory.Package{
		Ecosystem:     ecosystem(in.Distro),
		Name:          name,
		Version:       version,
		Arch:          f["Architecture"],
		SourceName:    name,
		SourceVersion: version,
		Location:      in.Path,
	}
	if src := f["Source"]; src != "" {
		// "Source: name" or "Source: name (version)": the source version
		// differs from the binary's for binNMUs and some multi-binary sources.
		sn, sv, hasVer := strings.Cut(src, " ")
		p.SourceName = sn
		if hasVer {
			sv = strings.TrimSpace(sv)
			if !strings.HasPrefix(sv, "(") || !strings.HasSuffix(sv, ")") || len(sv) < 3 {
				res.Warnf(in.Path, "line %d: package %q has malformed Source %q; using the binary version", line, name, src)
			} else {
				p.SourceVersion = strings.TrimSpace(sv[1 : len(sv)-1])
			}
		}
	}
	if unsigned, ok := unsignedKernelSource(p.SourceName); ok {
		// Signed kernel images are built by a wrapper source package whose
		// own version (6.1.76+1) is not the kernel's; advisories name the
		// kernel source (linux), whose version the image binary carries.
		p.SourceName, p.SourceVersion = unsigned, p.Version
	}
	p.PURL = PURL(in.Distro, &p)
	return p, true
}

// debianKernelArchs are the suffixes of Debian's linux-signed-<arch> sources.
var debianKernelArchs = map[string]bool{"amd64": true, "arm64": true, "i386": true, "armhf": true, "armel": true, "ppc64el": true, "s390x": true, "mips64el": true, "riscv64": true}

// unsignedKernelSource maps a signed kernel's wrapper source to the kernel
// source advisories are keyed by: Debian linux-signed-amd64 → linux, Ubuntu
// linux-signed-hwe-6.5 → linux-hwe-6.5, linux-signed → linux.
func unsignedKernelSource(src string) (string, bool) {
	rest, ok := strings.CutPrefix(src, "linux-signed")
	if !ok {
		return "", false
	}
	if rest == "" || debianKernelArchs[strings.TrimPrefix(rest, "-")] {
		return "linux", true
	}
	return "linux" + rest, true
}

func ecosystem(d extract.Distro) string {
	if d.Ecosystem != "" {
		return d.Ecosystem
	}
	if d.ID == "ubuntu" {
		return "Ubuntu"
	}
	return "Debian"
}

// PURL is the package URL of a deb package: pkg:deb/<distro>/<name>@<version>
// with arch, distro=<id>-<version_id> and upstream=<source> qualifiers.
func PURL(d extract.Distro, p *inventory.Package) string {
	ns := d.ID
	if ns == "" {
		ns = strings.ToLower(strings.SplitN(p.Ecosystem, ":", 2)[0])
	}
	q := map[string]string{}
	if p.Arch != "" {
		q["arch"] = p.Arch
	}
	if d.ID != "" && d.VersionID != "" {
		q["distro"] = d.ID + "-" + d.VersionID
	}
	if p.SourceName != "" && p.SourceName != p.Name {
		q["upstream"] = p.SourceName
	}
	return packageurl.NewPackageURL("deb", ns, p.Name, p.Version, packageurl.QualifiersFromMap(q), "").ToString()
}
