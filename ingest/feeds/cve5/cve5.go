// Package cve5 parses CVE JSON 5 records (the CVE Program's record format,
// dataType CVE_RECORD): the files of the cvelistV5 bulk export and of CISA's
// vulnrichment repository. A record names products, not packages, so it
// yields no affected ranges: it is a rating source. Its CVSS (the CNA's
// metrics first, else an ADP's such as CISA's "Vulnrichment") and its SSVC
// decision points rate every loaded record of the same CVE (0006_findings.sql).
package cve5

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/ingest/feeds/cvss"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
)

// Source is advisories.source of CVE JSON 5 records.
const Source = "cve"

type record struct {
	DataType    string `json:"dataType"`
	DataVersion string `json:"dataVersion"`
	Metadata    struct {
		CVEID         string `json:"cveId"`
		State         string `json:"state"`
		DatePublished string `json:"datePublished"`
		DateUpdated   string `json:"dateUpdated"`
		DateRejected  string `json:"dateRejected"`
	} `json:"cveMetadata"`
	Containers struct {
		CNA container   `json:"cna"`
		ADP []container `json:"adp"`
	} `json:"containers"`
}

type container struct {
	Title            string `json:"title"`
	ProviderMetadata struct {
		ShortName string `json:"shortName"`
	} `json:"providerMetadata"`
	Descriptions []struct {
		Lang  string `json:"lang"`
		Value string `json:"value"`
	} `json:"descriptions"`
	Metrics []struct {
		V40   *metricCVSS `json:"cvssV4_0"`
		V31   *metricCVSS `json:"cvssV3_1"`
		V30   *metricCVSS `json:"cvssV3_0"`
		Other *struct {
			Type    string          `json:"type"`
			Content json.RawMessage `json:"content"`
		} `json:"other"`
	} `json:"metrics"`
}

type metricCVSS struct {
	VectorString string `json:"vectorString"`
	BaseSeverity string `json:"baseSeverity"`
}

type ssvcContent struct {
	Options []map[string]string `json:"options"`
}

// SSVC is the CISA Coordinator decision points a record carries, lower
// case as the SSVC 2.0 vocabulary spells them ("" when absent):
// exploitation none, poc or active; automatable yes or no; technical impact
// partial or total.
type SSVC struct {
	Exploitation    string `json:"exploitation,omitempty"`
	Automatable     string `json:"automatable,omitempty"`
	TechnicalImpact string `json:"technical_impact,omitempty"`
}

// Specific is what advisories.specific holds for a CVE record: who gave the
// CVSS (the CNA's or an ADP's short name) and the SSVC decision points.
type Specific struct {
	CVSSProvider string `json:"cvss_provider,omitempty"`
	SSVC         *SSVC  `json:"ssvc,omitempty"`
}

