// Package debian parses the Debian security tracker: the DSA/DLA list text
// (data/DSA/list, data/DLA/list) and the tracker JSON
// (security-tracker.debian.org/tracker/data/json). Packages are source
// packages, as the tracker keys them.
//
// Releases become OSV-style ecosystems by number (bookworm → Debian:12);
// a codename without a number (sid, experimental, or one newer than this
// table) is kept as Debian:<codename>.
//
// Statuses: a fixed version → affected (introduced 0, fixed V);
// <not-affected> or a tracker fixed_version of "0" → not_affected;
// <unfixed> or tracker status open/undetermined → unfixed;
// <end-of-life> (security support ended for the package) → will_not_fix.
package debian

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/schemas/severity"
)

// Source is the advisories.source of DSA, DLA and tracker CVE records.
// Their ids (DSA-…, DLA-…, CVE-…) never collide.
const Source = "debian-tracker"

var releases = map[string]string{
	"buzz": "1.1", "rex": "1.2", "bo": "1.3", "hamm": "2.0", "slink": "2.1", "potato": "2.2",
	"woody": "3.0", "sarge": "3.1", "etch": "4", "lenny": "5", "squeeze": "6", "wheezy": "7",
	"jessie": "8", "stretch": "9", "buster": "10", "bullseye": "11", "bookworm": "12",
	"trixie": "13", "forky": "14", "duke": "15",
}

// Ecosystem maps a Debian codename to its ecosystem with release.
func Ecosystem(codename string) string {
	if n, ok := releases[codename]; ok {
		return "Debian:" + n
	}
	return "Debian:" + codename
}

var (
	headerRE  = regexp.MustCompile(`^\[(\d{1,2} \w{3} \d{4})\] ((?:DSA|DLA|DTSA)-[0-9A-Za-z-]+)\s*(.*)$`)
	releaseRE = regexp.MustCompile(`^\[([a-z-]+)\]\s+-\s+(\S+)(?:\s+(\S+))?`)
)

