// Package csaf parses Red Hat CSAF 2.0 documents: security advisories
// (RHSA, source redhat-csaf) and per-CVE VEX documents (source redhat-vex).
//
// Product streams. A CSAF product tree names product streams with a CPE
// (6Server-ELS.EXTENSION → cpe:/o:redhat:rhel_els:6) and components related
// to them (6Server-ELS.EXTENSION:bind-libs-32:9.8.2-…x86_64). Each stream
// becomes its own ecosystem, "Red Hat:<cpe product>:<cpe version>", plus
// ":<target>" when the CPE names an el<N> target (layered products):
//
//	cpe:/o:redhat:enterprise_linux:9::baseos    → Red Hat:enterprise_linux:9
//	cpe:/a:redhat:enterprise_linux:9::appstream → Red Hat:enterprise_linux:9
//	cpe:/o:redhat:rhel_els:6                    → Red Hat:rhel_els:6
//	cpe:/a:redhat:rhel_eus:9.2::appstream       → Red Hat:rhel_eus:9.2
//	cpe:/a:redhat:openshift:4.16::el9           → Red Hat:openshift:4.16:el9
//
// so a fix shipped for RHEL 6 ELS never becomes a range of RHEL 9. A
// scanner maps a RHEL host's os-release (ID=rhel, VERSION_ID=9.4) to
// Red Hat:enterprise_linux:<major>.
//
// Packages are source RPM names, as inventories match rpm packages by
// their source RPM: a binary component maps to the source component of the
// same stream with the same EVR; when no single one exists (or the
// component has no version, as in VEX not-affected entries) the component's
// own name is used. Versions are EVRs with the epoch ("32:9.8.2-0.68…").
//
// Statuses: fixed / first_fixed → affected with fixed = the EVR;
// known_not_affected → not_affected; known_affected → will_not_fix when a
// no_fix_planned remediation names the product, else unfixed. Within one
// document, a package that is fixed or affected under some CVE does not
// also get a not_affected range.
package csaf

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/ingest/feeds/cvss"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
)

// Sources by document category.
const (
	SourceAdvisory = "redhat-csaf"
	SourceVEX      = "redhat-vex"
)

type document struct {
	Document struct {
		Category          string `json:"category"`
		Title             string `json:"title"`
		AggregateSeverity struct {
			Text string `json:"text"`
		} `json:"aggregate_severity"`
		Tracking struct {
			ID                 string `json:"id"`
			Status             string `json:"status"`
			InitialReleaseDate string `json:"initial_release_date"`
			CurrentReleaseDate string `json:"current_release_date"`
		} `json:"tracking"`
	} `json:"document"`
	ProductTree struct {
		Branches      []branch `json:"branches"`
		Relationships []struct {
			FullProductName struct {
				ProductID string `json:"product_id"`
			} `json:"full_product_name"`
			ProductReference          string `json:"product_reference"`
			RelatesToProductReference string `json:"relates_to_product_reference"`
		} `json:"relationships"`
	} `json:"product_tree"`
	Vulnerabilities []struct {
		CVE           string              `json:"cve"`
		ProductStatus map[string][]string `json:"product_status"`
		Remediations  []struct {
			Category   string   `json:"category"`
			Date       string   `json:"date"`
			ProductIDs []string `json:"product_ids"`
		} `json:"remediations"`
		Scores []struct {
			CVSSv3 struct {
				VectorString string `json:"vectorString"`
			} `json:"cvss_v3"`
			CVSSv4 struct {
				VectorString string `json:"vectorString"`
			} `json:"cvss_v4"`
		} `json:"scores"`
		Threats []struct {
			Category string `json:"category"`
			Details  string `json:"details"`
		} `json:"threats"`
	} `json:"vulnerabilities"`
}

type branch struct {
	Category string   `json:"category"`
	Name     string   `json:"name"`
	Branches []branch `json:"branches"`
	Product  *struct {
		Name      string `json:"name"`
		ProductID string `json:"product_id"`
		Helper    struct {
			CPE  string `json:"cpe"`
			PURL string `json:"purl"`
		} `json:"product_identification_helper"`
	} `json:"product"`
}

// component is an RPM named by the product tree.
type component struct {
	name, evr, arch string
}

