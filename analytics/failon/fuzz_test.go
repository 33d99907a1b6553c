package failon

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParse: --fail-on comes from the command line and from configuration
// files. Any string either parses to one of Words (or to no gate, for
// blank input) or is refused naming the input; an accepted threshold reads
// back to itself, and its gate is monotonic in severity: if a severity
// trips it, every worse one does too, and unknown words count as unknown.
func FuzzParse(f *testing.F) {
	for _, s := range append(slices.Clone(Words), "", " ", "HIGH", " Critical\t", "none", "all", "hi", "crit", "unknown ", "any\x00", "ünknown", "\u212aEV") {
		f.Add(s, "high")
	}
	f.Add("medium", "bogus")
	f.Add("unknown", "")
	f.Fuzz(func(t *testing.T, s, sev string) {
		th, err := Parse(s)
		if err != nil {
			if th.Enabled() {
				t.Fatalf("Parse(%q) failed (%v) but returned an enabled threshold %q", s, err, th.String())
			}
			if !strings.Contains(err.Error(), "--fail-on") {
				t.Fatalf("Parse(%q): error %q does not say which option", s, err)
			}
			return
		}
		w := th.String()
		if blank := strings.TrimSpace(s) == ""; blank != !th.Enabled() {
			t.Fatalf("Parse(%q) = %q: enabled %v for blank=%v input", s, w, th.Enabled(), blank)
		}
		if th.Enabled() && !slices.Contains(Words, w) {
			t.Fatalf("Parse(%q) = %q, not one of %v", s, w, Words)
		}
		if th.Enabled() && !strings.EqualFold(strings.TrimSpace(s), w) {
			t.Fatalf("Parse(%q) = %q: not the input's word", s, w)
		}
		var back Threshold
		if err := back.Set(w); err != nil || back != th {
			t.Fatalf("Parse(%q) = %q does not read back: %q, %v", s, w, back.String(), err)
		}

		// Severities from the worst to none; sev itself (any string) must
		// behave like its own word, or like unknown when it is none of them.
		order := []string{"critical", "high", "medium", "low", "unknown", "none"}
		for i := 1; i < len(order); i++ {
			if th.Trips(order[i]) && !th.Trips(order[i-1]) {
				t.Fatalf("--fail-on %q: %s trips but the worse %s does not", w, order[i], order[i-1])
			}
		}
		like := "unknown"
		if i := slices.Index(order, strings.ToLower(sev)); i >= 0 {
			like = order[i]
		}
		if th.Trips(sev) != th.Trips(like) {
			t.Fatalf("--fail-on %q: severity %q trips=%v, but %s trips=%v", w, sev, th.Trips(sev), like, th.Trips(like))
		}
		if !th.Enabled() && th.Trips(sev) {
			t.Fatalf("no gate tripped on %q", sev)
		}
	})
}
