package compliance

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/exception"
	"github.com/patchgrid/patchgrid/schemas/severity"
)

// severityColour is each severity's colour in the charts (colour-blind-safe
// enough that the legend and the order carry the meaning too).
var severityColour = map[string]string{
	"critical": "#7f0000", "high": "#d9480f", "medium": "#e8a200",
	"low": "#2b8a3e", "none": "#5c7cfa", "unknown": "#868e96",
}

// WriteHTML renders d as one self-contained HTML document.
func WriteHTML(w io.Writer, d *Data) error {
	t, err := template.New("report").Funcs(template.FuncMap{
		"num":        func(v uint64) string { return group(strconv.FormatUint(v, 10)) },
		"pct":        pct,
		"days":       days,
		"date":       func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
		"datetime":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"figure":     figure,
		"sevs":       func() []string { return severity.All },
		"colour":     func(s string) template.CSS { return template.CSS(severityColour[s]) },
		"open":       func(s string) uint64 { return d.OpenBySeverity[s] },
		"status":     func(s string) int { return d.ExceptionsByStatus[exception.Status(s)] },
		"statuses":   func() []exception.Status { return exception.Statuses },
		"cell":       cell,
		"trendSVG":   func() template.HTML { return trendSVG(d.Trend) },
		"barsSVG":    func(rows []SLARow, id string) template.HTML { return barsSVG(rows, id) },
		"mixSVG":     func() template.HTML { return mixSVG(d.OpenBySeverity, d.OpenTotal) },
		"expiryDays": func() int { return int(d.Options.ExpiringWithin.Hours() / 24) },
		"postureSVG": func() template.HTML { return postureSVG(d.PostureTrend, d.Posture) },
		"key":        figureKey,
		"inc":        func(i int) int { return i + 1 },
		"scope": func(fw string) string {
			for _, f := range d.Frameworks {
				if f.ID == fw {
					if f.Scope == "kev" {
						return "CISA KEV advisories"
					}
					return "every exposure"
				}
			}
			return ""
		},
		"slaDays": func(days map[string]uint32) string {
			var parts []string
			for _, s := range severity.All {
				if v, ok := days[s]; ok {
					parts = append(parts, fmt.Sprintf("%s %d", s, v))
				}
			}
			return strings.Join(parts, ", ")
		},
		"ownerPosture": func(fw, owner string) *PostureRow {
			for i := range d.PostureByOwner {
				if r := &d.PostureByOwner[i]; r.Framework == fw && r.Group == owner {
					return r
				}
			}
			return nil
		},
		"owners": func() []string {
			var out []string
			for _, r := range d.PostureByOwner {
				if !slices.Contains(out, r.Group) {
					out = append(out, r.Group)
				}
			}
			slices.Sort(out)
			return out
		},
		"periodDays": func() int {
			return int(d.Options.Period.Hours() / 24)
		},
	}).Parse(page)
	if err != nil {
		return fmt.Errorf("compliance report template: %w", err)
	}
	if err := t.Execute(w, d); err != nil {
		return fmt.Errorf("compliance report: write: %w", err)
	}
	return nil
}

// group writes 1234567 as 1,234,567.
func group(s string) string {
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

func pct(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + "%"
}

func days(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " d"
}

// figure wraps a shown value in a span that names it and carries the exact
// value, for checks against SQL.
func figure(name string, v any) template.HTML {
	var exact, shown string
	switch x := v.(type) {
	case uint64:
		exact, shown = strconv.FormatUint(x, 10), group(strconv.FormatUint(x, 10))
	case int:
		exact, shown = strconv.Itoa(x), group(strconv.Itoa(x))
	case float64:
		exact = strconv.FormatFloat(x, 'g', -1, 64)
		if math.IsNaN(x) {
			exact = "nan"
		}
		switch {
		case strings.HasSuffix(name, "_days"):
			shown = days(x)
		case strings.HasSuffix(name, "_pct"):
			shown = pct(x)
		case math.IsNaN(x):
			shown = "n/a"
		default: // a score or a sum of scores
			shown = strconv.FormatFloat(x, 'f', 1, 64)
		}
	default:
		exact = fmt.Sprint(v)
		shown = exact
	}
	return template.HTML(fmt.Sprintf(`<span class="fig" data-figure="%s" data-value="%s">%s</span>`,
		html.EscapeString(name), html.EscapeString(exact), html.EscapeString(shown)))
}

// cell renders a value of a findings or hosts table.
func cell(v any) string {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) {
			return "n/a"
		}
		return strconv.FormatFloat(x, 'f', 1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', 1, 64)
	case time.Time:
		return x.UTC().Format(time.DateOnly)
	case []string:
		return strings.Join(x, ", ")
	case bool:
		if x {
			return "yes"
		}
		return "no"
	}
	return fmt.Sprint(v)
}

