// Package sbom reads the packages of an SBOM through their package URLs:
// CycloneDX JSON and XML, SPDX 2.x JSON, and syft JSON, each optionally
// gzip-compressed. Components without a purl, or whose purl names nothing
// matchable (oci, generic), are counted in one warning, not guessed at.
package sbom

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/scanner/inventory/osrelease"
	"github.com/patchgrid/patchgrid/schemas/inventory"
)

// MaxSize bounds an SBOM after decompression.
const MaxSize = 512 << 20

// Extractor reads SBOM files.
type Extractor struct{}

// Name implements extract.Extractor.
func (Extractor) Name() string { return "sbom" }

// FileRequired implements extract.Extractor. SBOMs are read when named with
// --sbom, never discovered on a filesystem walk.
func (Extractor) FileRequired(string) bool { return false }

type component struct {
	PURL       string
	Properties map[string]string
}

// docOS is the operating system an SBOM document names in its metadata:
// syft's "distro", a CycloneDX component of type operating-system, an SPDX
// package whose primaryPackagePurpose is OPERATING-SYSTEM.
type docOS struct{ ID, VersionID string }

// Extract implements extract.Extractor. in.Distro labels distro packages
// whose purl has no distro qualifier; without it, the OS the document's
// metadata names does (and is returned as Result.OS).
func (Extractor) Extract(ctx context.Context, in *extract.Input) (extract.Result, error) {
	var res extract.Result
	data, err := readAll(in.Reader)
	if err != nil {
		return res, fmt.Errorf("read SBOM %s: %w", in.Path, err)
	}
	comps, format, dos, err := parse(data)
	if err != nil {
		return res, fmt.Errorf("parse SBOM %s: %w", in.Path, err)
	}
	distro := in.Distro
	if dos.ID != "" {
		d := extract.Distro{ID: dos.ID, VersionID: dos.VersionID,
			Ecosystem: osrelease.Ecosystem(map[string]string{"ID": dos.ID, "VERSION_ID": dos.VersionID})}
		res.OS = &d
		if distro.Ecosystem == "" {
			distro = d
		}
	}
	seen := make(map[inventory.Package]bool, len(comps))
	var noPURL, unsupported int
	for i, c := range comps {
		if i%1024 == 0 && ctx.Err() != nil {
			return res, ctx.Err()
		}
		if c.PURL == "" {
			noPURL++
			continue
		}
		p, err := FromPURL(c.PURL, distro)
		if errors.Is(err, errUnsupported) {
			unsupported++
			continue
		}
		if err != nil {
			res.Warnf(in.Path, "%s component %d: %v", format, i, err)
			continue
		}
		// Trivy records the source package in properties, not the purl.
		if sn := c.Properties["aquasecurity:trivy:SrcName"]; sn != "" {
			p.SourceName = sn
			if sv := c.Properties["aquasecurity:trivy:SrcVersion"]; sv != "" {
				if rel := c.Properties["aquasecurity:trivy:SrcRelease"]; rel != "" {
					sv += "-" + rel
				}
				if ep := c.Properties["aquasecurity:trivy:SrcEpoch"]; ep != "" && ep != "0" {
					sv = ep + ":" + sv
				}
				p.SourceVersion = sv
			}
		}
		p.Location = in.Path
		if seen[p] {
			continue // CycloneDX bom-refs and SPDX duplicates list one package twice
		}
		seen[p] = true
		res.Packages = append(res.Packages, p)
	}
	inheritRelease(res.Packages)
	if noPURL > 0 {
		res.Warnf(in.Path, "%d %s components without a purl skipped", noPURL, format)
	}
	if unsupported > 0 {
		res.Warnf(in.Path, "%d %s components with a non-package purl type (oci, generic, ...) skipped", unsupported, format)
	}
	return res, nil
}

