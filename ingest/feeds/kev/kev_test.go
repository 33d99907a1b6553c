package kev

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed/feedtest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestCatalog(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.SharedData(t), "kev", "known_exploited_vulnerabilities.json"))
	if err != nil {
		t.Fatal(err)
	}
	es, probs, err := Parse(data, "kev.json")
	if err != nil || len(probs) > 0 {
		t.Fatal(err, probs)
	}
	if len(es) != 1404 {
		t.Errorf("%d entries, want 1404", len(es))
	}
	found := false
	for _, e := range es {
		if e.CVE == "CVE-2021-44228" {
			found = true
			if e.DateAdded.Format("2006-01-02") != "2021-12-10" || e.CatalogVersion != "2025.08.25" || e.Vendor != "Apache" {
				t.Errorf("%+v", e)
			}
			feedtest.Golden(t, "CVE-2021-44228", e)
		}
	}
	if !found {
		t.Error("CVE-2021-44228 missing")
	}
}

func TestBadRows(t *testing.T) {
	es, probs, err := Parse([]byte(`{"catalogVersion":"x","count":3,"vulnerabilities":[{"cveID":"CVE-1","dateAdded":"2021-01-02","dueDate":"2021-02-03"},{"cveID":"nope"},{"cveID":"CVE-2","dateAdded":"bad","dueDate":"2021-02-03"}]}`), "x")
	if err != nil || len(es) != 1 || len(probs) != 2 {
		t.Errorf("%v %+v %v", err, es, probs)
	}
	if _, _, err := Parse([]byte(`{"x":1}`), "x"); err == nil {
		t.Error("no error without vulnerabilities")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"catalogVersion":"1","count":1,"vulnerabilities":[{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10","dueDate":"2021-12-24","knownRansomwareCampaignUse":"Known"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) { _, _, _ = Parse(data, "fuzz") })
}
