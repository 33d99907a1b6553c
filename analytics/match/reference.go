package match

import (
	"sort"
	"time"
)

// Range is one current affected_ranges row (the parts matching needs and
// evidence shows).
type Range struct {
	Source       string
	AdvisoryID   string
	RecordHash   string
	Ecosystem    string
	Package      string
	Idx          uint16
	Type         string
	Status       string
	Comparator   string
	Introduced   string
	Fixed        string
	LastAffected string
	FixPublished time.Time
}

// Version is one package version as advisories see it: the match name and
// match version of an installed package (source package for distros).
type Version struct {
	Ecosystem string
	Name      string
	Version   string
}

// Finding is one range of one advisory covering one version.
type Finding struct {
	Version Version
	Range   Range
}

// CompareFunc compares two versions of an ecosystem (schemas/version.Compare).
type CompareFunc func(ecosystem, a, b string) (int, error)

// Status values (affected_ranges.status).
const (
	StatusAffected    = "affected"
	StatusUnfixed     = "unfixed"
	StatusWillNotFix  = "will_not_fix"
	StatusNotAffected = "not_affected"
)

// InRange reports whether v lies in r: v >= introduced (introduced "" or
// "0" is "from the first version"), v < fixed when fixed is set, and
// v <= last_affected when that is set. A version or bound the comparator
// rejects is an error; callers treat it as no match, as the SQL matcher
// does with an empty key.
func InRange(cmp CompareFunc, v string, r *Range) (bool, error) {
	if r.Introduced != "" && r.Introduced != "0" {
		c, err := cmp(r.Ecosystem, v, r.Introduced)
		if err != nil || c < 0 {
			return false, err
		}
	} else if _, err := cmp(r.Ecosystem, v, v); err != nil {
		return false, err // an unkeyable version matches nothing
	}
	if r.Fixed != "" {
		c, err := cmp(r.Ecosystem, v, r.Fixed)
		if err != nil || c >= 0 {
			return false, err
		}
	}
	if r.LastAffected != "" {
		c, err := cmp(r.Ecosystem, v, r.LastAffected)
		if err != nil || c > 0 {
			return false, err
		}
	}
	return true, nil
}

// Reference matches versions against ranges in memory with the SQL job's
// semantics: equality on (ecosystem with release, package name under the
// ecosystem's naming rule, NormalizeName), the range
// predicate by cmp, not_affected ranges dropping their advisory for the
// version, everything else a finding. Ranges must be current records only.
// Findings come sorted by version, then advisory, then range.
func Reference(cmp CompareFunc, versions []Version, ranges []Range) []Finding {
	type pair struct{ eco, pkg string }
	byPair := map[pair][]*Range{}
	for i := range ranges {
		r := &ranges[i]
		k := pair{r.Ecosystem, NormalizeName(r.Ecosystem, r.Package)}
		byPair[k] = append(byPair[k], r)
	}
	type recKey struct{ source, id, hash string }
	seen := map[Version]bool{}
	var out []Finding
	for _, v := range versions {
		if seen[v] {
			continue
		}
		seen[v] = true
		hits := map[recKey][]*Range{}
		suppressed := map[recKey]bool{}
		for _, r := range byPair[pair{v.Ecosystem, NormalizeName(v.Ecosystem, v.Name)}] {
			in, err := InRange(cmp, v.Version, r)
			if err != nil || !in {
				continue
			}
			k := recKey{r.Source, r.AdvisoryID, r.RecordHash}
			if r.Status == StatusNotAffected {
				suppressed[k] = true
				continue
			}
			hits[k] = append(hits[k], r)
		}
		for k, rs := range hits {
			if suppressed[k] {
				continue
			}
			for _, r := range rs {
				out = append(out, Finding{Version: v, Range: *r})
			}
		}
	}
	SortFindings(out)
	return out
}

// SortFindings orders findings by version, advisory and range, the order
// both matchers report in.
func SortFindings(fs []Finding) {
	sort.Slice(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if a.Version != b.Version {
			if a.Version.Ecosystem != b.Version.Ecosystem {
				return a.Version.Ecosystem < b.Version.Ecosystem
			}
			if a.Version.Name != b.Version.Name {
				return a.Version.Name < b.Version.Name
			}
			return a.Version.Version < b.Version.Version
		}
		if a.Range.Source != b.Range.Source {
			return a.Range.Source < b.Range.Source
		}
		if a.Range.AdvisoryID != b.Range.AdvisoryID {
			return a.Range.AdvisoryID < b.Range.AdvisoryID
		}
		if a.Range.RecordHash != b.Range.RecordHash {
			return a.Range.RecordHash < b.Range.RecordHash
		}
		return a.Range.Idx < b.Range.Idx
	})
}