const (
	chartW, chartH = 760, 260
	padL, padR     = 56, 110
	padT, padB     = 16, 36
)

// trendSVG draws open exposures at the end of each day, one line per
// severity.
func trendSVG(points []TrendPoint) template.HTML {
	if len(points) == 0 {
		return `<p class="empty">No exposure history in this period.</p>`
	}
	var series []lineSeries
	for _, sev := range severity.All {
		ls := lineSeries{name: sev, attr: "data-severity", colour: severityColour[sev]}
		for _, p := range points {
			if p.Severity == sev {
				ls.points = append(ls.points, linePoint{p.Day, p.Open})
			}
		}
		if len(ls.points) > 0 {
			series = append(series, ls)
		}
	}
	return lineChart("chart-trend", "Open exposures by severity, end of each day", series)
}

// frameworkColours tell the frameworks' lines apart (in the order of the
// posture table; the legend names each).
var frameworkColours = []string{"#1c7ed6", "#862e9c", "#0b7285", "#5f3dc4", "#495057"}

// postureSVG draws the hosts out of compliance at the end of each day, one
// line per framework.
func postureSVG(points []PosturePoint, order []PostureRow) template.HTML {
	var series []lineSeries
	for i, fw := range order {
		ls := lineSeries{name: fw.Framework, attr: "data-framework", colour: frameworkColours[min(i, len(frameworkColours)-1)]}
		for _, p := range points {
			if p.Framework == fw.Framework {
				ls.points = append(ls.points, linePoint{p.Day, p.NonCompliantHosts})
			}
		}
		if len(ls.points) > 0 {
			series = append(series, ls)
		}
	}
	if len(series) == 0 {
		return `<p class="empty">No posture history in this period.</p>`
	}
	return lineChart("chart-posture", "Hosts out of compliance per framework, end of each day", series)
}

type linePoint struct {
	day time.Time
	v   int64
}

// lineSeries is one line of a lineChart: its legend name, the attribute
// that names it on the polyline (data-severity, data-framework), colour and
// points.
type lineSeries struct {
	name, attr, colour string
	points             []linePoint
}

