package policy

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The sample policy's canonical form: what is stored and diffed.
func TestSampleCanonicalGolden(t *testing.T) {
	p, err := Parse("sample.yaml", SampleYAML)
	if err != nil {
		t.Fatal(err)
	}
	got := p.Canonical() + "\n"
	const path = "testdata/sample.canonical.json"
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("canonical sample differs from %s (run with -update after checking):\n%s", path, got)
	}
}
