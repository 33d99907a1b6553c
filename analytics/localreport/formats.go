package localreport

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/openvex/go-vex/pkg/vex"
	"github.com/owenrumney/go-sarif/v2/sarif"
)

// Formats are the accepted --format values.
var Formats = []string{"table", "json", "sarif", "cyclonedx", "openvex"}

// Write writes r in format (one of Formats). toolVersion stamps SARIF,
// CycloneDX and OpenVEX as their producer.
func Write(w io.Writer, r *Report, format, toolVersion string, table TableOptions) error {
	switch format {
	case "table":
		return WriteTable(w, r, table)
	case "json":
		return WriteJSON(w, r)
	case "sarif":
		return WriteSARIF(w, r, toolVersion)
	case "cyclonedx":
		return WriteCycloneDX(w, r, toolVersion)
	case "openvex":
		return WriteOpenVEX(w, r, toolVersion)
	}
	return fmt.Errorf("unknown format %q: want %s", format, strings.Join(Formats, ", "))
}

// WriteJSON writes the report itself, every finding with its evidence.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// sarifLevel: SARIF has three levels. Unrated findings are errors, as a
// gate treats them.
func sarifLevel(s Severity) string {
	switch s {
	case SeverityMedium:
		return "warning"
	case SeverityLow, SeverityNone:
		return "note"
	}
	return "error"
}

// WriteSARIF writes SARIF 2.1.0 the way OSV-Scanner does: one rule per
// advisory (the advisory id is the rule id), one result per affected
// package, located at the inventory file the package was read from.
func WriteSARIF(w io.Writer, r *Report, toolVersion string) error {
	rep, err := sarif.New(sarif.Version210)
	if err != nil {
		return err
	}
	run := sarif.NewRunWithInformationURI(Tool, ToolURI)
	run.Tool.Driver.WithVersion(toolVersion)
	// Every result must be a JSON array member even when there is none:
	// GitHub code scanning refuses a run without "results".
	run.Results = []*sarif.Result{}
	for ruleIndex, a := range r.Advisories() {
		names := affectedNames(a)
		rule := run.AddRule(a.ID).
			WithName(ruleName(a.ID)).
			WithShortDescription(sarif.NewMultiformatMessageString(
				fmt.Sprintf("%s: %s advisory affecting %s", a.ID, a.Source, strings.Join(names, ", ")))).
			WithFullDescription(sarif.NewMultiformatMessageString(fullDescription(a))).
			WithHelp(sarif.NewMultiformatMessageString(remediation(a)).WithMarkdown(helpMarkdown(a))).
			WithDefaultConfiguration(sarif.NewReportingConfiguration().WithLevel(sarifLevel(a.Severity)))
		props := sarif.Properties{"severity": string(a.Severity), "source": a.Source, "tags": []string{"vulnerability", "security"}}
		if len(a.Aliases) > 0 {
			props["aliases"] = a.Aliases
		}
		rule.WithProperties(props)
		if u := advisoryURL(a.ID); u != "" {
			rule.WithHelpURI(u)
		}
		for _, f := range a.Findings {
			msg := fmt.Sprintf("%s %s (%s) is affected by %s", f.Package.Name, f.Package.Version, f.Package.Ecosystem, a.ID)
			if f.Match.Fixed != "" {
				msg += "; fixed in " + f.Match.Fixed
			} else {
				msg += "; no fix yet"
			}
			res := run.CreateResultForRule(a.ID).
				WithRuleIndex(ruleIndex).
				WithLevel(sarifLevel(a.Severity)).
				WithMessage(sarif.NewTextMessage(msg)).
				WithPartialFingerPrints(map[string]any{"patchgrid/package-advisory/v1": fingerprint(f.Package.Ref(), a.Source, a.ID)})
			if loc := f.Package.Location; loc != "" {
				res.AddLocation(sarif.NewLocationWithPhysicalLocation(
					sarif.NewPhysicalLocation().WithArtifactLocation(sarif.NewSimpleArtifactLocation(fileURI(loc)))))
			}
			rp := sarif.Properties{"package": f.Package.Name, "installed": f.Package.Version, "ecosystem": f.Package.Ecosystem,
				"matched_name": f.Match.MatchedName, "matched_version": f.Match.Installed}
			if f.Package.PURL != "" {
				rp["purl"] = f.Package.PURL
			}
			if f.Match.Fixed != "" {
				rp["fixed"] = f.Match.Fixed
			}
			res.Properties = rp
		}
	}
	rep.AddRun(run)
	return rep.PrettyWrite(w)
}

