package feed_test

import (
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed/feedtest"
)

// A range the encoder rejects is dropped and reported with file and id;
// ranges of an ecosystem without comparator are reported once; the rest
// of the record stays.
func TestKey(t *testing.T) {
	a := feed.Advisory{ID: "X-1", File: "f.json", Ranges: []feed.Range{
		{Ecosystem: "Debian:12", Package: "p", Introduced: "0", Fixed: "1.0-1"},
		{Ecosystem: "Alpine:v3.18", Package: "q", Introduced: "0", Fixed: "1.2.3.-r1"},
		{Ecosystem: "Nope", Package: "r", Introduced: "1"},
		{Ecosystem: "Nope", Package: "s", Introduced: "1"},
	}}
	probs := feed.Key(&a, feedtest.Lookup)
	if len(a.Ranges) != 1 || a.Ranges[0].Comparator != "dpkg" || a.Ranges[0].IntroducedKey != "" || a.Ranges[0].FixedKey == "" {
		t.Errorf("ranges %+v", a.Ranges)
	}
	if len(probs) != 2 || probs[0].File != "f.json" || probs[0].ID != "X-1" || !strings.Contains(probs[0].Reason, "1.2.3.-r1") || !strings.HasPrefix(probs[1].Reason, "2 ranges of ecosystem Nope") {
		t.Errorf("problems %v", probs)
	}
}

// The hash ignores alias order and provenance, and sees content.
func TestHash(t *testing.T) {
	a := feed.Advisory{Source: "osv", ID: "X", Aliases: []string{"CVE-2", "X", "CVE-1"}, File: "a"}
	b := feed.Advisory{Source: "osv", ID: "X", Aliases: []string{"CVE-1", "CVE-2"}, File: "b"}
	a.Normalize()
	b.Normalize()
	if a.Hash() != b.Hash() {
		t.Error("equal content hashes differently")
	}
	b.Withdrawn = true
	if a.Hash() == b.Hash() {
		t.Error("withdrawn did not change the hash")
	}
	if got := a.CVEs(); len(got) != 2 || got[0] != "CVE-1" {
		t.Errorf("CVEs %v", got)
	}
}

func TestSeverity(t *testing.T) {
	for in, want := range map[string]string{"Important": "high", "MODERATE": "medium", "high**": "high", "not yet assigned": "unknown", "Critical": "critical"} {
		if got := feed.NormalizeSeverity(in); got != want {
			t.Errorf("NormalizeSeverity(%q) = %q, want %q", in, got, want)
		}
	}
	for s, want := range map[float64]string{0: "none", 3.9: "low", 4: "medium", 7: "high", 9: "critical"} {
		if got := feed.SeverityFromScore(s); got != want {
			t.Errorf("SeverityFromScore(%v) = %q, want %q", s, got, want)
		}
	}
}
