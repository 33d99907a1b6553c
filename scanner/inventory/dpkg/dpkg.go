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

// Relabel gives packages this extractor read the ecosystem and PURL they
// get when extracted with distro d: the same packages as extracting again.
func (Extractor) Relabel(d extract.Distro, pkgs []inventory.Package) {
	eco := ecosystem(d)
	for i := range pkgs {
		pkgs[i].Ecosystem = eco
		pkgs[i].PURL = PURL(d, &pkgs[i])
	}
}

// paragraph holds the fields of one status paragraph that a package is
// built from. A struct, not a map: the extractor runs on every agent scan,
// and a map per paragraph was a large part of its cost.
type paragraph struct {
	pkg, version, arch, source       string
	hasStatus, wellFormed, installed bool
	badStatus                        string // a Status without three words, for the warning
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
		para      paragraph
		inPara    bool
		inField   bool // the last line started a field (continuations belong to it)
		lineNo    int
		paraStart int
	)
	flush := func() {
		if inPara {
			if p, ok := toPackage(&para, in, paraStart, &res); ok {
				res.Packages = append(res.Packages, p)
			}
		}
		para, inPara, inField = paragraph{}, false, false
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
		if !inPara {
			inPara, paraStart = true, lineNo
		}
		if line[0] == ' ' || line[0] == '\t' {
			// Continuation lines only matter for fields we do not read
			// (Description, Conffiles); keep the first line of each field.
			if !inField {
				res.Warnf(in.Path, "line %d: continuation line outside a field", lineNo)
			}
			continue
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			res.Warnf(in.Path, "line %d: not a 'Field: value' line", lineNo)
			inField = false
			continue
		}
		inField = true
		switch string(k) { // no allocation: the conversion only compares
		case "Package":
			para.pkg = string(bytes.TrimSpace(v))
		case "Status":
			para.hasStatus = true
			para.wellFormed, para.installed = installedStatus(v)
			para.badStatus = ""
			if !para.wellFormed {
				para.badStatus = string(bytes.TrimSpace(v))
			}
		case "Version":
			para.version = string(bytes.TrimSpace(v))
		case "Architecture":
			para.arch = internArch(bytes.TrimSpace(v))
		case "Source":
			para.source = string(bytes.TrimSpace(v))
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("read %s after line %d: %w", in.Path, lineNo, err)
	}
	return res, nil
}

// internArch returns the common architectures as constants, so that
// hundreds of packages share one string.
func internArch(b []byte) string {
	switch string(b) {
	case "amd64":
		return "amd64"
	case "all":
		return "all"
	case "arm64":
		return "arm64"
	case "i386":
		return "i386"
	}
	return string(b)
}

// installedStatus reports whether a Status value ("want flag status") has
// three words, and whether the last is "installed".
func installedStatus(st []byte) (wellFormed, installed bool) {
	var last []byte
	n := 0
	for f := range bytes.FieldsSeq(st) {
		if n == 3 {
			return false, false
		}
		last = f
		n++
	}
	return n == 3, n == 3 && string(last) == "installed"
}

func toPackage(f *paragraph, in *extract.Input, line int, res *extract.Result) (inventory.Package, bool) {
	if f.hasStatus {
		if !f.wellFormed {
			res.Warnf(in.Path, "line %d: package %q has malformed Status %q", line, f.pkg, f.badStatus)
			return inventory.Package{}, false
		}
		if !f.installed {
			return inventory.Package{}, false
		}
	}
	name, version := f.pkg, f.version
	if name == "" || version == "" {
		res.Warnf(in.Path, "line %d: paragraph without Package or Version (Package %q, Version %q)", line, name, version)
		return inventory.Package{}, false
	}
	p := inventory.Package{
		Ecosystem:     ecosystem(in.Distro),
		Name:          name,
		Version:       version,
		Arch:          f.arch,
		SourceName:    name,
		SourceVersion: version,
		Location:      in.Path,
	}
	if src := f.source; src != "" {
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
	var distro, upstream string
	if d.ID != "" && d.VersionID != "" {
		distro = d.ID + "-" + d.VersionID
	}
	if p.SourceName != "" && p.SourceName != p.Name {
		upstream = p.SourceName
	}
	if strings.Contains(ns, "/") {
		// Several namespace segments: the library's rules for them.
		return purlLibrary(ns, p, distro, upstream)
	}
	// The library's canonical form, written into one buffer: the scanner
	// builds a PURL per package, and the library's allocations were a
	// quarter of a dpkg scan (TestPURLMatchesLibrary holds the two equal).
	var b strings.Builder
	b.Grow(len("pkg:deb//@?arch=&distro=&upstream=") + len(ns) + len(p.Name) + len(p.Version) + len(p.Arch) + len(distro) + len(upstream) + 16)
	b.WriteString("pkg:deb/")
	if ns != "" {
		purlEscape(&b, ns)
		b.WriteByte('/')
	}
	purlEscape(&b, p.Name)
	if p.Version != "" {
		b.WriteByte('@')
		purlEscape(&b, p.Version)
	}
	sep := byte('?')
	for _, q := range [...][2]string{{"arch", p.Arch}, {"distro", distro}, {"upstream", upstream}} {
		if q[1] == "" {
			continue
		}
		b.WriteByte(sep)
		b.WriteString(q[0])
		b.WriteByte('=')
		purlEscape(&b, q[1])
		sep = '&'
	}
	return b.String()
}

// purlLibrary is PURL through packageurl-go.
func purlLibrary(ns string, p *inventory.Package, distro, upstream string) string {
	q := packageurl.Qualifiers{}
	for _, kv := range [...][2]string{{"arch", p.Arch}, {"distro", distro}, {"upstream", upstream}} {
		if kv[1] != "" {
			q = append(q, packageurl.Qualifier{Key: kv[0], Value: kv[1]})
		}
	}
	return packageurl.NewPackageURL("deb", ns, p.Name, p.Version, q, "").ToString()
}

// purlEscape percent-encodes s as packageurl-go does in path segments and
// qualifier values: all but ASCII letters, digits and "-._~:".
func purlEscape(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0x0f])
	}
}