// ruleName is a PascalCase-ish name SARIF viewers show beside the id.
func ruleName(id string) string {
	return strings.NewReplacer("-", "", ":", "", ".", "").Replace(id)
}

func affectedNames(a *Advisory) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range a.Findings {
		n := f.Match.MatchedName
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func fullDescription(a *Advisory) string {
	s := fmt.Sprintf("%s (%s), severity %s.", a.ID, a.Source, a.Severity)
	if len(a.Aliases) > 0 {
		s += " Aliases: " + strings.Join(a.Aliases, ", ") + "."
	}
	return s + " " + remediation(a)
}

// remediation says what to upgrade, per affected package.
func remediation(a *Advisory) string {
	var parts []string
	seen := map[string]bool{}
	for _, f := range a.Findings {
		p := f.Package.Name + " " + f.Package.Version + ": "
		if f.Match.Fixed != "" {
			p += "upgrade to " + f.Match.Fixed + " or later"
		} else {
			p += "no fixed version yet"
		}
		if !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "; ")
}

func helpMarkdown(a *Advisory) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** (%s)\n\n| package | installed | fixed |\n|---|---|---|\n", a.ID, a.Source)
	for _, f := range a.Findings {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", f.Package.Name, f.Package.Version, orDash(f.Match.Fixed))
	}
	return b.String()
}

// advisoryURL is where a reader can look the advisory up, for the id
// schemes osv.dev serves.
func advisoryURL(id string) string {
	for _, p := range []string{"CVE-", "GHSA-", "GO-", "PYSEC-", "RHSA-", "DEBIAN-", "DSA-", "DLA-", "USN-", "ALSA-", "RLSA-"} {
		if strings.HasPrefix(id, p) {
			return "https://osv.dev/vulnerability/" + url.PathEscape(id)
		}
	}
	return ""
}

// fileURI makes a location a SARIF artifact URI: an absolute path becomes a
// file: URI, a relative one stays relative (both are URI references).
func fileURI(loc string) string {
	u := url.URL{Path: loc}
	if strings.HasPrefix(loc, "/") {
		u.Scheme = "file"
	}
	return u.String()
}

func fingerprint(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:16])
}

