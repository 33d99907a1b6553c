// Package severity is patchgrid's one severity vocabulary: the values of
// every severity column (advisories, kpi_advisories, finding_risk,
// sla_policy) and of every severity filter, in one order. SQL applies the
// same rule in 0004's kpi_advisories: anything but the five rated words is
// unknown.
package severity

import (
	"slices"
	"strings"
)

// All are the severities, worst first, unknown (no rating) last.
var All = []string{"critical", "high", "medium", "low", "none", "unknown"}

// Unknown is the severity of a vulnerability no loaded record rates.
const Unknown = "unknown"

// Valid reports whether s is one of All, spelt as stored.
func Valid(s string) bool { return slices.Contains(All, s) }

// Normalize maps a stored or typed word to the vocabulary: case and
// surrounding space do not matter; an empty or unrecognised word is Unknown.
func Normalize(s string) string {
	if v := strings.ToLower(strings.TrimSpace(s)); Valid(v) {
		return v
	}
	return Unknown
}

// Index is s's position in All (0 = critical); an unrecognised word sorts
// as Unknown.
func Index(s string) int {
	if i := slices.Index(All, s); i >= 0 {
		return i
	}
	return len(All) - 1
}
