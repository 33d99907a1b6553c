// Package feed holds the normalized records every advisory parser produces
// and the loader writes: an Advisory with its affected Ranges, plus the
// Problems a parser reports for input it had to skip. Parsers are pure
// (bytes in, records out); keys and hashes are computed here so that every
// format gets the same versioning rules.
package feed

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Range statuses (affected_ranges.status).
const (
	// StatusAffected: versions in the range are affected and a fix exists.
	StatusAffected = "affected"
	// StatusUnfixed: affected, no fix released.
	StatusUnfixed = "unfixed"
	// StatusWillNotFix: affected, the vendor will not fix it.
	StatusWillNotFix = "will_not_fix"
	// StatusNotAffected: never a finding; kept so explain can show it.
	StatusNotAffected = "not_affected"
)

// Range types (affected_ranges.range_type).
const (
	TypeEcosystem = "ECOSYSTEM"
	TypeSemver    = "SEMVER"
	TypeVersions  = "VERSIONS" // an explicit version list entry: introduced = last_affected
	TypeSecDB     = "SECDB"
	TypeDebian    = "DEBIAN"
	TypeCSAF      = "CSAF"
	TypeNodeRange = "NODE_SEMVER"
)

// Advisory is one normalized record of one feed.
type Advisory struct {
	Source    string // osv, alpine-secdb, debian-tracker, redhat-csaf, redhat-vex, pypa, nodejs-wg
	ID        string
	Aliases   []string // advisory ID not repeated
	Published time.Time
	Modified  time.Time
	Withdrawn bool
	Summary   string
	Severity  string // critical, high, medium, low, none, unknown
	CVSS      CVSS
	Specific  string // database_specific / ecosystem_specific JSON as found, "" when none
	File      string // provenance: path or URL, with "!member" for archive members
	Ranges    []Range
}

// CVSS is the base score of the vector the record carries, if any.
type CVSS struct {
	Version string // "3.0", "3.1", "4.0" or ""
	Vector  string
	Score   float64
}

// Range is one affected interval of one package in one ecosystem. A version
// v is in it when v >= Introduced and (Fixed == "" or v < Fixed) and
// (LastAffected == "" or v <= LastAffected). Introduced "" or "0" means
// "from the first version".
type Range struct {
	Ecosystem    string // with release: Debian:12, Alpine:v3.18, Red Hat:enterprise_linux:9
	Package      string
	Type         string
	Status       string
	Introduced   string
	Fixed        string
	LastAffected string
	FixPublished time.Time

	// Set by Key.
	Comparator      string
	IntroducedKey   string
	FixedKey        string
	LastAffectedKey string
}

// Problem is input a parser or the keying skipped: a malformed record, or
// one range of a record whose versions the encoder rejects.
type Problem struct {
	File   string
	ID     string // record id when known
	Reason string
}