// Parse parses one CSAF document into one advisory.
func Parse(data []byte, file string) (feed.Advisory, []feed.Problem, error) {
	var d document
	if err := json.Unmarshal(data, &d); err != nil {
		return feed.Advisory{}, nil, fmt.Errorf("%s: csaf: %w", file, err)
	}
	id := d.Document.Tracking.ID
	if id == "" {
		return feed.Advisory{}, nil, fmt.Errorf("%s: csaf: no document.tracking.id", file)
	}
	var probs []feed.Problem
	prob := func(format string, args ...any) {
		probs = append(probs, feed.Problem{File: file, ID: id, Reason: fmt.Sprintf(format, args...)})
	}
	a := feed.Advisory{ID: id, Summary: d.Document.Title, File: file, Source: SourceAdvisory}
	switch d.Document.Category {
	case "csaf_vex":
		a.Source = SourceVEX
	case "csaf_security_advisory":
	default:
		return feed.Advisory{}, nil, fmt.Errorf("%s: csaf: category %q is not a security advisory or VEX", file, d.Document.Category)
	}
	a.Published, _ = parseTime(d.Document.Tracking.InitialReleaseDate)
	a.Modified, _ = parseTime(d.Document.Tracking.CurrentReleaseDate)
	a.Withdrawn = d.Document.Tracking.Status == "deleted"

	// Streams (products with a CPE) and components (products with a purl
	// or an NEVRA name).
	streams := map[string]string{}
	comps := map[string]component{}
	// Products that are not stream components (a "Text-Only" product
	// carries no package) are ignored without a problem.
	plain := map[string]bool{}
	var walk func([]branch)
	walk = func(bs []branch) {
		for _, b := range bs {
			if p := b.Product; p != nil {
				plain[p.ProductID] = true
				if p.Helper.CPE != "" {
					if eco, ok := ecosystem(p.Helper.CPE); ok {
						streams[p.ProductID] = eco
					} else {
						prob("product %s: cpe %q not understood", p.ProductID, p.Helper.CPE)
					}
				} else if c, ok := parseComponent(p.Helper.PURL, p.Name); ok {
					comps[p.ProductID] = c
				}
			}
			walk(b.Branches)
		}
	}
	walk(d.ProductTree.Branches)

	type rel struct{ comp, stream string }
	rels := map[string]rel{}
	// Source components per stream, by EVR.
	srcByEVR := map[string]map[string][]string{}
	for _, r := range d.ProductTree.Relationships {
		rels[r.FullProductName.ProductID] = rel{r.ProductReference, r.RelatesToProductReference}
		if c, ok := comps[r.ProductReference]; ok && c.arch == "src" && c.evr != "" {
			m := srcByEVR[r.RelatesToProductReference]
			if m == nil {
				m = map[string][]string{}
				srcByEVR[r.RelatesToProductReference] = m
			}
			if !slices.Contains(m[c.evr], c.name) {
				m[c.evr] = append(m[c.evr], c.name)
			}
		}
	}

	type key struct{ eco, pkg, status, fixed string }
	ranges := map[key]feed.Range{}
	affectedPkgs := map[[2]string]bool{}
	unknown := 0
	for _, v := range d.Vulnerabilities {
		if v.CVE != "" {
			a.Aliases = append(a.Aliases, v.CVE)
		}
		for _, s := range v.Scores {
			for _, vec := range []string{s.CVSSv3.VectorString, s.CVSSv4.VectorString} {
				if vec == "" {
					continue
				}
				ver, score, err := cvss.Score(vec)
				if err != nil {
					prob("%s: %v", v.CVE, err)
					continue
				}
				if score > a.CVSS.Score {
					a.CVSS = feed.CVSS{Version: ver, Vector: vec, Score: score}
				}
			}
		}
		if a.Severity == "" {
			for _, t := range v.Threats {
				if t.Category == "impact" {
					a.Severity = feed.NormalizeSeverity(t.Details)
				}
			}
		}
		noFix := map[string]bool{}
		fixDate := map[string]time.Time{}
		for _, rm := range v.Remediations {
			for _, pid := range rm.ProductIDs {
				switch rm.Category {
				case "no_fix_planned":
					noFix[pid] = true
				case "vendor_fix":
					if t, err := parseTime(rm.Date); err == nil {
						fixDate[pid] = t
					}
				}
			}
		}
		for _, cat := range []string{"fixed", "first_fixed", "known_affected", "known_not_affected"} {
			for _, pid := range v.ProductStatus[cat] {
				rl, ok := rels[pid]
				if !ok {
					if !plain[pid] {
						unknown++
					}
					continue
				}
				eco, ok1 := streams[rl.stream]
				c, ok2 := comps[rl.comp]
				if !ok1 || !ok2 {
					unknown++
					continue
				}
				pkg := c.name
				if c.arch != "src" && c.evr != "" {
					if names := srcByEVR[rl.stream][c.evr]; len(names) == 1 {
						pkg = names[0]
					}
				}
				r := feed.Range{Ecosystem: eco, Package: pkg, Type: feed.TypeCSAF}
				switch cat {
				case "fixed", "first_fixed":
					if c.evr == "" {
						prob("%s: fixed product %s has no version", v.CVE, pid)
						continue
					}
					r.Status, r.Introduced, r.Fixed, r.FixPublished = feed.StatusAffected, "0", c.evr, fixDate[pid]
				case "known_affected":
					r.Status, r.Introduced = feed.StatusUnfixed, "0"
					if noFix[pid] {
						r.Status = feed.StatusWillNotFix
					}
				default:
					r.Status = feed.StatusNotAffected
				}
				if r.Status != feed.StatusNotAffected {
					affectedPkgs[[2]string{eco, pkg}] = true
				}
				k := key{eco, pkg, r.Status, r.Fixed}
				if old, ok := ranges[k]; !ok || (old.FixPublished.IsZero() && !r.FixPublished.IsZero()) {
					ranges[k] = r
				}
			}
		}
	}
	if unknown > 0 {
		prob("%d product ids without a known stream and component skipped", unknown)
	}
	keys := make([]key, 0, len(ranges))
	for k := range ranges {
		if k.status == feed.StatusNotAffected && affectedPkgs[[2]string{k.eco, k.pkg}] {
			continue
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y key) int {
		return strings.Compare(x.eco+"\x00"+x.pkg+"\x00"+x.status+"\x00"+x.fixed, y.eco+"\x00"+y.pkg+"\x00"+y.status+"\x00"+y.fixed)
	})
	for _, k := range keys {
		a.Ranges = append(a.Ranges, ranges[k])
	}
	if s := feed.NormalizeSeverity(d.Document.AggregateSeverity.Text); s != "unknown" {
		a.Severity = s
	} else if a.Severity == "" && a.CVSS.Vector != "" {
		a.Severity = feed.SeverityFromScore(a.CVSS.Score)
	}
	a.Normalize()
	return a, probs, nil
}

