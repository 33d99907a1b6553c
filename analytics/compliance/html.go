package compliance

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
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
		shown = pct(x)
		if strings.HasSuffix(name, "_days") {
			shown = days(x)
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
	first, last := points[0].Day, points[0].Day
	var max int64 = 1
	for _, p := range points {
		if p.Day.Before(first) {
			first = p.Day
		}
		if p.Day.After(last) {
			last = p.Day
		}
		if p.Open > max {
			max = p.Open
		}
	}
	span := last.Sub(first).Hours() / 24
	if span < 1 {
		span = 1
	}
	x := func(t time.Time) float64 { return padL + (t.Sub(first).Hours()/24)/span*float64(chartW-padL-padR) }
	y := func(v int64) float64 { return padT + (1-float64(v)/float64(max))*float64(chartH-padT-padB) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" id="chart-trend" role="img" aria-label="Open exposures by severity, end of each day" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, chartW, chartH)
	// Grid and axis labels: 0, max/2, max.
	for _, v := range []int64{0, max / 2, max} {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="axis" text-anchor="end">%s</text>`,
			padL, chartW-padR, y(v), y(v), padL-6, y(v)+4, group(strconv.FormatInt(v, 10)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis">%s</text><text x="%d" y="%d" class="axis" text-anchor="end">%s</text>`,
		padL, chartH-10, first.Format(time.DateOnly), chartW-padR, chartH-10, last.Format(time.DateOnly))
	ly := padT + 4
	for _, sev := range severity.All {
		var pts []string
		for _, p := range points {
			if p.Severity == sev {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.Day), y(p.Open)))
			}
		}
		if len(pts) == 0 {
			continue
		}
		if len(pts) == 1 {
			pts = append(pts, pts[0])
		}
		fmt.Fprintf(&b, `<polyline class="series" data-severity="%s" fill="none" stroke="%s" stroke-width="2.5" points="%s"/>`,
			sev, severityColour[sev], strings.Join(pts, " "))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d" class="legend">%s</text>`,
			chartW-padR+14, ly, severityColour[sev], chartW-padR+32, ly+11, sev)
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
<dt>Exceptions</dt><dd>Risk acceptances approved by someone other than the requester, until their expiry (<code>exceptions_current</code>); they mark findings accepted and never move an SLA deadline. Every decision is in the hash-chained audit trail (<code>patchgrid audit verify</code>).</dd>
</dl>
</section>
</body>
</html>
`
