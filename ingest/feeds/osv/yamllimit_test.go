package osv

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/yamlsafe"
)

// The probe: a ~500-byte OSV YAML whose database_specific aliases
// expand to 9^9 scalars loaded at 1.44 GB. It is refused, naming the file,
// before anything is expanded.
func TestParseYAMLBillionLaughs(t *testing.T) {
	var b strings.Builder
	b.WriteString("id: PYSEC-0000-1\nmodified: 2024-01-01T00:00:00Z\nd0: &d0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 8; i++ {
		p := fmt.Sprintf("*d%d", i-1)
		fmt.Fprintf(&b, "d%d: &d%d [%s%s]\n", i, i, strings.Repeat(p+", ", 8), p)
	}
	b.WriteString("database_specific: {x: *d8}\n")
	_, _, err := ParseYAML([]byte(b.String()), "PYSEC-0000-1.yaml")
	if !errors.Is(err, yamlsafe.ErrLimit) || !strings.Contains(err.Error(), "PYSEC-0000-1.yaml") {
		t.Fatalf("ParseYAML = %v, want yamlsafe.ErrLimit naming the file", err)
	}
	// Modest anchors, as people write them, still load.
	ok := "id: PYSEC-1\nmodified: 2024-01-01T00:00:00Z\naffected:\n- package: {ecosystem: PyPI, name: a}\n  ranges: &r [{type: ECOSYSTEM, events: [{introduced: '0'}, {fixed: '1.0'}]}]\n- package: {ecosystem: PyPI, name: b}\n  ranges: *r\n"
	a, _, err := ParseYAML([]byte(ok), "ok.yaml")
	if err != nil || len(a.Ranges) != 2 {
		t.Fatalf("ParseYAML with a modest anchor = %d ranges, %v", len(a.Ranges), err)
	}
}
