package schemas

import (
	_ "embed"
	"regexp"
	"strings"
)

// viewsDoc is schemas/VIEWS.md, the views documented for compliance
// officers: `patchgrid sql --views` lists them from here, so the list and
// the documentation cannot drift apart.
//
//go:embed VIEWS.md
var viewsDoc string

// ViewDoc is one documented view or table: its name and one line saying
// what it holds.
type ViewDoc struct {
	Name, Summary string
}

var (
	// ### `kpi_mttr` — mean time to remediate, by severity
	viewHeadingRE = regexp.MustCompile("^#{2,4} `([a-z_0-9]+)`\\s*(?:—|-|:)?\\s*(.*)$")
	// | `kpi_hosts` | host | metadata of ... |
	viewRowRE = regexp.MustCompile("^\\| `([a-z_0-9]+)` \\|([^|]*)\\|([^|]*)")
	mdLinkRE  = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// DocumentedViews lists the views and tables VIEWS.md documents, in its
// order, each once: a "### `name` — summary" heading, or a table row
// "| `name` | one row per | definition |".
func DocumentedViews() []ViewDoc {
	var out []ViewDoc
	seen := map[string]bool{}
	add := func(name, summary string) {
		if seen[name] {
			return
		}
		seen[name] = true
		summary = strings.ReplaceAll(mdLinkRE.ReplaceAllString(summary, "$1"), "`", "")
		summary = strings.Join(strings.Fields(summary), " ")
		if r := []rune(summary); len(r) > 110 {
			summary = string(r[:109]) + "…"
		}
		out = append(out, ViewDoc{Name: name, Summary: summary})
	}
	for _, line := range strings.Split(viewsDoc, "\n") {
		if m := viewHeadingRE.FindStringSubmatch(line); m != nil {
			add(m[1], m[2])
		} else if m := viewRowRE.FindStringSubmatch(line); m != nil {
			add(m[1], "one row per "+strings.TrimSpace(m[2])+": "+strings.TrimSpace(m[3]))
		}
	}
	return out
}
