package sbom

import (
	"fmt"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/patchgrid/patchgrid/scanner/inventory/extract"
	"github.com/patchgrid/patchgrid/scanner/inventory/osrelease"
	"github.com/patchgrid/patchgrid/scanner/inventory/rpm"
	"github.com/patchgrid/patchgrid/schemas/inventory"
)

// languageEcosystems maps purl types to OSV ecosystems (no release).
var languageEcosystems = map[string]string{
	"golang":   "Go",
	"npm":      "npm",
	"pypi":     "PyPI",
	"maven":    "Maven",
	"gem":      "RubyGems",
	"cargo":    "crates.io",
	"nuget":    "NuGet",
	"composer": "Packagist",
	"pub":      "Pub",
	"hex":      "Hex",
	"cran":     "CRAN",
	"swift":    "SwiftURL",
}

// errUnsupported marks purl types that name no matchable package (oci,
// generic, github): skipped, counted, not warned one by one.
var errUnsupported = fmt.Errorf("unsupported purl type")

// FromPURL turns a package URL into a package. fallback labels distro
// packages whose purl has no distro qualifier (the SBOM's own OS, if known).
func FromPURL(s string, fallback extract.Distro) (inventory.Package, error) {
	u, err := packageurl.FromString(s)
	if err != nil {
		return inventory.Package{}, fmt.Errorf("purl %q: %w", s, err)
	}
	q := u.Qualifiers.Map()
	p := inventory.Package{Name: u.Name, Version: u.Version, Arch: q["arch"], PURL: s}
	if p.Version == "" {
		return p, fmt.Errorf("purl %q has no version", s)
	}
	if eco, ok := languageEcosystems[u.Type]; ok {
		p.Ecosystem = eco
		switch u.Type {
		case "maven":
			if u.Namespace != "" {
				p.Name = u.Namespace + ":" + u.Name
			}
		case "golang":
			if u.Namespace != "" {
				p.Name = u.Namespace + "/" + u.Name
			}
			// OSV SEMVER events carry no "v"; neither do we.
			p.Version = strings.TrimPrefix(p.Version, "v")
		case "npm", "composer", "swift":
			if u.Namespace != "" {
				p.Name = u.Namespace + "/" + u.Name
			}
		}
		p.Arch = ""
		return p, nil
	}
	d := distroFromQualifier(u.Type, u.Namespace, q["distro"])
	if d.Ecosystem == "" {
		d = fallback
	}
	switch u.Type {
	case "deb":
		p.Ecosystem = orBare(d.Ecosystem, "Debian")
		if u.Namespace == "ubuntu" && d.Ecosystem == "" {
			p.Ecosystem = "Ubuntu"
		}
		p.SourceName, p.SourceVersion = splitUpstream(q["upstream"], p.Name, p.Version)
	case "apk":
		p.Ecosystem = orBare(d.Ecosystem, "Alpine")
		p.SourceName, p.SourceVersion = splitUpstream(q["upstream"], p.Name, p.Version)
	case "rpm":
		p.Ecosystem = orBare(d.Ecosystem, "Red Hat")
		n := rpm.NEVRA{Name: p.Name, Epoch: q["epoch"], Version: p.Version}
		if e, v, ok := strings.Cut(p.Version, ":"); ok {
			n.Epoch, n.Version = e, v
		}
		p.Version = n.EVR()
		if up := strings.TrimSuffix(q["upstream"], ".rpm"); up != "" {
			if src, err := rpm.ParseNEVRA(up); err == nil {
				src.Epoch = n.Epoch
				p.SourceName, p.SourceVersion = src.Name, src.EVR()
			}
		}
	default:
		return p, fmt.Errorf("purl %q: %w %q", s, errUnsupported, u.Type)
	}
	return p, nil
}

func orBare(eco, bare string) string {
	if eco != "" {
		return eco
	}
	return bare
}

// splitUpstream reads the upstream qualifier: "src", "src@ver" or
// "src (ver)". Without a version the source version is the binary's.
func splitUpstream(up, name, version string) (string, string) {
	if up == "" {
		return name, version
	}
	if n, v, ok := strings.Cut(up, "@"); ok {
		return n, v
	}
	if n, v, ok := strings.Cut(up, " ("); ok {
		return n, strings.TrimSuffix(v, ")")
	}
	return up, version
}

// distroFromQualifier maps distro=debian-12 / ubuntu-22.04 / alpine-3.18.4 /
// 3.18.4 (apk) / rhel-9.5 to a Distro.
func distroFromQualifier(typ, ns, distro string) extract.Distro {
	if distro == "" {
		return extract.Distro{}
	}
	id, ver, ok := strings.Cut(distro, "-")
	if !ok {
		// apk purls from some tools carry only the version.
		id, ver = ns, distro
	}
	if typ == "rpm" && (id == "redhat" || ns == "redhat" && id == "") {
		id = "rhel"
	}
	fields := map[string]string{"ID": id, "VERSION_ID": ver}
	return extract.Distro{ID: id, VersionID: ver, Ecosystem: osrelease.Ecosystem(fields)}
}
