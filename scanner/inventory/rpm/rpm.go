// Package rpm reads RPM package lists in the text forms a host or a catalog
// can give without linking the rpm database: `rpm -qa` output (NEVRA lines),
// `rpm -qa --qf` tab-separated output (QueryFormat, which carries the source
// RPM), and Red Hat container-catalog rpm-manifest JSON.
//
// Epochs: a missing epoch and epoch 0 are the same version for rpm, so
// Version is written "V-R" for both and "E:V-R" only for E > 0; the matcher
// reads a missing epoch as 0. When a manifest leaves the binary epoch out but
// srpm_nevra carries one, that epoch is used for the binary too (an epoch is
// set in the spec file and shared by all its subpackages); without it the
// ubi8 manifests would read lvm2-libs 2.03 as older than an advisory's 8:2.03.
package rpm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/schemas/inventory"
)

// QueryFormat is the `rpm -qa --qf` format the tab-separated form expects:
// name, epoch ("(none)" when absent), version, release, arch, source RPM.
const QueryFormat = `%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n`

// MaxManifestSize bounds an rpm-manifest JSON document.
const MaxManifestSize = 256 << 20

// NEVRA is one parsed rpm identity. Epoch is "" when absent.
type NEVRA struct {
	Name, Epoch, Version, Release, Arch string
}

// EVR is the version string patchgrid stores: "V-R", or "E:V-R" when the
// epoch is present and not 0.
func (n NEVRA) EVR() string {
	evr := n.Version
	if n.Release != "" {
		evr += "-" + n.Release
	}
	if n.Epoch != "" && n.Epoch != "0" {
		evr = n.Epoch + ":" + evr
	}
	return evr
}

var knownArches = map[string]bool{
	"x86_64": true, "noarch": true, "aarch64": true, "ppc64le": true, "s390x": true,
	"i686": true, "i586": true, "i386": true, "armv7hl": true, "ppc64": true, "src": true, "nosrc": true,
}

// ParseNEVRA parses "name-[E:]version-release[.arch]". The arch suffix is
// only split off when it is a known rpm arch, since releases contain dots.
func ParseNEVRA(s string) (NEVRA, error) {
	var n NEVRA
	if i := strings.LastIndexByte(s, '.'); i > 0 && knownArches[s[i+1:]] {
		n.Arch = s[i+1:]
		s = s[:i]
	}
	i := strings.LastIndexByte(s, '-')
	if i <= 0 || i == len(s)-1 {
		return n, fmt.Errorf("%q has no -release", s)
	}
	n.Release, s = s[i+1:], s[:i]
	i = strings.LastIndexByte(s, '-')
	if i <= 0 || i == len(s)-1 {
		return n, fmt.Errorf("%q has no name-version", s)
	}
	n.Name, n.Version = s[:i], s[i+1:]
	if e, v, ok := strings.Cut(n.Version, ":"); ok {
		if _, err := strconv.ParseUint(e, 10, 32); err != nil || v == "" {
			return n, fmt.Errorf("bad epoch in %q", n.Version)
		}
		n.Epoch, n.Version = e, v
	}
	return n, nil
}

// QAExtractor reads `rpm -qa` output, plain or with QueryFormat.
type QAExtractor struct{}

// Name implements extract.Extractor.
func (QAExtractor) Name() string { return "os/rpm-qa" }

// FileRequired implements extract.Extractor: rpm -qa output is not a file
// a host has; it is read only when named explicitly.
func (QAExtractor) FileRequired(string) bool { return false }

// Extract implements extract.Extractor. Lines starting with '#' are comments.
func (QAExtractor) Extract(ctx context.Context, in *extract.Input) (extract.Result, error) {
	var res extract.Result
	sc := bufio.NewScanner(in.Reader)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		if lineNo%4096 == 0 && ctx.Err() != nil {
			return res, ctx.Err()
		}
		line := string(bytes.TrimSpace(sc.Bytes()))
		if line == "" || line[0] == '#' {
			continue
		}
		var (
			n         NEVRA
			sourceRPM string
			err       error
		)
		if strings.Contains(line, "\t") {
			n, sourceRPM, err = parseQF(line)
		} else {
			n, err = ParseNEVRA(line)
		}
		if err != nil {
			res.Warnf(in.Path, "line %d: %v", lineNo, err)
			continue
		}
		if n.Name == "gpg-pubkey" {
			continue // imported signing keys, not software
		}
		p := NewPackage(in, n)
		if sourceRPM != "" && sourceRPM != "(none)" {
			src, err := ParseNEVRA(strings.TrimSuffix(sourceRPM, ".rpm"))
			if err != nil {
				res.Warnf(in.Path, "line %d: source rpm %q: %v", lineNo, sourceRPM, err)
			} else {
				src.Epoch = n.Epoch
				p.SourceName, p.SourceVersion = src.Name, src.EVR()
			}
		}
		p.PURL = PURL(in.Distro, &p, n.Epoch)
		res.Packages = append(res.Packages, p)
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("read %s after line %d: %w", in.Path, lineNo, err)
	}
	return res, nil
}

