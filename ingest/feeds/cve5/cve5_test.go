package cve5

import (
	"archive/zip"
	"encoding/json"
	"io"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed/feedtest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// vulnrichment reads every record of the shared CISA vulnrichment excerpt
// (the data is read in place, never copied into the repo).
func vulnrichment(t *testing.T) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(filepath.Join(testenv.SharedData(t), "advisories", "cve-json5-vulnrichment-debian12-overlap.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string][]byte{}
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(path.Base(f.Name), ".json")] = b
	}
	return out
}

// Golden records: an ADP (CISA vulnrichment) CVSS 3.1 with SSVC PoC, a CNA
// CVSS 4.0, and one with SSVC only (no rating).
func TestGolden(t *testing.T) {
	recs := vulnrichment(t)
	for _, id := range []string{"CVE-2023-38545", "CVE-2024-5171", "CVE-2019-1387"} {
		a, probs, err := Parse(recs[id], id+".json")
		if err != nil || len(probs) > 0 {
			t.Fatalf("%s: %v %v", id, err, probs)
		}
		feedtest.Golden(t, id, a)
	}
}

// The scores are computed from the vectors and equal the records' own
// baseScore (8.8, 10, 7.8); the CNA's CVSS wins over CISA's.
func TestRatings(t *testing.T) {
	for _, tc := range []struct {
		id, sev, ver, provider, exploitation string
		score                                float64
	}{
		{"CVE-2023-38545", "high", "3.1", "CISA-ADP", "poc", 8.8},
		{"CVE-2024-5171", "critical", "4.0", "Google", "poc", 10},
		{"CVE-2019-1387", "unknown", "", "", "none", 0},
		{"CVE-2024-1086", "high", "3.1", "Google", "active", 7.8},
	} {
		a, _, err := Parse(vulnrichment(t)[tc.id], tc.id)
		if err != nil {
			t.Fatal(err)
		}
		var spec Specific
		if a.Specific != "" {
			if err := json.Unmarshal([]byte(a.Specific), &spec); err != nil {
				t.Fatal(err)
			}
		}
		exp := ""
		if spec.SSVC != nil {
			exp = spec.SSVC.Exploitation
		}
		if a.Severity != tc.sev || a.CVSS.Version != tc.ver || a.CVSS.Score != tc.score || spec.CVSSProvider != tc.provider || exp != tc.exploitation {
			t.Errorf("%s: severity %s cvss %s %v provider %q exploitation %q; want %s %s %v %q %q",
				tc.id, a.Severity, a.CVSS.Version, a.CVSS.Score, spec.CVSSProvider, exp, tc.sev, tc.ver, tc.score, tc.provider, tc.exploitation)
		}
	}
}

// The whole excerpt parses without problems; the data README counts 644
// records, 171 of them with CVSS, and SSVC on most.
func TestVulnrichmentExcerpt(t *testing.T) {
	recs := vulnrichment(t)
	var rated, ssvc int
	for name, b := range recs {
		a, probs, err := Parse(b, name)
		if err != nil || len(probs) > 0 {
			t.Fatalf("%s: %v %v", name, err, probs)
		}
		if a.ID != name || a.Published.IsZero() || len(a.Ranges) != 0 {
			t.Errorf("%s: id %s published %v ranges %d", name, a.ID, a.Published, len(a.Ranges))
		}
		if a.CVSS.Vector != "" {
			rated++
		}
		if strings.Contains(a.Specific, `"exploitation"`) {
			ssvc++
		}
	}
	if len(recs) != 644 || rated != 171 || ssvc < 600 {
		t.Errorf("%d records, %d with CVSS, %d with SSVC; want 644, 171, most", len(recs), rated, ssvc)
	}
}

func TestRejects(t *testing.T) {
	for _, in := range []string{`[]`, `{"dataType":"CVE_RECORD","cveMetadata":{"cveId":""}}`, `{"dataType":"X","cveMetadata":{"cveId":"CVE-1-1"}}`} {
		if _, _, err := Parse([]byte(in), "bad.json"); err == nil || !strings.Contains(err.Error(), "bad.json") {
			t.Errorf("%s: err = %v, want an error naming the file", in, err)
		}
	}
	a, _, err := Parse([]byte(`{"dataType":"CVE_RECORD","cveMetadata":{"cveId":"CVE-2020-1","state":"REJECTED"}}`), "r.json")
	if err != nil || !a.Withdrawn {
		t.Errorf("rejected record: withdrawn %v err %v", a.Withdrawn, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"dataType":"CVE_RECORD","cveMetadata":{"cveId":"CVE-2024-1","datePublished":"2024-01-02T03:04:05"},"containers":{"cna":{"metrics":[{"cvssV3_1":{"vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}]},"adp":[{"metrics":[{"other":{"type":"ssvc","content":{"options":[{"Exploitation":"active"}]}}}]}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, _, err := Parse(data, "fuzz.json"); err == nil {
			_ = a.Hash()
		}
	})
}
