package severity_test

import (
	"testing"

	"github.com/patchgrid/patchgrid/schemas/severity"
)

func TestVocabulary(t *testing.T) {
	for _, c := range []struct {
		in, norm string
		valid    bool
		index    int
	}{
		{"critical", "critical", true, 0},
		{"none", "none", true, 4},
		{"unknown", "unknown", true, 5},
		{" High ", "high", false, 5},
		{"", "unknown", false, 5},
		{"moderate", "unknown", false, 5},
	} {
		if got := severity.Normalize(c.in); got != c.norm {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.norm)
		}
		if got := severity.Valid(c.in); got != c.valid {
			t.Errorf("Valid(%q) = %v", c.in, got)
		}
		if got := severity.Index(c.in); got != c.index {
			t.Errorf("Index(%q) = %d, want %d", c.in, got, c.index)
		}
	}
}
