// Package osv parses OSV records (https://ossf.github.io/osv-schema/) in
// JSON or YAML into normalized advisories. It is pure: one document in,
// one advisory and its problems out; archives and files are the loader's.
package osv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/patchgrid/patchgrid/ingest/feeds/cvss"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/schemas/yamlsafe"
)

// Source is the advisories.source of every OSV-schema record. OSV ids are
// unique across databases (GHSA-, GO-, PYSEC-, DEBIAN-, UBUNTU-, ...), so
// one source lets the same record arrive from any OSV-format file (a PyPA
// YAML tree or its JSONL export) and still be one record.
const Source = "osv"

// Record mirrors the parts of the OSV schema we keep. Every scalar is a
// string, also when decoded from YAML, so a version like 1.10 is never
// turned into the float 1.1.
type Record struct {
	ID               string     `json:"id" yaml:"id"`
	Modified         string     `json:"modified" yaml:"modified"`
	Published        string     `json:"published" yaml:"published"`
	Withdrawn        string     `json:"withdrawn" yaml:"withdrawn"`
	Aliases          []string   `json:"aliases" yaml:"aliases"`
	Upstream         []string   `json:"upstream" yaml:"upstream"`
	Summary          string     `json:"summary" yaml:"summary"`
	Details          string     `json:"details" yaml:"details"`
	Severity         []Severity `json:"severity" yaml:"severity"`
	Affected         []Affected `json:"affected" yaml:"affected"`
	DatabaseSpecific any        `json:"database_specific" yaml:"-"`
}

type Severity struct {
	Type  string `json:"type" yaml:"type"`
	Score string `json:"score" yaml:"score"`
}

type Affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem" yaml:"ecosystem"`
		Name      string `json:"name" yaml:"name"`
		Purl      string `json:"purl" yaml:"purl"`
	} `json:"package" yaml:"package"`
	Severity          []Severity `json:"severity" yaml:"severity"`
	Ranges            []Range    `json:"ranges" yaml:"ranges"`
	Versions          []string   `json:"versions" yaml:"versions"`
	EcosystemSpecific any        `json:"ecosystem_specific" yaml:"-"`
	DatabaseSpecific  any        `json:"database_specific" yaml:"-"`
}

type Range struct {
	Type   string  `json:"type" yaml:"type"`
	Events []Event `json:"events" yaml:"events"`
}

// Event is one OSV range event; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced" yaml:"introduced"`
	Fixed        string `json:"fixed" yaml:"fixed"`
	LastAffected string `json:"last_affected" yaml:"last_affected"`
	Limit        string `json:"limit" yaml:"limit"`
}

// ParseJSON parses one OSV JSON document.
func ParseJSON(data []byte, file string) (feed.Advisory, []feed.Problem, error) {
	var r Record
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber() // keep numbers in *_specific as written
	if err := d.Decode(&r); err != nil {
		return feed.Advisory{}, nil, fmt.Errorf("%s: osv json: %w", file, err)
	}
	return Normalize(&r, file)
}

// ParseYAML parses one OSV YAML document (the PyPA advisory database).
// The *_specific objects are decoded as yaml.Node and re-encoded with every
// scalar kept as its text.
func ParseYAML(data []byte, file string) (feed.Advisory, []feed.Problem, error) {
	// yamlsafe bounds alias expansion: nodeValue below follows aliases too.
	doc, err := yamlsafe.Parse(data)
	if err != nil {
		return feed.Advisory{}, nil, fmt.Errorf("%s: osv yaml: %w", file, err)
	}
	var r Record
	if err := doc.Decode(&r); err != nil && doc.Kind != 0 {
		return feed.Advisory{}, nil, fmt.Errorf("%s: osv yaml: %w", file, err)
	}
	var raw struct {
		DatabaseSpecific yaml.Node `yaml:"database_specific"`
		Affected         []struct {
			EcosystemSpecific yaml.Node `yaml:"ecosystem_specific"`
			DatabaseSpecific  yaml.Node `yaml:"database_specific"`
		} `yaml:"affected"`
	}
	if err := doc.Decode(&raw); err != nil && doc.Kind != 0 {
		return feed.Advisory{}, nil, fmt.Errorf("%s: osv yaml: %w", file, err)
	}
	r.DatabaseSpecific = nodeValue(&raw.DatabaseSpecific)
	for i := range r.Affected {
		if i < len(raw.Affected) {
			r.Affected[i].EcosystemSpecific = nodeValue(&raw.Affected[i].EcosystemSpecific)
			r.Affected[i].DatabaseSpecific = nodeValue(&raw.Affected[i].DatabaseSpecific)
		}
	}
	return Normalize(&r, file)
}

