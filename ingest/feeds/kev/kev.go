// Package kev parses CISA's Known Exploited Vulnerabilities catalog (JSON).
package kev

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
)

// Entry is one catalog row (the kev table).
type Entry struct {
	CVE            string
	Vendor         string
	Product        string
	Name           string
	DateAdded      time.Time
	DueDate        time.Time
	Ransomware     string // Known / Unknown
	CatalogVersion string
}

type catalog struct {
	CatalogVersion  string `json:"catalogVersion"`
	Count           int    `json:"count"`
	Vulnerabilities []struct {
		CVEID             string `json:"cveID"`
		VendorProject     string `json:"vendorProject"`
		Product           string `json:"product"`
		VulnerabilityName string `json:"vulnerabilityName"`
		DateAdded         string `json:"dateAdded"`
		DueDate           string `json:"dueDate"`
		Ransomware        string `json:"knownRansomwareCampaignUse"`
	} `json:"vulnerabilities"`
}

// Parse parses the catalog. A row without a CVE id or with a bad date is a
// problem; the rest loads.
func Parse(data []byte, file string) ([]Entry, []feed.Problem, error) {
	var c catalog
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, nil, fmt.Errorf("%s: kev: %w", file, err)
	}
	if c.Vulnerabilities == nil {
		return nil, nil, fmt.Errorf("%s: kev: no vulnerabilities array", file)
	}
	var probs []feed.Problem
	out := make([]Entry, 0, len(c.Vulnerabilities))
	for _, v := range c.Vulnerabilities {
		id := strings.TrimSpace(v.CVEID)
		if !strings.HasPrefix(id, "CVE-") {
			probs = append(probs, feed.Problem{File: file, ID: id, Reason: "cveID is not a CVE id"})
			continue
		}
		added, err1 := time.Parse(time.DateOnly, v.DateAdded)
		due, err2 := time.Parse(time.DateOnly, v.DueDate)
		if err1 != nil || err2 != nil {
			probs = append(probs, feed.Problem{File: file, ID: id, Reason: fmt.Sprintf("bad dateAdded %q or dueDate %q", v.DateAdded, v.DueDate)})
			continue
		}
		out = append(out, Entry{
			CVE: id, Vendor: v.VendorProject, Product: v.Product, Name: v.VulnerabilityName,
			DateAdded: added, DueDate: due, Ransomware: v.Ransomware, CatalogVersion: c.CatalogVersion,
		})
	}
	if c.Count != 0 && c.Count != len(c.Vulnerabilities) {
		probs = append(probs, feed.Problem{File: file, Reason: fmt.Sprintf("count %d but %d vulnerabilities", c.Count, len(c.Vulnerabilities))})
	}
	return out, probs, nil
}