// lineChart draws daily series as lines over a shared time axis.
func lineChart(id, label string, series []lineSeries) template.HTML {
	first, last := series[0].points[0].day, series[0].points[0].day
	var max int64 = 1
	for _, s := range series {
		for _, p := range s.points {
			if p.day.Before(first) {
				first = p.day
			}
			if p.day.After(last) {
				last = p.day
			}
			if p.v > max {
				max = p.v
			}
		}
	}
	span := last.Sub(first).Hours() / 24
	if span < 1 {
		span = 1
	}
	x := func(t time.Time) float64 { return padL + (t.Sub(first).Hours()/24)/span*float64(chartW-padL-padR) }
	y := func(v int64) float64 { return padT + (1-float64(v)/float64(max))*float64(chartH-padT-padB) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" id="%s" role="img" aria-label="%s" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`,
		html.EscapeString(id), html.EscapeString(label), chartW, chartH, chartW, chartH)
	// Grid and axis labels: 0, max/2, max.
	for _, v := range []int64{0, max / 2, max} {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="axis" text-anchor="end">%s</text>`,
			padL, chartW-padR, y(v), y(v), padL-6, y(v)+4, group(strconv.FormatInt(v, 10)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis">%s</text><text x="%d" y="%d" class="axis" text-anchor="end">%s</text>`,
		padL, chartH-10, first.Format(time.DateOnly), chartW-padR, chartH-10, last.Format(time.DateOnly))
	ly := padT + 4
	for _, s := range series {
		pts := make([]string, 0, len(s.points)+1)
		for _, p := range s.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.day), y(p.v)))
		}
		if len(pts) == 1 {
			pts = append(pts, pts[0])
		}
		fmt.Fprintf(&b, `<polyline class="series" %s="%s" fill="none" stroke="%s" stroke-width="2.5" points="%s"/>`,
			s.attr, html.EscapeString(s.name), s.colour, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d" class="legend">%s</text>`,
			chartW-padR+14, ly, s.colour, chartW-padR+32, ly+11, html.EscapeString(s.name))
		ly += 20
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// barsSVG draws SLA compliance per group as horizontal bars.
func barsSVG(rows []SLARow, id string) template.HTML {
	if len(rows) == 0 {
		return `<p class="empty">No exposures were due in this breakdown.</p>`
	}
	const rowH, labelW, barW = 26, 150, 480
	h := len(rows)*rowH + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" id="chart-%s" role="img" aria-label="SLA compliance by %s" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`,
		html.EscapeString(id), html.EscapeString(id), labelW+barW+80, h, labelW+barW+80, h)
	for i, r := range rows {
		yy := i*rowH + 4
		label := r.Group
		if label == "" {
			label = "(none)"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis" text-anchor="end">%s</text>`, labelW-8, yy+15, html.EscapeString(label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="18" class="track"/>`, labelW, yy, barW)
		if !math.IsNaN(r.CompliancePct) {
			colour := "#2b8a3e"
			switch {
			case r.CompliancePct < 80:
				colour = "#c92a2a"
			case r.CompliancePct < 95:
				colour = "#e8a200"
			}
			fmt.Fprintf(&b, `<rect class="bar" x="%d" y="%d" width="%.1f" height="18" fill="%s"/>`, labelW, yy, r.CompliancePct/100*barW, colour)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis">%s</text>`, labelW+barW+8, yy+15, pct(r.CompliancePct))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// mixSVG draws the open exposures' severity mix as one stacked bar.
func mixSVG(open map[string]uint64, total uint64) template.HTML {
	if total == 0 {
		return `<p class="empty">No open exposures.</p>`
	}
	const w, h = 760, 28
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" id="chart-mix" role="img" aria-label="Open exposures by severity" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`, w, h, w, h)
	x := 0.0
	for _, sev := range severity.All {
		n := open[sev]
		if n == 0 {
			continue
		}
		bw := float64(n) / float64(total) * w
		fmt.Fprintf(&b, `<rect class="bar" data-severity="%s" x="%.1f" y="0" width="%.1f" height="%d" fill="%s"><title>%s: %d</title></rect>`, sev, x, bw, h, severityColour[sev], sev, n)
		x += bw
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

const page = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Patch compliance report — {{.Options.Title}} — {{date .GeneratedAt}}</title>
<style>
  @page { size: A4; margin: 14mm; }
  body { font-family: "DejaVu Sans", Arial, sans-serif; color: #212529; margin: 24px auto; max-width: 900px; font-size: 13px; line-height: 1.45; }
  h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 17px; border-bottom: 2px solid #dee2e6; padding-bottom: 4px; margin-top: 28px; }
  .meta { color: #495057; } .empty { color: #868e96; font-style: italic; }
  .tiles { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; margin: 16px 0; }
  .tile { border: 1px solid #dee2e6; border-radius: 6px; padding: 10px; background: #f8f9fa; }
  .tile .fig { font-size: 22px; font-weight: bold; display: block; } .tile .lbl { color: #495057; font-size: 12px; }
  table { border-collapse: collapse; width: 100%; margin: 8px 0; } th, td { border-bottom: 1px solid #e9ecef; padding: 4px 6px; text-align: left; }
  th { background: #f1f3f5; } td.n, th.n { text-align: right; }
  .chart .grid { stroke: #e9ecef; } .chart .axis, .chart .legend { font-size: 11px; fill: #495057; } .chart .track { fill: #f1f3f5; }
  .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
  section { break-inside: avoid; }
  dl dt { font-weight: bold; margin-top: 6px; } dl dd { margin-left: 16px; }
</style>
</head>
<body>
<header>
<h1>Patch compliance report</h1>
<div class="meta">{{.Options.Title}} · period: last {{periodDays}} days to {{date .GeneratedAt}} · generated {{datetime .GeneratedAt}} ·
figures as of the last refresh: {{if .AsOf.IsZero}}never refreshed{{else}}{{datetime .AsOf}}{{end}} · SLA policy <code>{{.Options.Policy}}</code></div>
</header>

<section id="summary">
<h2>Executive summary</h2>
<div class="tiles">
  <div class="tile">{{figure "sla_compliance_pct" .SLA.CompliancePct}}<span class="lbl">of due exposures remediated within SLA</span></div>
  <div class="tile">{{figure "coverage_pct" .Coverage.CoveragePct}}<span class="lbl">of hosts with nothing overdue</span></div>
  <div class="tile">{{figure "open_total" .OpenTotal}}<span class="lbl">open exposures on {{figure "hosts" .Hosts}} hosts</span></div>
  <div class="tile">{{figure "sla_overdue" .SLA.Overdue}}<span class="lbl">open past their SLA deadline; {{figure "open_kev" .OpenKEV}} open are known exploited (CISA KEV)</span></div>
</div>
<p>{{figure "hosts_overdue" .Coverage.HostsOverdue}} of {{num .Coverage.Hosts}} hosts have at least one overdue exposure.
{{figure "sla_met" .SLA.Met}} exposures were remediated within their SLA and {{figure "sla_missed" .SLA.Missed}} after it;
{{figure "sla_open_in_sla" .SLA.OpenInSLA}} are open and not yet due. {{figure "exceptions_approved" (status "approved")}} approved risk exceptions are in force;
{{len .ExpiringSoon}} expire within {{expiryDays}} days.</p>
</section>

<section id="exposure">
<h2>Open exposures by severity</h2>
{{mixSVG}}
<table><tr>{{range sevs}}<th class="n"><span class="swatch" style="background: {{colour .}}"></span>{{.}}</th>{{end}}<th class="n">total</th></tr>
<tr>{{range sevs}}<td class="n">{{figure (printf "open_%s" .) (open .)}}</td>{{end}}<td class="n">{{num .OpenTotal}}</td></tr></table>
<h3>Over the period (open at the end of each day)</h3>
{{trendSVG}}
</section>

<section id="sla">
<h2>SLA compliance by ring and group</h2>
<h3>By ring</h3>
{{barsSVG .SLAByRing "ring"}}
<table><tr><th>ring</th><th class="n">exposures</th><th class="n">met</th><th class="n">missed</th><th class="n">overdue</th><th class="n">open, not due</th><th class="n">compliance</th></tr>
{{range .SLAByRing}}<tr><td>{{.Group}}</td><td class="n">{{num .Exposures}}</td><td class="n">{{num .Met}}</td><td class="n">{{num .Missed}}</td><td class="n">{{num .Overdue}}</td><td class="n">{{num .OpenInSLA}}</td><td class="n">{{figure (printf "sla_ring_%s_pct" .Group) .CompliancePct}}</td></tr>{{end}}</table>
<h3>By group (owner)</h3>
{{barsSVG .SLAByOwner "owner"}}
<table><tr><th>owner</th><th class="n">exposures</th><th class="n">met</th><th class="n">missed</th><th class="n">overdue</th><th class="n">open, not due</th><th class="n">compliance</th></tr>
{{range .SLAByOwner}}<tr><td>{{.Group}}</td><td class="n">{{num .Exposures}}</td><td class="n">{{num .Met}}</td><td class="n">{{num .Missed}}</td><td class="n">{{num .Overdue}}</td><td class="n">{{num .OpenInSLA}}</td><td class="n">{{figure (printf "sla_owner_%s_pct" .Group) .CompliancePct}}</td></tr>{{end}}</table>
</section>

<section id="mttr">
<h2>Mean time to remediate and time to patch</h2>
<table><tr><th>severity</th><th class="n">resolved</th><th class="n">MTTR (mean)</th><th class="n">MTTR (median)</th><th class="n">from publication (mean)</th><th class="n">from fix release (mean)</th></tr>
{{range .Durations}}<tr><td>{{.Severity}}</td><td class="n">{{num .Resolved}}</td><td class="n">{{figure (printf "mttr_%s_days" .Severity) .MeanDays}}</td><td class="n">{{figure (printf "mttr_%s_median_days" .Severity) .Median}}</td><td class="n">{{figure (printf "ttp_publication_%s_days" .Severity) .FromPublicationAvg}}</td><td class="n">{{figure (printf "ttp_fix_%s_days" .Severity) .FromFixAvg}}</td></tr>{{end}}</table>
</section>

<section id="risks">
<h2>Top risks</h2>
<h3>Hosts</h3>
{{with .TopHosts}}{{if .Rows}}<table><tr><th>host</th><th>ring</th><th>owner</th><th class="n">open</th><th class="n">overdue</th><th class="n">KEV</th><th class="n">host risk</th><th>top advisory</th></tr>
{{range .Records}}<tr><td>{{index . "hostname"}}</td><td>{{index . "ring"}}</td><td>{{index . "owner"}}</td><td class="n">{{cell (index . "open_exposures")}}</td><td class="n">{{cell (index . "overdue")}}</td><td class="n">{{cell (index . "kev_exposures")}}</td><td class="n">{{cell (index . "host_risk")}}</td><td>{{index . "top_advisory_id"}}</td></tr>{{end}}</table>{{else}}<p class="empty">No hosts.</p>{{end}}{{end}}
<h3>Findings</h3>
{{with .TopFindings}}{{if .Rows}}<table><tr><th>host</th><th>advisory</th><th>package</th><th>installed</th><th>fixed in</th><th>severity</th><th class="n">risk</th><th>SLA</th></tr>
{{range .Records}}<tr><td>{{index . "hostname"}}</td><td>{{index . "advisory_id"}}</td><td>{{index . "package"}}</td><td>{{index . "installed_version"}}</td><td>{{index . "fixed_version"}}</td><td>{{index . "severity"}}</td><td class="n">{{cell (index . "risk_score")}}</td><td>{{index . "sla_state"}}</td></tr>{{end}}</table>{{else}}<p class="empty">No open findings.</p>{{end}}{{end}}
</section>

<section id="exceptions">
<h2>Risk exceptions</h2>
<table><tr>{{range statuses}}<th class="n">{{.}}</th>{{end}}</tr><tr>{{range statuses}}<td class="n">{{figure (printf "exceptions_%s" .) (status (print .))}}</td>{{end}}</tr></table>
<h3>Expiring soon</h3>
{{if .ExpiringSoon}}<table><tr><th>exception</th><th>advisory</th><th>scope</th><th>owner</th><th>approved by</th><th>expires</th></tr>
{{range .ExpiringSoon}}<tr><td>{{.ID}}</td><td>{{.Advisory}}</td><td>{{.Scope}} {{.Host}}{{.Package}}{{.Selector}}</td><td>{{.Owner}}</td><td>{{.Approver}}</td><td>{{date .ExpiresAt}}</td></tr>{{end}}</table>
{{else}}<p class="empty">No approved exception expires within the window.</p>{{end}}
</section>

<section id="posture">
<h2>Compliance posture by framework</h2>
<p>A host complies with a framework when none of the exposures the framework judges is open past the framework's deadline, unless an approved, unexpired risk exception accepts it; the column "without exceptions" ignores exceptions. A stale host (not scanned within the stale limit) is never compliant. As of the last refresh.</p>
{{if .Posture}}<table><tr><th>framework</th><th>judges</th><th class="n">hosts</th><th class="n">compliant</th><th class="n">compliant share</th><th class="n">without exceptions</th><th class="n">open in scope</th><th class="n">overdue</th><th class="n">overdue, accepted</th><th class="n">exceptions in force</th><th class="n">stale hosts</th></tr>
{{range .Posture}}{{$k := key .Framework}}<tr><td>{{.Framework}}</td><td>{{scope .Framework}}</td><td class="n">{{figure (printf "posture_%s_hosts" $k) .Hosts}}</td><td class="n">{{figure (printf "posture_%s_compliant_hosts" $k) .Compliant}}</td><td class="n">{{figure (printf "posture_%s_compliant_pct" $k) .CompliantPct}}</td><td class="n">{{figure (printf "posture_%s_compliant_hosts_strict" $k) .CompliantStrict}}</td><td class="n">{{figure (printf "posture_%s_open_in_scope" $k) .OpenInScope}}</td><td class="n">{{figure (printf "posture_%s_overdue" $k) .Overdue}}</td><td class="n">{{figure (printf "posture_%s_overdue_accepted" $k) .OverdueAccepted}}</td><td class="n">{{figure (printf "posture_%s_open_exceptions" $k) .OpenExceptions}}</td><td class="n">{{figure (printf "posture_%s_stale_hosts" $k) .StaleHosts}}</td></tr>{{end}}</table>
<h3>Hosts out of compliance over the period (exceptions not applied)</h3>
{{postureSVG}}
<h3>By group (owner): compliant hosts of all hosts</h3>
<table><tr><th>owner</th>{{range .Posture}}<th class="n">{{.Framework}}</th>{{end}}</tr>
{{range $o := owners}}<tr><td>{{if $o}}{{$o}}{{else}}(none){{end}}</td>{{range $.Posture}}<td class="n">{{with ownerPosture .Framework $o}}{{figure (printf "posture_%s_owner_%s_compliant_hosts" (key .Framework) (key $o)) .Compliant}} / {{num .Hosts}}{{end}}</td>{{end}}</tr>{{end}}</table>
<h3>Frameworks and their sources</h3>
<dl>{{range .Frameworks}}<dt>{{.Title}} (<code>{{.ID}}</code>)</dt><dd>Judges {{scope .ID}}; deadlines of SLA policy <code>{{.Policy}}</code>: {{slaDays .Days}} days{{if .KEVDueDate}}, or the CISA KEV due date{{end}}. Source: {{.Source}}.</dd>{{end}}</dl>
{{else}}<p class="empty">No compliance framework is loaded in this store.</p>{{end}}
</section>

<section id="fixes">
<h2>Top fixes (current plan)</h2>
{{with .Plan}}<p>Plan <code>{{.ID}}</code>, created {{datetime .CreatedAt}} by {{.CreatedBy}}: {{figure "plan_actions" .Actions}} actions on {{figure "plan_hosts" .Hosts}} hosts. The fixes that remove the most risk:</p>
{{if $.TopFixes}}<table><tr><th>package</th><th>target version</th><th>ecosystem</th><th class="n">hosts</th><th class="n">advisories</th><th class="n">KEV</th><th class="n">risk removed</th><th>first window</th></tr>
{{range $i, $f := $.TopFixes}}<tr><td>{{.Package}}</td><td>{{.TargetVersion}}</td><td>{{.Ecosystem}}</td><td class="n">{{figure (printf "fix_%d_hosts" (inc $i)) .Hosts}}</td><td class="n">{{num .Advisories}}</td><td class="n">{{num .KEVAdvisories}}</td><td class="n">{{figure (printf "fix_%d_risk_reduction" (inc $i)) .RiskReduction}}</td><td>{{if .FirstWindow.IsZero}}unscheduled{{else}}{{datetime .FirstWindow}}{{end}}</td></tr>{{end}}</table>
{{else}}<p class="empty">The current plan has no actions.</p>{{end}}
{{else}}<p class="empty">No remediation plan yet (patchgrid plan create).</p>{{end}}
</section>

<section id="deployments">
<h2>Deployment failures and rollbacks</h2>
<p>Attempts reported by remediation automation in the weeks from {{figure "deploy_since" (date .Deploy.Since)}}: {{figure "deploy_deployments" .Deploy.Deployments}} deployments, of which {{figure "deploy_failed" .Deploy.Failed}} failed and {{figure "deploy_rolled_back" .Deploy.RolledBack}} were rolled back: a failure rate of {{figure "deploy_failure_rate_pct" .Deploy.FailureRatePct}} and a rollback rate of {{figure "deploy_rollback_rate_pct" .Deploy.RollbackRatePct}}.</p>
{{if .Deploy.ByRing}}<table><tr><th>ring</th><th class="n">deployments</th><th class="n">failed</th><th class="n">rolled back</th><th class="n">failure rate</th><th class="n">rollback rate</th></tr>
{{range .Deploy.ByRing}}<tr><td>{{if .Ring}}{{.Ring}}{{else}}(none){{end}}</td><td class="n">{{num .Deployments}}</td><td class="n">{{num .Failed}}</td><td class="n">{{num .RolledBack}}</td><td class="n">{{figure (printf "deploy_ring_%s_failure_rate_pct" .Ring) .FailureRatePct}}</td><td class="n">{{figure (printf "deploy_ring_%s_rollback_rate_pct" .Ring) .RollbackRatePct}}</td></tr>{{end}}</table>
{{else}}<p class="empty">No deployment was reported in this period.</p>{{end}}
</section>

<section id="methodology">
<h2>Methodology</h2>
<p>Every figure comes from the views documented in <code>schemas/VIEWS.md</code>, read through the same code as the HTTP API, as of the last refresh shown above. Definitions:</p>
<dl>
<dt>Exposure</dt><dd>A host affected by an advisory, from the first scan that showed it to the first later scan that did not (<code>exposure_history</code>). A finding is one affected installed package of a current exposure (<code>finding_risk</code>).</dd>
<dt>SLA compliance</dt><dd>Exposures remediated by their SLA deadline divided by all exposures that were remediated or fell due (met / (met + missed + overdue)), per the policy's days per severity; a CISA KEV due date replaces the clock when sooner (<code>kpi_sla_compliance</code>).</dd>
<dt>Patch coverage</dt><dd>Hosts with no open exposure past its SLA deadline, divided by all hosts (<code>kpi_patch_coverage</code>).</dd>
<dt>Open exposures</dt><dd>Exposures whose host's latest scan still shows them (<code>kpi_open_exposure</code>); installed kernels that are not running are not counted.</dd>
<dt>MTTR</dt><dd>Mean and median days from first detection to resolution of resolved exposures (<code>kpi_mttr</code>).</dd>
<dt>Time to patch</dt><dd>Mean days from advisory publication, and from the fix's release, to resolution (<code>kpi_time_to_patch</code>).</dd>
<dt>Trend</dt><dd>Exposures open at the end of each day (<code>kpi_daily_trend</code>), carried over days without change.</dd>
<dt>Risk</dt><dd>The 0–100 risk score of <code>exposure_risk</code>: CVSS, EPSS, KEV, asset criticality, internet exposure and time past SLA (<code>analytics/risk/README.md</code>).</dd>
<dt>Compliance posture</dt><dd>Per framework and group (<code>compliance_posture</code>): hosts with no open exposure in the framework's scope past the framework's deadline that no approved exception covers (compliant), the same ignoring exceptions, the overdue exposures apart from those an exception accepts, and the approved, unexpired exceptions covering open exposures in scope. A host whose latest scan is older than the stale limit is stale: never compliant, its exposures neither overdue nor accepted (as in patch coverage). A framework is an SLA policy (rows of <code>sla_policy</code>) and a scope: CISA BOD 22-01 judges CISA KEV advisories only, by their KEV due date; PCI DSS 6.3.3 every exposure, 30 days from the fix's release for critical and high; the internal SLA every exposure under the active policy. The deadline and clock are those of SLA compliance above.</dd>
<dt>Posture over time</dt><dd>Hosts with at least one exposure in scope past its deadline at the end of each day (<code>compliance_posture_trend</code>), carried over days without change; exceptions are not applied, as their past states are kept in the audit trail, not per day.</dd>
<dt>Top fixes</dt><dd>The current plan (the latest <code>patchgrid plan create</code>) grouped by fix — one package upgraded to one target version across hosts (<code>plan_fixes_current</code>) — ordered by the risk it removes: the sum of the risk scores of the findings its actions close.</dd>
<dt>Deployment failures and rollbacks</dt><dd>Attempts that remediation automation reported for plan actions (<code>kpi_deploy_failures</code>, from <code>outcomes</code>), summed over the weeks (Monday to Sunday, UTC, by the attempt's finish) from the one containing the period's first day. Deployments are attempts other than skipped; the failure rate is (failed + rolled back) / deployments, since a rollback is a failed deployment that had installed; the rollback rate is rolled back / deployments.</dd>
<dt>Exceptions</dt><dd>Risk acceptances approved by someone other than the requester, until their expiry (<code>exceptions_current</code>); they mark findings accepted and never move an SLA deadline. Every decision is in the hash-chained audit trail (<code>patchgrid audit verify</code>).</dd>
</dl>
</section>
</body>
</html>
`
