package feeds

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/patchgrid/patchgrid/ingest/feeds/alpine"
	"github.com/patchgrid/patchgrid/ingest/feeds/csaf"
	"github.com/patchgrid/patchgrid/ingest/feeds/cve5"
	"github.com/patchgrid/patchgrid/ingest/feeds/debian"
	"github.com/patchgrid/patchgrid/ingest/feeds/epss"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/ingest/feeds/kev"
	"github.com/patchgrid/patchgrid/ingest/feeds/nodewg"
	"github.com/patchgrid/patchgrid/ingest/feeds/osv"
)

// Format names a document format the loader understands.
type Format string

const (
	FormatOSVJSON       Format = "osv-json"
	FormatOSVYAML       Format = "osv-yaml"
	FormatAlpineSecDB   Format = "alpine-secdb"
	FormatDebianList    Format = "debian-list"
	FormatDebianTracker Format = "debian-tracker-json"
	FormatCSAF          Format = "csaf"
	FormatCVE5          Format = "cve-json5"
	FormatNodeWG        Format = "nodejs-wg"
	FormatKEV           Format = "kev"
	FormatEPSS          Format = "epss"
)

// Sources of the risk tables (feed_loads.source).
const (
	SourceKEV  = "kev"
	SourceEPSS = "epss"
)

// defaultSource is the source a rejected document of a format counts
// against (parsers name the source of what they do parse).
var defaultSource = map[Format]string{
	FormatOSVJSON: osv.Source, FormatOSVYAML: osv.Source, FormatAlpineSecDB: "alpine-secdb",
	FormatDebianList: debian.Source, FormatDebianTracker: debian.Source, FormatCSAF: csaf.SourceAdvisory,
	FormatNodeWG: nodewg.Source, FormatKEV: SourceKEV, FormatEPSS: SourceEPSS, FormatCVE5: cve5.Source,
}

// Rejection is a document the loader does not load, with the reason.
type Rejection struct {
	Name   string
	Format Format // "" when the format was not recognised
	Reason string
}

// errNotFeed marks documents that are not feed data at all (licences,
// READMEs, schemas): rejected, but not counted as skipped records.
var errNotFeed = errors.New("not a feed document")

// cveRecordRE is a CVE record's file name (lower case): the only documents
// of a cvelistV5 archive that are feed data.
var cveRecordRE = regexp.MustCompile(`^cve-\d{4}-\d+\.json$`)

var debianListRE = regexp.MustCompile(`^\[\d{1,2} \w{3} \d{4}\] (DSA|DLA|DTSA)-`)

// detect decides a document's format from its member path and content.
func detect(d document) (Format, error) {
	base := strings.ToLower(path.Base(d.inner))
	ext := path.Ext(base)
	switch {
	case strings.HasPrefix(d.inner, "cvelistV5-") && !cveRecordRE.MatchString(base):
		return "", fmt.Errorf("%w: cvelistV5 file that is not a CVE record", errNotFeed)
	case strings.HasPrefix(base, "license") || strings.HasPrefix(base, "readme") || strings.HasPrefix(base, "sha256sums"):
		return "", fmt.Errorf("%w: licence or readme", errNotFeed)
	case ext == ".md" || ext == ".tsv" || ext == ".txt" && !debianListRE.Match(d.data):
		return "", fmt.Errorf("%w: %s file", errNotFeed, ext)
	case base == "index.json" && strings.Contains(d.inner, "vuln/"):
		return "", fmt.Errorf("%w: nodejs-wg index.json repeats the vuln/<kind>/<id>.json documents", errNotFeed)
	case ext == ".csv":
		if strings.Contains(base, "known_exploited") {
			return "", fmt.Errorf("%w: KEV CSV export (the JSON catalog is loaded)", errNotFeed)
		}
		return FormatEPSS, nil
	case ext == ".yaml" || ext == ".yml":
		if bytes.Contains(d.data, []byte("secfixes")) || bytes.Contains(d.data, []byte("distroversion:")) {
			return FormatAlpineSecDB, nil
		}
		return FormatOSVYAML, nil
	case debianListRE.Match(d.data):
		return FormatDebianList, nil
	case ext == ".json" || ext == "":
		return detectJSON(d.data)
	}
	return "", fmt.Errorf("%w: unknown file type %q", errNotFeed, ext)
}

