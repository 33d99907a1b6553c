package localreport

import (
	"errors"
	"fmt"
	"github.com/patchgrid/patchgrid/schemas/severity"
	"github.com/patchgrid/patchgrid/schemas/yamlsafe"
	"io"
	"os"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/failon"
)

// Severity is a finding's severity: critical, high, medium, low, none or
// unknown (the advisory carries none, as the Debian changelog records do).
type Severity string

// The severities, worst first.
const (
	SeverityUnknown  Severity = "unknown"
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
	SeverityNone     Severity = "none"
)

// NormalizeSeverity maps a stored severity word to the vocabulary; an empty
// or unrecognised word is unknown.
func NormalizeSeverity(s string) Severity { return Severity(severity.Normalize(s)) }

// Rank orders severities for sorting. Unknown ranks above critical, so
// unrated findings come first and are not lost below rated ones; gates use
// analytics/failon.
func (s Severity) Rank() int {
	switch s {
	case SeverityNone:
		return 0
	case SeverityLow:
		return 1
	case SeverityMedium:
		return 2
	case SeverityHigh:
		return 3
	case SeverityCritical:
		return 4
	}
	return 5
}

// Failing counts the report's findings that trip th (the --fail-on
// vocabulary of analytics/failon).
func (r *Report) Failing(th failon.Threshold) int {
	n := 0
	for i := range r.Findings {
		if th.Trips(string(r.Findings[i].SeverityOf())) {
			n++
		}
	}
	return n
}

// IgnoreRule is one entry of an ignore file: findings of advisory ID
// (matched against the advisory id and its aliases), optionally only in
// Package (binary or source name), are hidden until Expires, for Reason.
// Such entries can later be fed from approved exceptions.
type IgnoreRule struct {
	ID      string    `yaml:"id" json:"id"`
	Package string    `yaml:"package,omitempty" json:"package,omitempty"`
	Expires time.Time `yaml:"-" json:"expires"`
	Reason  string    `yaml:"reason" json:"reason"`
	// ExpiresText is the file's expires value: a date (valid through that
	// day, UTC) or an RFC 3339 time.
	ExpiresText string `yaml:"expires" json:"-"`
}

// IgnoreFile is a parsed ignore file.
type IgnoreFile struct {
	Path  string
	Rules []IgnoreRule
}

// MaxIgnoreFileSize bounds an ignore file; real ones are a few KB.
const MaxIgnoreFileSize = 4 << 20

// ReadIgnoreFile reads an ignore file:
//
//	ignore:
//	  - id: CVE-2023-4911
//	    package: glibc          # optional
//	    expires: 2027-01-31     # required: date or RFC 3339 time
//	    reason: mitigated by ... # required
func ReadIgnoreFile(path string) (*IgnoreFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ignore file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxIgnoreFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("ignore file %s: %w", path, err)
	}
	if len(b) > MaxIgnoreFileSize {
		return nil, fmt.Errorf("ignore file %s: larger than %d bytes", path, MaxIgnoreFileSize)
	}
	return ParseIgnoreFile(path, b)
}

// ParseIgnoreFile parses ignore-file content; path names it in errors.
func ParseIgnoreFile(path string, b []byte) (*IgnoreFile, error) {
	var doc struct {
		Ignore []IgnoreRule `yaml:"ignore"`
	}
	// Capped alias expansion and size (schemas/yamlsafe), unknown keys refused.
	if err := yamlsafe.UnmarshalStrict(b, &doc); err != nil {
		return nil, fmt.Errorf("ignore file %s: %w", path, err)
	}
	out := &IgnoreFile{Path: path}
	for i, r := range doc.Ignore {
		where := fmt.Sprintf("ignore file %s: entry %d", path, i+1)
		if r.ID = strings.TrimSpace(r.ID); r.ID == "" {
			return nil, fmt.Errorf("%s: id is required", where)
		}
		where += " (" + r.ID + ")"
		if strings.TrimSpace(r.Reason) == "" {
			return nil, fmt.Errorf("%s: reason is required", where)
		}
		t, err := parseExpiry(r.ExpiresText)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		r.Expires = t
		out.Rules = append(out.Rules, r)
	}
	return out, nil
}

// parseExpiry reads a date (the entry holds through that whole UTC day) or
// an RFC 3339 time. An entry without expiry is refused: ignores that never
// end are how findings get forgotten.
func parseExpiry(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("expires is required (a date like 2027-01-31 or an RFC 3339 time)")
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		return d.Add(24*time.Hour - time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("expires %q: want a date like 2027-01-31 or an RFC 3339 time", s)
	}
	return t.UTC(), nil
}

// Expired lists a warning for each entry past its expiry at now: such
// entries no longer ignore anything.
func (f *IgnoreFile) Expired(now time.Time) []string {
	var out []string
	for _, r := range f.Rules {
		if now.After(r.Expires) {
			what := r.ID
			if r.Package != "" {
				what += " in " + r.Package
			}
			out = append(out, fmt.Sprintf("ignore file %s: the entry for %s expired on %s and no longer ignores it (reason was: %s)",
				f.Path, what, r.Expires.Format(time.RFC3339), r.Reason))
		}
	}
	return out
}

// Match returns the first unexpired entry that covers the finding.
func (f *IgnoreFile) Match(fd *Finding, now time.Time) *IgnoreRule {
	for i := range f.Rules {
		r := &f.Rules[i]
		if now.After(r.Expires) {
			continue
		}
		if r.Package != "" && r.Package != fd.Package.Name && r.Package != fd.Package.SourceName {
			continue
		}
		if strings.EqualFold(r.ID, fd.Match.AdvisoryID) {
			return r
		}
		for _, a := range fd.Match.Aliases {
			if strings.EqualFold(r.ID, a) {
				return r
			}
		}
	}
	return nil
}
