package simulate_test

import "testing"

func TestLoadBasesFromSharedData(t *testing.T) {
	bases, _ := loadInputs(t)
	withOS := 0
	for _, b := range bases {
		if b.OS.Ecosystem != "" {
			withOS++
		}
		t.Logf("%-70s %-28s %d packages", b.Name, b.OS.Ecosystem, len(b.Packages))
	}
	if withOS < 10 {
		t.Fatalf("only %d of %d bases have an OS", withOS, len(bases))
	}
}