// Parse parses one CVE JSON 5 record. A record that is not a CVE record or
// has no CVE id is an error; a CVSS vector that does not parse is a problem
// and the next one (or none) is used. A REJECTED record is withdrawn.
func Parse(data []byte, file string) (feed.Advisory, []feed.Problem, error) {
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return feed.Advisory{}, nil, fmt.Errorf("%s: cve json 5: %w", file, err)
	}
	id := strings.TrimSpace(r.Metadata.CVEID)
	if r.DataType != "CVE_RECORD" || !strings.HasPrefix(id, "CVE-") {
		return feed.Advisory{}, nil, fmt.Errorf("%s: cve json 5: not a CVE record (dataType %q, cveId %q)", file, r.DataType, id)
	}
	var probs []feed.Problem
	prob := func(format string, args ...any) {
		probs = append(probs, feed.Problem{File: file, ID: id, Reason: fmt.Sprintf(format, args...)})
	}
	a := feed.Advisory{Source: Source, ID: id, File: file, Withdrawn: strings.EqualFold(r.Metadata.State, "REJECTED")}
	for _, f := range []struct {
		s   string
		dst *time.Time
	}{{r.Metadata.DatePublished, &a.Published}, {r.Metadata.DateUpdated, &a.Modified}} {
		if f.s == "" {
			continue
		}
		t, err := parseTime(f.s)
		if err != nil {
			prob("date %q: %v", f.s, err)
			continue
		}
		*f.dst = t
	}
	if a.Modified.IsZero() {
		a.Modified = a.Published
	}
	for _, d := range r.Containers.CNA.Descriptions {
		if strings.HasPrefix(strings.ToLower(d.Lang), "en") {
			a.Summary = summary(d.Value)
			break
		}
	}
	var spec Specific
	// The CNA speaks for the product; an ADP (CISA's vulnrichment) fills in
	// where the CNA gave no score.
	for _, c := range append([]container{r.Containers.CNA}, r.Containers.ADP...) {
		if a.CVSS.Vector == "" {
			if v, word := pickCVSS(c, prob); v.Vector != "" {
				a.CVSS, a.Severity = v, feed.SeverityFromScore(v.Score)
				spec.CVSSProvider = provider(c)
			} else if word != "" && a.Severity == "" {
				a.Severity = word
				spec.CVSSProvider = provider(c)
			}
		}
		if spec.SSVC == nil {
			spec.SSVC = pickSSVC(c)
		}
	}
	if spec.CVSSProvider != "" || spec.SSVC != nil {
		b, _ := json.Marshal(spec) // plain strings: cannot fail
		a.Specific = string(b)
	}
	a.Normalize()
	return a, probs, nil
}

// pickCVSS returns the container's CVSS: 3.1, then 3.0, then 4.0 (the
// preference of the OSV parser), with the base score computed from the
// vector. Without a parseable vector, the baseSeverity word is returned.
func pickCVSS(c container, prob func(string, ...any)) (feed.CVSS, string) {
	word := ""
	for _, pick := range []func(i int) *metricCVSS{
		func(i int) *metricCVSS { return c.Metrics[i].V31 },
		func(i int) *metricCVSS { return c.Metrics[i].V30 },
		func(i int) *metricCVSS { return c.Metrics[i].V40 },
	} {
		for i := range c.Metrics {
			m := pick(i)
			if m == nil {
				continue
			}
			if m.VectorString != "" {
				ver, score, err := cvss.Score(m.VectorString)
				if err == nil {
					return feed.CVSS{Version: ver, Vector: m.VectorString, Score: score}, ""
				}
				prob("cvss: %v", err)
			}
			if w := feed.NormalizeSeverity(m.BaseSeverity); w != "unknown" && word == "" {
				word = w
			}
		}
	}
	return feed.CVSS{}, word
}

func pickSSVC(c container) *SSVC {
	for _, m := range c.Metrics {
		if m.Other == nil || !strings.EqualFold(m.Other.Type, "ssvc") {
			continue
		}
		var sc ssvcContent
		if json.Unmarshal(m.Other.Content, &sc) != nil {
			continue
		}
		var s SSVC
		for _, o := range sc.Options {
			for k, v := range o {
				v = strings.ToLower(strings.TrimSpace(v))
				switch strings.ToLower(k) {
				case "exploitation":
					s.Exploitation = v
				case "automatable":
					s.Automatable = v
				case "technical impact":
					s.TechnicalImpact = v
				}
			}
		}
		if s != (SSVC{}) {
			return &s
		}
	}
	return nil
}

func provider(c container) string {
	if c.ProviderMetadata.ShortName != "" {
		return c.ProviderMetadata.ShortName
	}
	return c.Title
}

// parseTime reads the record's timestamps: RFC 3339, or without a zone
// (the CVE services write "2019-12-18T20:11:53"), taken as UTC.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Truncate(time.Second), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp")
}

// summary is the first line of a description, at most 300 bytes, never
// cutting a UTF-8 sequence.
func summary(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) <= 300 {
		return s
	}
	s = s[:300]
	for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xC0 {
		s = s[:len(s)-1]
	}
	return s
}