// ecosystem maps a stream's CPE 2.2 URI to its ecosystem (see the package
// comment).
func ecosystem(cpe string) (string, bool) {
	parts := strings.Split(strings.TrimPrefix(cpe, "cpe:/"), ":")
	if len(parts) < 4 || parts[1] != "redhat" || parts[2] == "" || parts[3] == "" {
		return "", false
	}
	eco := "Red Hat:" + parts[2] + ":" + parts[3]
	if len(parts) >= 6 && elTarget.MatchString(parts[5]) {
		eco += ":" + parts[5]
	}
	return eco, true
}

var (
	elTarget = regexp.MustCompile(`^el\d+$`)
	// name-[epoch:]version-release.arch, as in product names
	// "bind-libs-32:9.8.2-0.68.rc1.el6_10.17.x86_64".
	nevraRE = regexp.MustCompile(`^(.+)-(?:(\d+):)?([^-:]+)-([^-]+)\.([a-z0-9_]+)$`)
)

// parseComponent reads an RPM component from its purl
// (pkg:rpm/redhat/bind-libs@9.8.2-0.68.rc1.el6_10.17?arch=x86_64&epoch=32),
// else from its NEVRA product name.
func parseComponent(purl, name string) (component, bool) {
	if rest, ok := strings.CutPrefix(purl, "pkg:rpm/"); ok {
		rest, query, _ := strings.Cut(rest, "?")
		q, _ := url.ParseQuery(query)
		path, ver, _ := strings.Cut(rest, "@")
		n := path[strings.LastIndexByte(path, '/')+1:]
		if n, err := url.PathUnescape(n); err == nil && n != "" {
			if v, err := url.PathUnescape(ver); err == nil {
				ver = v
			}
			if ver != "" {
				e := q.Get("epoch")
				if e == "" {
					e = "0"
				}
				ver = e + ":" + ver
			}
			return component{name: n, evr: ver, arch: q.Get("arch")}, true
		}
	}
	if purl != "" {
		return component{}, false // not an RPM (OCI images and the like)
	}
	m := nevraRE.FindStringSubmatch(name)
	if m == nil {
		return component{}, false
	}
	e := m[2]
	if e == "" {
		e = "0"
	}
	return component{name: m[1], evr: e + ":" + m[3] + "-" + m[4], arch: m[5]}, true
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}