// nodeValue turns a YAML node into maps, slices and strings only.
func nodeValue(n *yaml.Node) any {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			return nodeValue(n.Content[0])
		}
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = nodeValue(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			s = append(s, nodeValue(c))
		}
		return s
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil
		}
		return n.Value
	case yaml.AliasNode:
		if n.Alias != nil {
			return nodeValue(n.Alias)
		}
	}
	return nil
}

// Normalize turns a decoded OSV record into an advisory. A record without
// id is an error; a bad range or severity is a problem and the rest stays.
func Normalize(r *Record, file string) (feed.Advisory, []feed.Problem, error) {
	if strings.TrimSpace(r.ID) == "" {
		return feed.Advisory{}, nil, fmt.Errorf("%s: osv record without id", file)
	}
	var probs []feed.Problem
	prob := func(format string, args ...any) {
		probs = append(probs, feed.Problem{File: file, ID: r.ID, Reason: fmt.Sprintf(format, args...)})
	}
	a := feed.Advisory{
		Source: Source,
		ID:     r.ID,
		// upstream (OSV 1.6) names the CVE a distro record derives from:
		// kept with the aliases so KEV and EPSS join on it.
		Aliases:   append(append([]string(nil), r.Aliases...), r.Upstream...),
		Withdrawn: r.Withdrawn != "",
		Summary:   summary(r),
		File:      file,
	}
	var err error
	if a.Modified, err = parseTime(r.Modified); err != nil {
		prob("modified: %v", err)
	}
	if a.Published, err = parseTime(r.Published); err != nil {
		prob("published: %v", err)
	}

	sevs := r.Severity
	for _, af := range r.Affected {
		sevs = append(sevs, af.Severity...)
	}
	a.CVSS, a.Severity = severity(sevs, r.DatabaseSpecific, prob)

	type specific struct {
		Ecosystem         string `json:"ecosystem"`
		Package           string `json:"package"`
		EcosystemSpecific any    `json:"ecosystem_specific,omitempty"`
		DatabaseSpecific  any    `json:"database_specific,omitempty"`
	}
	spec := struct {
		DatabaseSpecific any        `json:"database_specific,omitempty"`
		Affected         []specific `json:"affected,omitempty"`
	}{DatabaseSpecific: r.DatabaseSpecific}

	for _, af := range r.Affected {
		eco, pkg := af.Package.Ecosystem, af.Package.Name
		if af.EcosystemSpecific != nil || af.DatabaseSpecific != nil {
			spec.Affected = append(spec.Affected, specific{eco, pkg, af.EcosystemSpecific, af.DatabaseSpecific})
		}
		if eco == "" || pkg == "" {
			if len(af.Ranges) > 0 || len(af.Versions) > 0 {
				prob("affected entry without package ecosystem/name skipped")
			}
			continue
		}
		fixPub := fixDate(af.DatabaseSpecific)
		hasFix := false
		for _, rg := range af.Ranges {
			switch rg.Type {
			case "GIT":
				// Commit ranges have no package-version meaning.
				continue
			case "ECOSYSTEM", "SEMVER":
			default:
				prob("%s/%s: range type %q skipped", eco, pkg, rg.Type)
				continue
			}
			for _, iv := range intervals(rg.Events) {
				st := feed.StatusAffected
				switch {
				case iv.limit, iv.fixed == "" && iv.lastAffected == "":
					st = feed.StatusUnfixed
				case iv.fixed != "":
					hasFix = true
				}
				a.Ranges = append(a.Ranges, feed.Range{
					Ecosystem: eco, Package: pkg, Type: rg.Type, Status: st,
					Introduced: iv.introduced, Fixed: iv.fixed, LastAffected: iv.lastAffected,
					FixPublished: fixPub,
				})
			}
		}
		st := feed.StatusUnfixed
		if hasFix {
			st = feed.StatusAffected
		}
		for _, v := range af.Versions {
			if v = strings.TrimSpace(v); v == "" {
				continue
			}
			a.Ranges = append(a.Ranges, feed.Range{
				Ecosystem: eco, Package: pkg, Type: feed.TypeVersions, Status: st,
				Introduced: v, LastAffected: v,
			})
		}
	}
	if spec.DatabaseSpecific != nil || len(spec.Affected) > 0 {
		b, err := json.Marshal(spec)
		if err != nil {
			prob("specific: %v", err)
		} else {
			a.Specific = string(b)
		}
	}
	a.Normalize()
	return a, probs, nil
}

