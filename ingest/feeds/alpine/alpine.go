// Package alpine parses apk security databases ("secdb"): Alpine's legacy
// YAML (alpine-secdb vX/{main,community}.yaml), the same document as JSON
// (secdb.alpinelinux.org, claircore), the per-package JSON documents of
// aquasecurity/vuln-list, and the Wolfi / Chainguard secdb. JSON is YAML,
// so one decoder reads all of them.
//
// Each secfixes key is the version that fixes the CVEs listed under it:
// versions before it are affected. The key "0" means the package was never
// affected (an NVD false positive): such ranges get status not_affected and
// must never match.
//
// Records: one advisory per CVE (the advisory id) per document, holding the
// ranges of every package of the document that lists it. The secdb has no
// per-CVE record of its own, so a document defines its CVEs only for its
// own scope (release, repository and, for vuln-list, package); the source
// names that scope ("alpine-secdb:v3.18/main", "alpine-secdb:v3.18/main/openssl",
// "wolfi-secdb", "chainguard-secdb") so that loading v3.18 never replaces
// what v3.10 said about the same CVE.
package alpine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/schemas/yamlsafe"
)

type document struct {
	DistroVersion string   `yaml:"distroversion"`
	RepoName      string   `yaml:"reponame"`
	URLPrefix     string   `yaml:"urlprefix"`
	Packages      []entry  `yaml:"packages"`
	Name          string   `yaml:"name"`     // vuln-list per-package doc
	SecFixes      secfixes `yaml:"secfixes"` // vuln-list per-package doc
}

type entry struct {
	Pkg struct {
		Name     string   `yaml:"name"`
		SecFixes secfixes `yaml:"secfixes"`
	} `yaml:"pkg"`
}

// secfixes maps a fixed version to the ids it fixes. Keys and items decode
// as strings whatever their YAML type (0 stays "0", 1.10 stays "1.10").
type secfixes map[string][]string

// Parse parses one secdb document. dirRelease is the release taken from the
// file's directory (v3.18 from alpine/3.18/main/x.json), used when the
// document itself does not name it.
func Parse(data []byte, file, dirRelease string) ([]feed.Advisory, []feed.Problem, error) {
	var d document
	if err := yamlsafe.Unmarshal(data, &d); err != nil {
		return nil, nil, fmt.Errorf("%s: secdb: %w", file, err)
	}
	eco, source, err := scope(&d, dirRelease)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: secdb: %w", file, err)
	}
	pkgs := d.Packages
	if d.Name != "" {
		var e entry
		e.Pkg.Name, e.Pkg.SecFixes = d.Name, d.SecFixes
		pkgs = append(pkgs, e)
		source += "/" + d.Name
	}

	var probs []feed.Problem
	byID := map[string]*feed.Advisory{}
	var order []string
	for _, p := range pkgs {
		if p.Pkg.Name == "" {
			probs = append(probs, feed.Problem{File: file, Reason: "secdb package without name skipped"})
			continue
		}
		fixes := make([]string, 0, len(p.Pkg.SecFixes))
		for k := range p.Pkg.SecFixes {
			fixes = append(fixes, k)
		}
		slices.Sort(fixes)
		for _, fixed := range fixes {
			fixed = strings.TrimSpace(fixed)
			for _, item := range p.Pkg.SecFixes[fixed] {
				// Items are "CVE-2017-8904", "CVE-2017-8904 XSA-214" or
				// "XSA-207": the first id is the advisory, the rest aliases.
				ids := strings.Fields(item)
				if len(ids) == 0 {
					continue
				}
				a := byID[ids[0]]
				if a == nil {
					a = &feed.Advisory{Source: source, ID: ids[0], File: file}
					byID[ids[0]] = a
					order = append(order, ids[0])
				}
				a.Aliases = append(a.Aliases, ids[1:]...)
				r := feed.Range{Ecosystem: eco, Package: p.Pkg.Name, Type: feed.TypeSecDB}
				if fixed == "0" {
					r.Status = feed.StatusNotAffected
				} else {
					r.Status, r.Introduced, r.Fixed = feed.StatusAffected, "0", fixed
				}
				a.Ranges = append(a.Ranges, r)
			}
		}
	}
	slices.Sort(order)
	out := make([]feed.Advisory, 0, len(order))
	for _, id := range order {
		a := byID[id]
		a.Normalize()
		out = append(out, *a)
	}
	return out, probs, nil
}

// scope derives the ecosystem and source of a document: Alpine releases
// from distroversion (or the directory), Wolfi and Chainguard from the
// repository name and URL prefix.
func scope(d *document, dirRelease string) (eco, source string, err error) {
	switch {
	case d.RepoName == "chainguard" || strings.Contains(d.URLPrefix, "cgr.dev"):
		return "Chainguard", "chainguard-secdb", nil
	case d.RepoName == "wolfi" || strings.Contains(d.URLPrefix, "wolfi.dev"):
		return "Wolfi", "wolfi-secdb", nil
	}
	rel := d.DistroVersion
	if rel == "" {
		rel = dirRelease
	}
	if rel == "" {
		return "", "", fmt.Errorf("no distroversion")
	}
	if !strings.HasPrefix(rel, "v") && rel != "edge" {
		rel = "v" + rel
	}
	source = "alpine-secdb:" + rel
	if d.RepoName != "" {
		source += "/" + d.RepoName
	}
	return "Alpine:" + rel, source, nil
}
