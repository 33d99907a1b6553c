// Package nodewg parses the Node.js security working group's advisories
// (nodejs/security-wg vuln/npm/*.json): npm packages with node-semver
// ranges. Each `||` alternative of vulnerable_versions becomes one range on
// the npm (SemVer) comparator; an advisory without patched_versions has
// status unfixed.
//
// Node.js core advisories (vuln/core/*.json) and the assessments of
// dependencies bundled in node (vuln/deps/*.json) describe the node
// runtime, which no inventory reports as a package of an ecosystem: they
// are rejected with a stated reason (ErrCore) and counted as skipped.
package nodewg

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/ingest/feeds/cvss"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
)

// Source is the advisories.source of these records.
const Source = "nodejs-wg"

// ErrCore marks a Node.js core (runtime) advisory or an assessment of a
// dependency bundled in the runtime (vuln/deps).
var ErrCore = errors.New("node.js core advisory: the runtime is no package of an ecosystem")

type record struct {
	ID                 json.Number `json:"id"`
	Title              string      `json:"title"`
	Overview           string      `json:"overview"`
	CreatedAt          string      `json:"created_at"`
	UpdatedAt          string      `json:"updated_at"`
	PublishDate        string      `json:"publish_date"`
	ModuleName         string      `json:"module_name"`
	CVEs               []string    `json:"cves"`
	VulnerableVersions *string     `json:"vulnerable_versions"`
	PatchedVersions    *string     `json:"patched_versions"`
	CVSSVector         string      `json:"cvss_vector"`
	CVSSScore          *float64    `json:"cvss_score"`
	Vulnerable         string      `json:"vulnerable"` // core advisories
	Reason             string      `json:"reason"`     // dependency assessments
}

// Parse parses one advisory document. file is used for provenance and for
// the id of core advisories.
func Parse(data []byte, file string) (feed.Advisory, []feed.Problem, error) {
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return feed.Advisory{}, nil, fmt.Errorf("%s: nodejs-wg: %w", file, err)
	}
	if r.ModuleName == "" {
		if r.Vulnerable != "" || r.Reason != "" {
			return feed.Advisory{}, nil, fmt.Errorf("%s: %w", file, ErrCore)
		}
		return feed.Advisory{}, nil, fmt.Errorf("%s: nodejs-wg: no module_name", file)
	}
	if r.ID == "" {
		return feed.Advisory{}, nil, fmt.Errorf("%s: nodejs-wg: no id", file)
	}
	id := "NSWG-ECO-" + r.ID.String()
	var probs []feed.Problem
	a := feed.Advisory{
		Source:  Source,
		ID:      id,
		Aliases: r.CVEs,
		Summary: r.Title,
		File:    file,
	}
	a.Published = day(r.PublishDate)
	if a.Published.IsZero() {
		a.Published = day(r.CreatedAt)
	}
	a.Modified = day(r.UpdatedAt)
	if r.CVSSVector != "" {
		if ver, score, err := cvss.Score(r.CVSSVector); err == nil {
			a.CVSS = feed.CVSS{Version: ver, Vector: r.CVSSVector, Score: score}
			a.Severity = feed.SeverityFromScore(score)
		} else {
			probs = append(probs, feed.Problem{File: file, ID: id, Reason: err.Error()})
		}
	}
	if a.Severity == "" && r.CVSSScore != nil {
		a.Severity = feed.SeverityFromScore(*r.CVSSScore)
	}
	vuln := ""
	if r.VulnerableVersions != nil {
		vuln = strings.TrimSpace(*r.VulnerableVersions)
	}
	if vuln == "" {
		return feed.Advisory{}, nil, fmt.Errorf("%s: %s: no vulnerable_versions", file, id)
	}
	ivs, err := parseRange(vuln)
	if err != nil {
		return feed.Advisory{}, nil, fmt.Errorf("%s: %s: vulnerable_versions: %w", file, id, err)
	}
	status := feed.StatusUnfixed
	if r.PatchedVersions != nil && strings.TrimSpace(*r.PatchedVersions) != "" {
		status = feed.StatusAffected
	}
	for _, iv := range ivs {
		rg := feed.Range{Ecosystem: "npm", Package: r.ModuleName, Type: feed.TypeNodeRange, Status: status, Introduced: iv.lo}
		if rg.Introduced == "" {
			rg.Introduced = "0"
		}
		if iv.hiIncl {
			rg.LastAffected = iv.hi
		} else {
			rg.Fixed = iv.hi
		}
		a.Ranges = append(a.Ranges, rg)
	}
	a.Normalize()
	return a, probs, nil
}

func day(s string) time.Time {
	for _, layout := range []string{"2006-01-02", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
