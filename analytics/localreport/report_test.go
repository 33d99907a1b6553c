package localreport

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/failon"
	"github.com/patchgrid/patchgrid/analytics/match"
)

var now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// sample is a small hand-made report: busybox on Alpine 3.16 with one rated
// and one unrated advisory, and an unfixed one on zlib.
func sample(t *testing.T, opts Options) *Report {
	t.Helper()
	bb := Package{Ecosystem: "Alpine:v3.16", Name: "busybox", Version: "1.35.0-r17", PURL: "pkg:apk/alpine/busybox@1.35.0-r17?distro=3.16.2", Location: "/lib/apk/db/installed"}
	zl := Package{Ecosystem: "Alpine:v3.16", Name: "zlib", Version: "1.2.12-r3", Location: "/lib/apk/db/installed"}
	all := []Finding{
		{Package: bb, Match: match.Match{Source: "alpine-secdb", AdvisoryID: "CVE-2023-42366", Severity: "medium", Fixed: "1.35.0-r18", MatchedName: "busybox", Installed: "1.35.0-r17", Aliases: []string{}}},
		{Package: bb, Match: match.Match{Source: "alpine-secdb", AdvisoryID: "CVE-2022-48174", Severity: "", Fixed: "1.35.0-r19", MatchedName: "busybox", Installed: "1.35.0-r17", Aliases: []string{"GHSA-xxxx"}}},
		{Package: zl, Match: match.Match{Source: "osv", AdvisoryID: "CVE-2099-0001", Severity: "low", MatchedName: "zlib", Installed: "1.2.12-r3", Aliases: []string{}}},
	}
	r := &Report{Target: Target{HostID: "host-1", OS: "Alpine:v3.16", Sources: []string{"installed"}, ScannedAt: now},
		Findings: []Finding{}, Ignored: []Finding{}, NotChecked: []string{}, Warnings: []string{}, Expired: []string{}}
	r.packages = []Package{bb, zl}
	r.apply(all, 2, opts, now)
	return r
}

func TestApplyAndSummary(t *testing.T) {
	r := sample(t, Options{})
	s := r.Summary
	if s.Findings != 3 || s.PackagesAffected != 2 || s.Advisories != 3 || s.Unfixed != 1 || !r.Complete ||
		s.BySeverity["unknown"] != 1 || s.BySeverity["medium"] != 1 || s.BySeverity["low"] != 1 {
		t.Fatalf("summary %+v", s)
	}
	// Worst first, unrated counting as worst.
	if got := r.Findings[0].Match.AdvisoryID; got != "CVE-2022-48174" {
		t.Errorf("first finding %s, want the unrated CVE-2022-48174", got)
	}
	if u := sample(t, Options{IgnoreUnfixed: true}); u.Summary.Findings != 2 || u.Summary.Unfixed != 0 {
		t.Errorf("--ignore-unfixed: %+v", u.Summary)
	}
}

func TestIgnoreFile(t *testing.T) {
	ig, err := ParseIgnoreFile("ignore.yaml", []byte(`
ignore:
  - id: ghsa-xxxx          # an alias, any case
    package: busybox
    expires: 2027-01-31
    reason: only reachable through the shell, which is disabled
  - id: CVE-2099-0001
    expires: 2026-12-01T00:00:00Z
    reason: accepted until the December window
`))
	if err != nil {
		t.Fatal(err)
	}
	r := sample(t, Options{Ignore: ig})
	if r.Summary.Findings != 2 || r.Summary.Ignored != 1 || r.Ignored[0].Match.AdvisoryID != "CVE-2022-48174" || r.Ignored[0].Ignored == nil {
		t.Fatalf("ignored %+v, summary %+v", r.Ignored, r.Summary)
	}
	// The expired entry hides nothing and is warned about, without making
	// the inventory partial.
	if len(r.Expired) != 1 || !strings.Contains(r.Expired[0], "CVE-2099-0001") || !strings.Contains(r.Expired[0], "expired") || !r.Complete {
		t.Errorf("expired %v complete %v", r.Expired, r.Complete)
	}
	// A date holds through its whole day.
	if got := ig.Rules[0].Expires; !got.Equal(time.Date(2027, 1, 31, 23, 59, 59, 0, time.UTC)) {
		t.Errorf("expires %v", got)
	}

	for _, bad := range []struct{ doc, want string }{
		{"ignore:\n  - id: CVE-1\n    reason: r\n", "expires is required"},
		{"ignore:\n  - id: CVE-1\n    expires: 2027-01-01\n", "reason is required"},
		{"ignore:\n  - expires: 2027-01-01\n    reason: r\n", "id is required"},
		{"ignore:\n  - id: CVE-1\n    expires: next week\n    reason: r\n", "want a date"},
		{"ignore:\n  - id: CVE-1\n    expires: 2027-01-01\n    reason: r\n    until: x\n", "field until not found"},
		{"ignore: [", "ignore file x.yaml"},
	} {
		_, err := ParseIgnoreFile("x.yaml", []byte(bad.doc))
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "x.yaml") {
			t.Errorf("%q: error %v, want one naming the file and %q", bad.doc, err, bad.want)
		}
	}
}