// serialUUID is a name-based UUID (version 5 layout over SHA-256) of the
// report's identity, so the same scan gives the same document id.
func serialUUID(r *Report) string {
	h := sha256.Sum256([]byte(r.Target.HostID + "\x00" + r.Target.ScannedAt.Format(time.RFC3339Nano) + "\x00" + fmt.Sprint(r.Summary)))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

var cdxSeverity = map[Severity]cdx.Severity{
	SeverityCritical: cdx.SeverityCritical, SeverityHigh: cdx.SeverityHigh, SeverityMedium: cdx.SeverityMedium,
	SeverityLow: cdx.SeverityLow, SeverityNone: cdx.SeverityNone, SeverityUnknown: cdx.SeverityUnknown,
}

// WriteCycloneDX writes a CycloneDX 1.6 BOM of the host's packages with a
// vulnerabilities section whose ids are the advisory ids (a VDR).
func WriteCycloneDX(w io.Writer, r *Report, toolVersion string) error {
	bom := cdx.NewBOM()
	bom.SpecVersion = cdx.SpecVersion1_6
	bom.SerialNumber = "urn:uuid:" + serialUUID(r)
	host := cdx.Component{BOMRef: "host:" + r.Target.HostID, Type: cdx.ComponentTypeOS, Name: r.Target.HostID}
	if r.Target.OS != "" {
		host.Description = r.Target.OS
	}
	props := []cdx.Property{{Name: "patchgrid:os", Value: orDash(r.Target.OS)}}
	if r.Target.Hostname != "" {
		props = append(props, cdx.Property{Name: "patchgrid:hostname", Value: r.Target.Hostname})
	}
	host.Properties = &props
	bom.Metadata = &cdx.Metadata{
		Timestamp: r.Target.ScannedAt.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: Tool, Version: toolVersion,
			ExternalReferences: &[]cdx.ExternalReference{{Type: cdx.ERTypeWebsite, URL: ToolURI}}}}},
		Component: &host,
	}
	var comps []cdx.Component
	seen := map[string]bool{}
	add := func(p *Package) {
		ref := p.Ref()
		if seen[ref] {
			return
		}
		seen[ref] = true
		c := cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: p.PURL}
		var cp []cdx.Property
		cp = append(cp, cdx.Property{Name: "patchgrid:ecosystem", Value: p.Ecosystem})
		if p.SourceName != "" {
			cp = append(cp, cdx.Property{Name: "patchgrid:source_name", Value: p.SourceName})
		}
		if p.Location != "" {
			cp = append(cp, cdx.Property{Name: "patchgrid:location", Value: p.Location})
		}
		c.Properties = &cp
		comps = append(comps, c)
	}
	for _, p := range r.packages {
		add(&p)
	}
	for i := range r.Findings {
		add(&r.Findings[i].Package)
	}
	bom.Components = &comps

	var vulns []cdx.Vulnerability
	for _, a := range r.Advisories() {
		v := cdx.Vulnerability{BOMRef: "vuln:" + a.Source + ":" + a.ID, ID: a.ID, Source: &cdx.Source{Name: a.Source},
			Ratings:        &[]cdx.VulnerabilityRating{{Severity: cdxSeverity[a.Severity], Method: cdx.ScoringMethodOther, Source: &cdx.Source{Name: a.Source}}},
			Recommendation: remediation(a)}
		if u := advisoryURL(a.ID); u != "" {
			v.Source.URL = u
		}
		if len(a.Aliases) > 0 {
			refs := make([]cdx.VulnerabilityReference, 0, len(a.Aliases))
			for _, al := range a.Aliases {
				refs = append(refs, cdx.VulnerabilityReference{ID: al, Source: &cdx.Source{Name: aliasSource(al), URL: advisoryURL(al)}})
			}
			v.References = &refs
		}
		var affects []cdx.Affects
		for _, f := range a.Findings {
			affects = append(affects, cdx.Affects{Ref: f.Package.Ref(),
				Range: &[]cdx.AffectedVersions{{Version: f.Package.Version, Status: cdx.VulnerabilityStatusAffected}}})
		}
		v.Affects = &affects
		vulns = append(vulns, v)
	}
	bom.Vulnerabilities = &vulns
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	enc.SetEscapeHTML(false)
	return enc.EncodeVersion(bom, cdx.SpecVersion1_6)
}

func aliasSource(id string) string {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return "NVD"
	case strings.HasPrefix(id, "GHSA-"):
		return "GitHub"
	}
	if p, _, ok := strings.Cut(id, "-"); ok {
		return p
	}
	return "unknown"
}

// WriteOpenVEX writes an OpenVEX document: one "affected" statement per
// advisory naming the affected packages, with the upgrade as the action.
// Ignored findings get no statement: an ignore entry is a local decision,
// not a claim that the product is not affected.
func WriteOpenVEX(w io.Writer, r *Report, toolVersion string) error {
	doc := vex.New()
	ts := r.Target.ScannedAt.UTC()
	doc.Timestamp = &ts
	doc.Author = Tool
	doc.AuthorRole = "automated scanner"
	doc.Tooling = Tool + " " + toolVersion
	doc.ID = "https://openvex.dev/docs/patchgrid/" + serialUUID(r)
	for _, a := range r.Advisories() {
		st := vex.Statement{Vulnerability: vex.Vulnerability{Name: vex.VulnerabilityID(a.ID)}, Status: vex.StatusAffected,
			ActionStatement: remediation(a)}
		for _, al := range a.Aliases {
			st.Vulnerability.Aliases = append(st.Vulnerability.Aliases, vex.VulnerabilityID(al))
		}
		seen := map[string]bool{}
		for _, f := range a.Findings {
			ref := f.Package.Ref()
			if seen[ref] {
				continue
			}
			seen[ref] = true
			c := vex.Component{ID: ref}
			if f.Package.PURL != "" {
				c.Identifiers = map[vex.IdentifierType]string{vex.PURL: f.Package.PURL}
			}
			st.Products = append(st.Products, vex.Product{Component: c})
		}
		if err := st.Validate(); err != nil {
			return fmt.Errorf("openvex statement for %s: %w", a.ID, err)
		}
		doc.Statements = append(doc.Statements, st)
	}
	return doc.ToJSON(w)
}