// ParseList parses a DSA or DLA list. Each entry is one advisory; a bad
// line is a problem of its entry and the rest of the list still loads.
func ParseList(data []byte, file string) ([]feed.Advisory, []feed.Problem, error) {
	var out []feed.Advisory
	var probs []feed.Problem
	var cur *feed.Advisory
	flush := func() {
		if cur != nil {
			cur.Normalize()
			out = append(out, *cur)
			cur = nil
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		if raw[0] == '[' {
			flush()
			m := headerRE.FindStringSubmatch(line)
			if m == nil {
				probs = append(probs, feed.Problem{File: file, Reason: fmt.Sprintf("line %d: bad header %q", lineNo, line)})
				continue
			}
			day, err := time.Parse("2 Jan 2006", m[1])
			if err != nil {
				probs = append(probs, feed.Problem{File: file, ID: m[2], Reason: fmt.Sprintf("line %d: bad date %q", lineNo, m[1])})
				continue
			}
			cur = &feed.Advisory{Source: Source, ID: m[2], Published: day, Modified: day, Summary: m[3], File: file}
			continue
		}
		if cur == nil {
			// Continuation lines of an entry whose header was bad.
			continue
		}
		switch {
		case strings.HasPrefix(line, "{"):
			cur.Aliases = append(cur.Aliases, strings.Fields(strings.Trim(line, "{}"))...)
		case strings.HasPrefix(line, "NOTE:"):
		case strings.HasPrefix(line, "["):
			m := releaseRE.FindStringSubmatch(line)
			if m == nil || m[3] == "" {
				probs = append(probs, feed.Problem{File: file, ID: cur.ID, Reason: fmt.Sprintf("line %d: bad release line %q", lineNo, line)})
				continue
			}
			r := feed.Range{Ecosystem: Ecosystem(m[1]), Package: m[2], Type: feed.TypeDebian, FixPublished: cur.Published}
			switch m[3] {
			case "<not-affected>":
				r.Status, r.FixPublished = feed.StatusNotAffected, time.Time{}
			case "<unfixed>", "<postponed>", "<ignored>":
				r.Status, r.Introduced, r.FixPublished = feed.StatusUnfixed, "0", time.Time{}
			case "<end-of-life>":
				r.Status, r.Introduced, r.FixPublished = feed.StatusWillNotFix, "0", time.Time{}
			default:
				if strings.HasPrefix(m[3], "<") {
					probs = append(probs, feed.Problem{File: file, ID: cur.ID, Reason: fmt.Sprintf("line %d: unknown state %s", lineNo, m[3])})
					continue
				}
				r.Status, r.Introduced, r.Fixed = feed.StatusAffected, "0", m[3]
			}
			cur.Ranges = append(cur.Ranges, r)
		default:
			probs = append(probs, feed.Problem{File: file, ID: cur.ID, Reason: fmt.Sprintf("line %d: unexpected line %q", lineNo, line)})
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return out, probs, fmt.Errorf("%s: line %d: %w", file, lineNo, err)
	}
	return out, probs, nil
}

type trackerCVE struct {
	Description string          `json:"description"`
	Releases    json.RawMessage `json:"releases"` // an object, or [] when empty
}

type trackerRelease struct {
	Status       string `json:"status"`
	FixedVersion string `json:"fixed_version"`
	Urgency      string `json:"urgency"`
}

// trackerSpecific is the Specific JSON of a tracker CVE record: the
// urgency per release, keyed by ecosystem (Debian:12) and normalized to
// the severity vocabulary; the worst over the CVE's packages when they
// differ. A release whose urgency is no rating ("not yet assigned",
// "end-of-life") is absent. 0020_release_ratings.sql reads it so that a
// host on that release takes the tracker's rating for its release, not the
// record's Severity, which stays the worst over releases (what a store
// without the analytics migrations shows).
type trackerSpecific struct {
	Urgency map[string]string `json:"urgency"`
}

// ParseTrackerJSON parses the tracker's JSON export: package → CVE →
// release → status. One advisory per CVE, with the ranges of every package
// and release, its urgency per release in Specific (trackerSpecific) and
// the worst of them as its Severity.
func ParseTrackerJSON(data []byte, file string) ([]feed.Advisory, []feed.Problem, error) {
	var doc map[string]map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: debian tracker json: %w", file, err)
	}
	var probs []feed.Problem
	byID := map[string]*feed.Advisory{}
	urgency := map[string]map[string]string{} // CVE → ecosystem → worst severity
	pkgs := make([]string, 0, len(doc))
	for p := range doc {
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	for _, pkg := range pkgs {
		ids := make([]string, 0, len(doc[pkg]))
		for id := range doc[pkg] {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			var c trackerCVE
			if err := json.Unmarshal(doc[pkg][id], &c); err != nil {
				probs = append(probs, feed.Problem{File: file, ID: id, Reason: fmt.Sprintf("package %s: %v", pkg, err)})
				continue
			}
			var releases map[string]trackerRelease
			if len(c.Releases) > 0 && c.Releases[0] == '{' {
				if err := json.Unmarshal(c.Releases, &releases); err != nil {
					probs = append(probs, feed.Problem{File: file, ID: id, Reason: fmt.Sprintf("package %s: releases: %v", pkg, err)})
					continue
				}
			}
			a := byID[id]
			if a == nil {
				a = &feed.Advisory{Source: Source, ID: id, File: file, Summary: firstLine(c.Description)}
				byID[id] = a
			}
			rels := make([]string, 0, len(releases))
			for r := range releases {
				rels = append(rels, r)
			}
			slices.Sort(rels)
			for _, rel := range rels {
				tr := releases[rel]
				r := feed.Range{Ecosystem: Ecosystem(rel), Package: pkg, Type: feed.TypeDebian}
				switch {
				case tr.Status == "resolved" && tr.FixedVersion == "0":
					r.Status = feed.StatusNotAffected
				case tr.Status == "resolved" && tr.FixedVersion != "":
					r.Status, r.Introduced, r.Fixed = feed.StatusAffected, "0", tr.FixedVersion
				case tr.Status == "open" || tr.Status == "undetermined":
					r.Status, r.Introduced = feed.StatusUnfixed, "0"
				default:
					probs = append(probs, feed.Problem{File: file, ID: id, Reason: fmt.Sprintf("package %s release %s: status %q fixed %q skipped", pkg, rel, tr.Status, tr.FixedVersion)})
					continue
				}
				a.Ranges = append(a.Ranges, r)
				s := feed.NormalizeSeverity(tr.Urgency)
				if severity.Index(s) < severity.Index(a.Severity) {
					a.Severity = s
				}
				if s == severity.Unknown {
					continue
				}
				if urgency[id] == nil {
					urgency[id] = map[string]string{}
				}
				if severity.Index(s) < severity.Index(urgency[id][r.Ecosystem]) {
					urgency[id][r.Ecosystem] = s
				}
			}
		}
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]feed.Advisory, 0, len(ids))
	for _, id := range ids {
		a := byID[id]
		if u := urgency[id]; len(u) > 0 {
			// Marshalling a map of strings cannot fail; its keys come out sorted.
			b, _ := json.Marshal(trackerSpecific{Urgency: u})
			a.Specific = string(b)
		}
		a.Normalize()
		out = append(out, *a)
	}
	return out, probs, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
