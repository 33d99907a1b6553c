// Package failon is the one --fail-on vocabulary of every command that can
// fail on findings (run, match, scan --report, ...): a threshold word, and
// whether a finding of a given severity trips it.
//
// The words, from the strictest gate to the loosest:
//
//	critical  a critical finding
//	high      high or critical
//	medium    medium or worse
//	low       low or worse
//	unknown   low or worse, and also findings no loaded record rates
//	          (severity unknown): an unrated finding may be anything
//	any       any finding at all, severity none included
//
// Severities are the views' vocabulary (critical, high, medium, low, none,
// unknown; schemas/migrations/0004_kpis.sql).
package failon

import (
	"fmt"
	"strings"
)

// Words lists the valid thresholds in the order the help text shows them.
var Words = []string{"critical", "high", "medium", "low", "unknown", "any"}

// rank of a threshold: a finding trips it when its severity's rank is at
// least as high.
var thresholdRank = map[string]int{"critical": 6, "high": 5, "medium": 4, "low": 3, "unknown": 2, "any": 1}

// severityRank places a finding's severity on the same scale. unknown sits
// below low (so "--fail-on low" means rated low or worse) and above none.
var severityRank = map[string]int{"critical": 6, "high": 5, "medium": 4, "low": 3, "unknown": 2, "none": 1}

// Threshold is a parsed --fail-on value; the zero value never trips.
type Threshold struct{ word string }

// Parse reads a threshold word, case-insensitively. "" is the zero
// Threshold (no gate).
func Parse(s string) (Threshold, error) {
	w := strings.ToLower(strings.TrimSpace(s))
	if w == "" {
		return Threshold{}, nil
	}
	if _, ok := thresholdRank[w]; !ok {
		return Threshold{}, fmt.Errorf("invalid --fail-on %q (want one of %s)", s, strings.Join(Words, ", "))
	}
	return Threshold{word: w}, nil
}

// Set and String make *Threshold a flag.Value.
func (t *Threshold) Set(s string) error {
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

func (t *Threshold) String() string { return t.word }

// Enabled reports whether a threshold was given.
func (t Threshold) Enabled() bool { return t.word != "" }

// Trips reports whether one finding of severity sev trips the threshold.
// A severity outside the vocabulary counts as unknown: an unreadable
// rating never lets a finding through a gate that unknown would trip.
func (t Threshold) Trips(sev string) bool {
	if t.word == "" {
		return false
	}
	r, ok := severityRank[strings.ToLower(sev)]
	if !ok {
		r = severityRank["unknown"]
	}
	return r >= thresholdRank[t.word]
}

// Usage is the flag help text.
func Usage() string {
	return "fail (exit 3) when a finding trips this threshold: " + strings.Join(Words, ", ") +
		" (unknown: low or worse plus unrated findings; any: every finding)"
}