func (p Problem) Error() string {
	if p.ID == "" {
		return fmt.Sprintf("%s: %s", p.File, p.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", p.File, p.ID, p.Reason)
}

// CVEs returns the CVE ids among the advisory ID and its aliases, sorted and
// deduplicated: the join key of KEV and EPSS.
func (a *Advisory) CVEs() []string {
	var out []string
	for _, s := range append([]string{a.ID}, a.Aliases...) {
		if strings.HasPrefix(s, "CVE-") {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Normalize puts the aliases in a canonical order (sorted, deduplicated, the
// ID removed), so that equal content hashes equally whatever the feed's order.
func (a *Advisory) Normalize() {
	al := a.Aliases[:0:0]
	for _, s := range a.Aliases {
		if s = strings.TrimSpace(s); s != "" && s != a.ID {
			al = append(al, s)
		}
	}
	slices.Sort(al)
	a.Aliases = slices.Compact(al)
	if a.Severity == "" {
		a.Severity = "unknown"
	}
}

// Hash is the sha256 of the normalized record, ranges and keys included:
// it names the record's ranges in affected_ranges, and an unchanged hash
// means a reload writes nothing. File and load times are left out so that
// the same content loaded from a mirror is still unchanged.
func (a *Advisory) Hash() string {
	h := sha256.New()
	c := *a
	c.File = ""
	// json.Marshal of a struct is deterministic: fields in declaration order.
	b, err := json.Marshal(&c)
	if err != nil {
		// Only a NaN or infinite score can fail; the Go syntax of the
		// record is just as deterministic.
		b = fmt.Appendf(nil, "%#v", c)
	}
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// Comparator is the part of schemas/version's Comparator the keying needs.
type Comparator interface {
	Name() string
	AppendKey(dst []byte, v string) ([]byte, error)
}

// LookupFunc finds the comparator of an ecosystem (schemas/version.Lookup).
type LookupFunc func(ecosystem string) (Comparator, error)

// Key fills the comparator name and version keys of every range of a. A
// range whose ecosystem has no comparator or whose versions the encoder
// rejects is dropped and reported; the rest of the record stays.
func Key(a *Advisory, lookup LookupFunc) []Problem {
	var probs []Problem
	kept := a.Ranges[:0]
	var buf []byte
	// An ecosystem without comparator is reported once per record, not
	// once per range (a Maven record can have hundreds).
	unknown := map[string]int{}
	var unknownOrder []string
	var unknownErr []error
	for _, r := range a.Ranges {
		c, err := lookup(r.Ecosystem)
		if err != nil {
			if unknown[r.Ecosystem] == 0 {
				unknownOrder = append(unknownOrder, r.Ecosystem)
				unknownErr = append(unknownErr, err)
			}
			unknown[r.Ecosystem]++
			continue
		}
		r.Comparator = c.Name()
		ok := true
		for _, f := range []struct {
			v   string
			key *string
		}{{r.Introduced, &r.IntroducedKey}, {r.Fixed, &r.FixedKey}, {r.LastAffected, &r.LastAffectedKey}} {
			*f.key = ""
			if f.v == "" || (f.v == "0" && f.key == &r.IntroducedKey) {
				// "0" introduced is OSV's "from the beginning": the empty key
				// sorts before every real key.
				continue
			}
			buf, err = c.AppendKey(buf[:0], f.v)
			if err != nil {
				probs = append(probs, Problem{File: a.File, ID: a.ID, Reason: fmt.Sprintf("range %s/%s skipped: version %q: %v", r.Ecosystem, r.Package, f.v, err)})
				ok = false
				break
			}
			*f.key = string(buf)
		}
		if ok {
			kept = append(kept, r)
		}
	}
	a.Ranges = kept
	for i, eco := range unknownOrder {
		probs = append(probs, Problem{File: a.File, ID: a.ID, Reason: fmt.Sprintf("%d ranges of ecosystem %s skipped: %v", unknown[eco], eco, unknownErr[i])})
	}
	return probs
}

// SeverityFromScore maps a CVSS base score to its qualitative rating
// (the same bands in CVSS 3.x and 4.0).
func SeverityFromScore(s float64) string {
	switch {
	case s <= 0:
		return "none"
	case s < 4:
		return "low"
	case s < 7:
		return "medium"
	case s < 9:
		return "high"
	default:
		return "critical"
	}
}

// NormalizeSeverity maps a feed's severity word to critical, high, medium,
// low, none or unknown. Red Hat's Important/Moderate and Debian's urgencies
// map to their usual equivalents.
func NormalizeSeverity(s string) string {
	switch strings.ToLower(strings.TrimRight(strings.TrimSpace(s), "*")) {
	case "critical":
		return "critical"
	case "high", "important":
		return "high"
	case "medium", "moderate":
		return "medium"
	case "low", "unimportant", "negligible":
		return "low"
	case "none":
		return "none"
	}
	return "unknown"
}