func readAll(r io.Reader) ([]byte, error) {
	var head [2]byte
	n, err := io.ReadFull(r, head[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var br io.Reader = io.MultiReader(bytes.NewReader(head[:n]), r)
	if n == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		br = zr
	}
	data, err := io.ReadAll(io.LimitReader(br, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("larger than %d bytes", MaxSize)
	}
	return data, nil
}

// Detect names the SBOM format of data ("cyclonedx-json", "cyclonedx-xml",
// "spdx-json", "syft-json"), or "" when it is none of them.
func Detect(data []byte) string {
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return ""
	}
	if t[0] == '<' {
		if bytes.Contains(t[:min(len(t), 4096)], []byte("cyclonedx")) {
			return "cyclonedx-xml"
		}
		return ""
	}
	if t[0] != '{' {
		return ""
	}
	head := t[:min(len(t), 1<<16)]
	switch {
	case bytes.Contains(head, []byte(`"bomFormat"`)):
		return "cyclonedx-json"
	case bytes.Contains(head, []byte(`"spdxVersion"`)):
		return "spdx-json"
	case bytes.Contains(head, []byte(`"artifacts"`)) && bytes.Contains(t, []byte(`"artifactRelationships"`)):
		return "syft-json"
	}
	return ""
}

func parse(data []byte) ([]component, string, docOS, error) {
	format := Detect(data)
	var (
		comps []component
		os    docOS
		err   error
	)
	switch format {
	case "cyclonedx-json":
		comps, os, err = parseCycloneDXJSON(data)
	case "cyclonedx-xml":
		comps, os, err = parseCycloneDXXML(data)
	case "spdx-json":
		comps, os, err = parseSPDXJSON(data)
	case "syft-json":
		comps, os, err = parseSyftJSON(data)
	default:
		return nil, "", docOS{}, errors.New("not a CycloneDX, SPDX JSON or syft JSON document")
	}
	os.ID = strings.ToLower(strings.TrimSpace(os.ID))
	os.VersionID = strings.TrimSpace(os.VersionID)
	return comps, format, os, err
}

type cdxProperty struct {
	Name  string `json:"name" xml:"name,attr"`
	Value string `json:"value" xml:",chardata"`
}

type cdxComponent struct {
	Type       string         `json:"type" xml:"type,attr"`
	Name       string         `json:"name" xml:"name"`
	Version    string         `json:"version" xml:"version"`
	PURL       string         `json:"purl" xml:"purl"`
	Properties []cdxProperty  `json:"properties" xml:"properties>property"`
	Components []cdxComponent `json:"components" xml:"components>component"`
}

func flattenCDX(cs []cdxComponent, out []component, os *docOS, depth int) ([]component, error) {
	if depth > 64 {
		return out, errors.New("components nested deeper than 64 levels")
	}
	for _, c := range cs {
		if c.Type == "operating-system" && os.ID == "" {
			*os = docOS{ID: c.Name, VersionID: c.Version}
		}
		var props map[string]string
		if len(c.Properties) > 0 {
			props = make(map[string]string, len(c.Properties))
			for _, p := range c.Properties {
				props[p.Name] = strings.TrimSpace(p.Value)
			}
		}
		out = append(out, component{PURL: strings.TrimSpace(c.PURL), Properties: props})
		var err error
		if out, err = flattenCDX(c.Components, out, os, depth+1); err != nil {
			return out, err
		}
	}
	return out, nil
}

func parseCycloneDXJSON(data []byte) ([]component, docOS, error) {
	var doc struct {
		Metadata struct {
			Component *cdxComponent `json:"component"`
		} `json:"metadata"`
		Components []cdxComponent `json:"components"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, docOS{}, err
	}
	var os docOS
	if m := doc.Metadata.Component; m != nil && m.Type == "operating-system" {
		os = docOS{ID: m.Name, VersionID: m.Version}
	}
	comps, err := flattenCDX(doc.Components, nil, &os, 0)
	return comps, os, err
}

func parseCycloneDXXML(data []byte) ([]component, docOS, error) {
	var doc struct {
		Metadata struct {
			Component *cdxComponent `xml:"component"`
		} `xml:"metadata"`
		Components []cdxComponent `xml:"components>component"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, docOS{}, err
	}
	var os docOS
	if m := doc.Metadata.Component; m != nil && m.Type == "operating-system" {
		os = docOS{ID: m.Name, VersionID: m.Version}
	}
	comps, err := flattenCDX(doc.Components, nil, &os, 0)
	return comps, os, err
}

func parseSPDXJSON(data []byte) ([]component, docOS, error) {
	var doc struct {
		Packages []struct {
			Name         string `json:"name"`
			VersionInfo  string `json:"versionInfo"`
			Purpose      string `json:"primaryPackagePurpose"`
			ExternalRefs []struct {
				Type    string `json:"referenceType"`
				Locator string `json:"referenceLocator"`
			} `json:"externalRefs"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, docOS{}, err
	}
	var os docOS
	out := make([]component, 0, len(doc.Packages))
	for _, p := range doc.Packages {
		if os.ID == "" && strings.EqualFold(strings.ReplaceAll(p.Purpose, "_", "-"), "OPERATING-SYSTEM") {
			os = docOS{ID: p.Name, VersionID: p.VersionInfo}
		}
		var c component
		for _, r := range p.ExternalRefs {
			if r.Type == "purl" {
				c.PURL = strings.TrimSpace(r.Locator)
				break
			}
		}
		out = append(out, c)
	}
	return out, os, nil
}

func parseSyftJSON(data []byte) ([]component, docOS, error) {
	var doc struct {
		Artifacts []struct {
			PURL string `json:"purl"`
		} `json:"artifacts"`
		// Older syft writes {name, version}, newer os-release style {id, versionID}.
		Distro struct {
			ID        string `json:"id"`
			VersionID string `json:"versionID"`
			Name      string `json:"name"`
			Version   string `json:"version"`
		} `json:"distro"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, docOS{}, err
	}
	out := make([]component, 0, len(doc.Artifacts))
	for _, a := range doc.Artifacts {
		out = append(out, component{PURL: strings.TrimSpace(a.PURL)})
	}
	os := docOS{ID: doc.Distro.ID, VersionID: doc.Distro.VersionID}
	if os.ID == "" {
		os.ID = doc.Distro.Name
	}
	if os.VersionID == "" {
		os.VersionID = doc.Distro.Version
	}
	return out, os, nil
}

// inheritRelease labels distro packages whose purl lacked a distro qualifier
// with the release other packages of the same distro in the document name:
// image SBOMs often qualify only some purls (repository rpms, for example).
func inheritRelease(pkgs []inventory.Package) {
	full := map[string]string{}
	for i := range pkgs {
		if bare, _, ok := strings.Cut(pkgs[i].Ecosystem, ":"); ok {
			if _, seen := full[bare]; !seen {
				full[bare] = pkgs[i].Ecosystem
			}
		}
	}
	for i := range pkgs {
		if e, ok := full[pkgs[i].Ecosystem]; ok {
			pkgs[i].Ecosystem = e
		}
	}
}