type interval struct {
	introduced, fixed, lastAffected string
	limit                           bool // fixed holds a limit, not a fix
}

// intervals turns an OSV event list into intervals. Events are read in
// order: introduced opens an interval, fixed / last_affected / limit close
// it. limit is kept as an exclusive upper bound in fixed: OSV defines it
// as the end of the search for affected versions, which for matching has
// the same effect (nothing at or past it is affected); as it names no fix,
// such an interval has status unfixed. An event list whose first event is
// not introduced starts at "0".
func intervals(evs []Event) []interval {
	var out []interval
	open := false
	var cur interval
	for _, e := range evs {
		switch {
		case e.Introduced != "":
			if open {
				out = append(out, cur)
			}
			cur, open = interval{introduced: e.Introduced}, true
		case e.Fixed != "", e.Limit != "", e.LastAffected != "":
			if !open {
				cur = interval{introduced: "0"}
			}
			switch {
			case e.Fixed != "":
				cur.fixed = e.Fixed
			case e.LastAffected != "":
				cur.lastAffected = e.LastAffected
			default:
				cur.fixed, cur.limit = e.Limit, true
			}
			out = append(out, cur)
			open = false
		}
	}
	if open {
		out = append(out, cur)
	}
	return out
}

func summary(r *Record) string {
	if s := strings.TrimSpace(r.Summary); s != "" {
		return s
	}
	s := strings.TrimSpace(r.Details)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300]
		for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 {
			s = s[:len(s)-1] // don't cut a UTF-8 sequence
		}
		if len(s) > 0 && s[len(s)-1] >= 0xC0 {
			s = s[:len(s)-1]
		}
	}
	return s
}

// severity picks the record's CVSS: the first 3.x vector, else the first
// 4.0 vector (3.x is what most feeds and KEV-era tooling rank by; 4.0 alone
// still gives a score). The severity is Ubuntu's priority when the record
// has an Ubuntu entry (the distribution's own rating comes first, see
// 0006_findings.sql), else the vector's, else database_specific.severity
// (GHSA).
func severity(sevs []Severity, dbSpecific any, prob func(string, ...any)) (feed.CVSS, string) {
	var best feed.CVSS
	word := ""
	for _, s := range sevs {
		switch s.Type {
		case "CVSS_V3", "CVSS_V4":
			ver, score, err := cvss.Score(s.Score)
			if err != nil {
				prob("severity: %v", err)
				continue
			}
			if best.Vector == "" || (best.Version == "4.0" && ver != "4.0") {
				best = feed.CVSS{Version: ver, Vector: s.Score, Score: score}
			}
		case "Ubuntu":
			word = s.Score
		}
	}
	if w := feed.NormalizeSeverity(word); w != "unknown" {
		return best, w
	}
	if best.Vector != "" {
		return best, feed.SeverityFromScore(best.Score)
	}
	if m, ok := dbSpecific.(map[string]any); ok {
		if s, ok := m["severity"].(string); ok && word == "" {
			word = s
		}
	}
	return best, feed.NormalizeSeverity(word)
}

// fixDate reads database_specific.fix_date (the Debian changelog-derived
// records carry it): when the fix became available.
func fixDate(dbSpecific any) time.Time {
	m, ok := dbSpecific.(map[string]any)
	if !ok {
		return time.Time{}
	}
	s, _ := m["fix_date"].(string)
	t, err := parseTime(s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", s)
}