func detectJSON(data []byte) (Format, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return "", fmt.Errorf("not a JSON object: %w", err)
	}
	has := func(k string) bool { _, ok := top[k]; return ok }
	switch {
	case has("$schema") && has("properties"):
		return "", fmt.Errorf("%w: JSON schema", errNotFeed)
	case has("vulnerabilities") && has("catalogVersion"):
		return FormatKEV, nil
	case has("document") && has("product_tree"):
		return FormatCSAF, nil
	case has("dataType") && has("cveMetadata"):
		return FormatCVE5, nil
	case has("id") && (has("modified") || has("affected")):
		return FormatOSVJSON, nil
	case has("module_name") || has("vulnerable") && has("patched") || has("reason") && has("ref") && has("cve"):
		return FormatNodeWG, nil
	case has("secfixes") || has("packages") && (has("apkurl") || has("reponame") || has("distroversion")):
		return FormatAlpineSecDB, nil
	}
	// The Debian tracker JSON: package → CVE → {releases: …}.
	for _, v := range top {
		var cves map[string]struct {
			Releases json.RawMessage `json:"releases"`
		}
		if json.Unmarshal(v, &cves) == nil {
			for _, c := range cves {
				if c.Releases != nil {
					return FormatDebianTracker, nil
				}
			}
		}
		break
	}
	return "", errors.New("unrecognised JSON document")
}

// parsed is what one document yields.
type parsed struct {
	format     Format
	advisories []feed.Advisory
	kev        []kev.Entry
	problems   []feed.Problem
}

// parseDocument detects and parses a document. EPSS rows go to emitEPSS as
// they are read.
func parseDocument(d document, emitEPSS func(epss.Score) error) (parsed, error) {
	f, err := detect(d)
	if err != nil {
		return parsed{}, err
	}
	p := parsed{format: f}
	switch f {
	case FormatOSVJSON, FormatOSVYAML:
		parse := osv.ParseJSON
		if f == FormatOSVYAML {
			parse = osv.ParseYAML
		}
		a, probs, err := parse(d.data, d.name)
		if err != nil {
			return p, err
		}
		p.advisories, p.problems = []feed.Advisory{a}, probs
	case FormatAlpineSecDB:
		p.advisories, p.problems, err = alpine.Parse(d.data, d.name, releaseFromPath(d.inner))
	case FormatDebianList:
		p.advisories, p.problems, err = debian.ParseList(d.data, d.name)
	case FormatDebianTracker:
		p.advisories, p.problems, err = debian.ParseTrackerJSON(d.data, d.name)
	case FormatCSAF:
		a, probs, err := csaf.Parse(d.data, d.name)
		if err != nil {
			return p, err
		}
		p.advisories, p.problems = []feed.Advisory{a}, probs
	case FormatCVE5:
		a, probs, err := cve5.Parse(d.data, d.name)
		if err != nil {
			return p, err
		}
		p.advisories, p.problems = []feed.Advisory{a}, probs
	case FormatNodeWG:
		a, probs, err := nodewg.Parse(d.data, d.name)
		if err != nil {
			return p, err
		}
		p.advisories, p.problems = []feed.Advisory{a}, probs
	case FormatKEV:
		p.kev, p.problems, err = kev.Parse(d.data, d.name)
	case FormatEPSS:
		p.problems, err = epss.Parse(bytes.NewReader(d.data), d.name, emitEPSS)
	}
	return p, err
}

var alpineDirRE = regexp.MustCompile(`(?:^|/)v?(\d+\.\d+|edge)/`)

// releaseFromPath finds an Alpine release in a member path
// (alpine/3.18/main/openssl.json → v3.18).
func releaseFromPath(p string) string {
	m := alpineDirRE.FindAllStringSubmatch(p, -1)
	if m == nil {
		return ""
	}
	r := m[len(m)-1][1]
	if r == "edge" {
		return r
	}
	return "v" + r
}
