// Package cvss computes CVSS base scores from vectors: 3.0 and 3.1 with the
// specification's formula, 4.0 with its macrovector lookup table, both from
// github.com/pandatix/go-cvss (maintained, tested against FIRST's
// calculators) rather than a hand copy of the 4.0 table.
package cvss

import (
	"fmt"
	"math"
	"strings"

	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

// Score parses a CVSS vector and returns its version ("3.0", "3.1", "4.0")
// and base score rounded to one decimal.
func Score(vector string) (version string, score float64, err error) {
	vector = strings.TrimSpace(vector)
	switch {
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		v, err := gocvss31.ParseVector(vector)
		if err != nil {
			return "", 0, fmt.Errorf("cvss 3.1 vector %q: %w", vector, err)
		}
		return "3.1", round1(v.BaseScore()), nil
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		v, err := gocvss30.ParseVector(vector)
		if err != nil {
			return "", 0, fmt.Errorf("cvss 3.0 vector %q: %w", vector, err)
		}
		return "3.0", round1(v.BaseScore()), nil
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		v, err := gocvss40.ParseVector(vector)
		if err != nil {
			return "", 0, fmt.Errorf("cvss 4.0 vector %q: %w", vector, err)
		}
		return "4.0", round1(v.Score()), nil
	}
	return "", 0, fmt.Errorf("cvss vector %q: unsupported version", vector)
}

// round1 removes float noise (7.499999 → 7.5) so stored scores equal the
// published ones.
func round1(f float64) float64 { return math.Round(f*10) / 10 }