func TestFailOn(t *testing.T) {
	r := sample(t, Options{}) // one unrated, one medium, one low finding
	for _, c := range []struct {
		word string
		want int
	}{
		{"any", 3}, {"unknown", 3}, {"low", 2}, {"medium", 1}, {"high", 0}, {"critical", 0},
	} {
		th, err := failon.Parse(c.word)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Failing(th); got != c.want {
			t.Errorf("--fail-on %s: %d failing, want %d", c.word, got, c.want)
		}
	}
}

func TestTableColor(t *testing.T) {
	r := sample(t, Options{})
	var plain, color bytes.Buffer
	if err := WriteTable(&plain, r, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteTable(&color, r, TableOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") || !strings.Contains(color.String(), "\x1b[0;33m") {
		t.Fatalf("plain:\n%s\ncolour:\n%q", plain.String(), color.String())
	}
	// Stripping the colours gives the plain table: alignment is unchanged.
	stripped := color.String()
	for _, c := range colors {
		stripped = strings.ReplaceAll(stripped, c, "")
	}
	stripped = strings.ReplaceAll(stripped, "\x1b[0m", "")
	if stripped != plain.String() {
		t.Errorf("coloured table differs from the plain one beyond colours:\n%s\n---\n%s", stripped, plain.String())
	}
	// busybox: worst unknown, fixed in the higher of r18 and r19.
	if !strings.Contains(plain.String(), "1.35.0-r19") || !strings.Contains(plain.String(), "- (1 no fix)") {
		t.Errorf("table:\n%s", plain.String())
	}
}

func TestOutputsSmall(t *testing.T) {
	r := sample(t, Options{})
	for _, f := range Formats {
		var b bytes.Buffer
		if err := Write(&b, r, f, toolVer, TableOptions{}); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if f == "table" {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch f {
		case "sarif":
			validate(t, sarifSchema(t), "SARIF", b.Bytes())
			rules := doc["runs"].([]any)[0].(map[string]any)["tool"].(map[string]any)["driver"].(map[string]any)["rules"].([]any)
			if id := rules[0].(map[string]any)["id"]; id != "CVE-2022-48174" || len(rules) != 3 {
				t.Errorf("SARIF rules: first %v of %d", id, len(rules))
			}
		case "cyclonedx":
			validate(t, cycloneDXSchema(t), "CycloneDX", b.Bytes())
			if doc["specVersion"] != "1.6" || len(doc["vulnerabilities"].([]any)) != 3 || len(doc["components"].([]any)) != 2 {
				t.Errorf("CycloneDX: %v, %d vulnerabilities", doc["specVersion"], len(doc["vulnerabilities"].([]any)))
			}
		case "openvex":
			sts := doc["statements"].([]any)
			if len(sts) != 3 || sts[0].(map[string]any)["status"] != "affected" || doc["@context"] != "https://openvex.dev/ns/v0.2.0" {
				t.Errorf("OpenVEX: %s", b.String())
			}
		}
	}
	if err := Write(&bytes.Buffer{}, r, "xml", toolVer, TableOptions{}); err == nil {
		t.Error("format xml accepted")
	}
}

// The published schemas must reject what they should: a validation that
// cannot fail proves nothing.
func TestSchemasReject(t *testing.T) {
	validateErr := func(name string, doc string, sch interface{ Validate(any) error }) {
		var v any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatal(err)
		}
		if sch.Validate(v) == nil {
			t.Errorf("%s: an invalid document validated", name)
		}
	}
	validateErr("SARIF", `{"version":"2.1.0","runs":[{"tool":{"driver":{}}}]}`, sarifSchema(t))
	validateErr("CycloneDX", `{"bomFormat":"CycloneDX","specVersion":"1.6","vulnerabilities":[{"id":"X","affects":[{"versions":[]}]}]}`, cycloneDXSchema(t))
}

// FuzzParseIgnoreFile: an ignore file is outside input; any content gives a
// rule set or an error naming the file, never a panic, and every rule it
// accepts has an id, a reason and an expiry.
func FuzzParseIgnoreFile(f *testing.F) {
	f.Add([]byte("ignore:\n  - id: CVE-2023-1\n    package: x\n    expires: 2027-01-31\n    reason: r\n"))
	f.Add([]byte("ignore:\n  - id: CVE-2023-1\n    expires: 2026-12-01T00:00:00Z\n    reason: r\n"))
	f.Add([]byte("ignore: &a [*a]"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		ig, err := ParseIgnoreFile("fuzz.yaml", b)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, r := range ig.Rules {
			if r.ID == "" || strings.TrimSpace(r.Reason) == "" || r.Expires.IsZero() {
				t.Fatalf("accepted an incomplete rule %+v", r)
			}
		}
	})
}
