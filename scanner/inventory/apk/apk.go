// Package apk reads Alpine's installed database (/lib/apk/db/installed).
package apk

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/schemas/inventory"
)

// MaxLineLen bounds one line of the database.
const MaxLineLen = 4 << 20

// Extractor reads the apk installed database.
type Extractor struct{}

// Name implements extract.Extractor.
func (Extractor) Name() string { return "os/apk" }

// FileRequired implements extract.Extractor.
func (Extractor) FileRequired(p string) bool { return p == "lib/apk/db/installed" }

// Extract implements extract.Extractor. Records are blank-line separated
// blocks of "K:value" lines; P (name), V (version), A (arch) and o (origin,
// the source package secdb is keyed by) are read. A record without P or V is
// skipped with a warning.
func (Extractor) Extract(ctx context.Context, in *extract.Input) (extract.Result, error) {
	var res extract.Result
	sc := bufio.NewScanner(in.Reader)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineLen)
	var (
		rec      map[byte]string
		lineNo   int
		recStart int
	)
	flush := func() {
		if rec != nil {
			if p, ok := toPackage(rec, in, recStart, &res); ok {
				res.Packages = append(res.Packages, p)
			}
		}
		rec = nil
	}
	for sc.Scan() {
		lineNo++
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			flush()
			if lineNo%1024 == 0 && ctx.Err() != nil {
				return res, ctx.Err()
			}
			continue
		}
		if rec == nil {
			rec = make(map[byte]string, 4)
			recStart = lineNo
		}
		if len(line) < 2 || line[1] != ':' {
			res.Warnf(in.Path, "line %d: not a 'K:value' line", lineNo)
			continue
		}
		switch k := line[0]; k {
		case 'P', 'V', 'A', 'o':
			rec[k] = string(bytes.TrimSpace(line[2:]))
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("read %s after line %d: %w", in.Path, lineNo, err)
	}
	return res, nil
}

func toPackage(r map[byte]string, in *extract.Input, line int, res *extract.Result) (inventory.Package, bool) {
	name, version := r['P'], r['V']
	if name == "" || version == "" {
		res.Warnf(in.Path, "line %d: record without P: or V: (P %q, V %q)", line, name, version)
		return inventory.Package{}, false
	}
	eco := in.Distro.Ecosystem
	if eco == "" {
		eco = "Alpine"
	}
	p := inventory.Package{
		Ecosystem:     eco,
		Name:          name,
		Version:       version,
		Arch:          r['A'],
		SourceName:    r['o'],
		SourceVersion: version,
		Location:      in.Path,
	}
	if p.SourceName == "" {
		p.SourceName = name
	}
	p.PURL = PURL(in.Distro, &p)
	return p, true
}

// PURL is pkg:apk/<distro>/<name>@<version>?arch=&distro=<version_id>.
func PURL(d extract.Distro, p *inventory.Package) string {
	ns := d.ID
	if ns == "" {
		ns = "alpine"
	}
	q := map[string]string{}
	if p.Arch != "" {
		q["arch"] = p.Arch
	}
	if d.VersionID != "" {
		q["distro"] = d.VersionID
	}
	if p.SourceName != "" && p.SourceName != p.Name {
		q["upstream"] = p.SourceName
	}
	return packageurl.NewPackageURL("apk", strings.ToLower(ns), p.Name, p.Version, packageurl.QualifiersFromMap(q), "").ToString()
}