func parseQF(line string) (NEVRA, string, error) {
	f := strings.Split(line, "\t")
	if len(f) != 6 {
		return NEVRA{}, "", fmt.Errorf("%d tab-separated fields, want 6 (%s)", len(f), strings.TrimSpace(QueryFormat))
	}
	n := NEVRA{Name: f[0], Epoch: f[1], Version: f[2], Release: f[3], Arch: f[4]}
	if n.Epoch == "(none)" {
		n.Epoch = ""
	}
	if n.Arch == "(none)" {
		n.Arch = ""
	}
	if n.Epoch != "" {
		if _, err := strconv.ParseUint(n.Epoch, 10, 32); err != nil {
			return n, "", fmt.Errorf("bad epoch %q", n.Epoch)
		}
	}
	if n.Name == "" || n.Version == "" {
		return n, "", fmt.Errorf("empty name or version")
	}
	return n, f[5], nil
}

// NewPackage labels n with the input's distro and location.
func NewPackage(in *extract.Input, n NEVRA) inventory.Package {
	eco := in.Distro.Ecosystem
	if eco == "" {
		eco = "Red Hat"
	}
	return inventory.Package{
		Ecosystem: eco,
		Name:      n.Name,
		Version:   n.EVR(),
		Arch:      n.Arch,
		Location:  in.Path,
	}
}

// ManifestExtractor reads Red Hat container-catalog rpm-manifest JSON.
type ManifestExtractor struct{}

// Name implements extract.Extractor.
func (ManifestExtractor) Name() string { return "os/rpm-manifest" }

// FileRequired implements extract.Extractor: a manifest comes from the
// container catalog, not from a host's filesystem, so it is only read when
// named explicitly.
func (ManifestExtractor) FileRequired(string) bool { return false }

type manifestRPM struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Release      string `json:"release"`
	Architecture string `json:"architecture"`
	SrpmName     string `json:"srpm_name"`
	SrpmNEVRA    string `json:"srpm_nevra"`
	NVRA         string `json:"nvra"`
	NERVA        string `json:"nerva"` // sic: older catalog responses
}

// Extract implements extract.Extractor.
func (ManifestExtractor) Extract(ctx context.Context, in *extract.Input) (extract.Result, error) {
	var res extract.Result
	data, err := io.ReadAll(io.LimitReader(in.Reader, MaxManifestSize+1))
	if err != nil {
		return res, fmt.Errorf("read %s: %w", in.Path, err)
	}
	if len(data) > MaxManifestSize {
		return res, fmt.Errorf("%s is larger than %d bytes", in.Path, MaxManifestSize)
	}
	var doc struct {
		RPMs []json.RawMessage `json:"rpms"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return res, fmt.Errorf("parse %s: %w", in.Path, err)
	}
	for i, raw := range doc.RPMs {
		if i%1024 == 0 && ctx.Err() != nil {
			return res, ctx.Err()
		}
		var r manifestRPM
		if err := json.Unmarshal(raw, &r); err != nil {
			res.Warnf(in.Path, "rpms[%d]: %v", i, err)
			continue
		}
		n, err := r.nevra()
		if err != nil {
			res.Warnf(in.Path, "rpms[%d] (%s): %v", i, r.Name, err)
			continue
		}
		var src NEVRA
		if r.SrpmNEVRA != "" {
			if src, err = ParseNEVRA(r.SrpmNEVRA); err != nil {
				res.Warnf(in.Path, "rpms[%d] (%s): srpm_nevra: %v", i, r.Name, err)
			}
		}
		if n.Epoch == "" {
			n.Epoch = src.Epoch
		}
		p := NewPackage(in, n)
		p.SourceName = r.SrpmName
		if p.SourceName == "" {
			p.SourceName = src.Name
		}
		if src.Version != "" {
			src.Epoch = n.Epoch
			p.SourceVersion = src.EVR()
		}
		p.PURL = PURL(in.Distro, &p, n.Epoch)
		res.Packages = append(res.Packages, p)
	}
	return res, nil
}

func (r *manifestRPM) nevra() (NEVRA, error) {
	if r.Name != "" && r.Version != "" {
		n := NEVRA{Name: r.Name, Version: r.Version, Release: r.Release, Arch: r.Architecture}
		if e, v, ok := strings.Cut(n.Version, ":"); ok {
			if _, err := strconv.ParseUint(e, 10, 32); err != nil || v == "" {
				return n, fmt.Errorf("bad epoch in version %q", r.Version)
			}
			n.Epoch, n.Version = e, v
		}
		return n, nil
	}
	for _, s := range []string{r.NVRA, r.NERVA} {
		if s != "" {
			n, err := ParseNEVRA(s)
			if err == nil && n.Arch == "" {
				n.Arch = r.Architecture
			}
			return n, err
		}
	}
	return NEVRA{}, fmt.Errorf("no version, nvra or nerva")
}

// PURL is pkg:rpm/<vendor>/<name>@<V-R>?arch=&epoch=&distro=<id>-<version_id>&upstream=<srpm>.
func PURL(d extract.Distro, p *inventory.Package, epoch string) string {
	ns := d.ID
	switch ns {
	case "", "rhel":
		ns = "redhat"
	}
	ver := p.Version
	if _, v, ok := strings.Cut(ver, ":"); ok {
		ver = v
	}
	q := map[string]string{}
	if p.Arch != "" {
		q["arch"] = p.Arch
	}
	if epoch != "" && epoch != "0" {
		q["epoch"] = epoch
	}
	if d.ID != "" && d.VersionID != "" {
		q["distro"] = d.ID + "-" + d.VersionID
	}
	if p.SourceName != "" && p.SourceName != p.Name {
		q["upstream"] = p.SourceName
	}
	return packageurl.NewPackageURL("rpm", ns, p.Name, ver, packageurl.QualifiersFromMap(q), "").ToString()
}
