package compliance_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/compliance"
	"github.com/patchgrid/patchgrid/analytics/exception"
	"github.com/patchgrid/patchgrid/analytics/kpi/kpitest"
	"github.com/patchgrid/patchgrid/analytics/plan"
	"github.com/patchgrid/patchgrid/analytics/refresh"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// report seeds kpitest's fleet, approves one exception, creates a plan with
// reported outcomes (deployOutcomes), refreshes and writes the report.
func report(t *testing.T) (store.Store, string) {
	t.Helper()
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	kpitest.Seed(t, st)
	kpitest.Refresh(t, st)
	ctx := context.Background()
	book := exception.New(st, nil, exception.Config{})
	ex, err := book.Request(ctx, exception.Request{Advisory: "CVE-2024-0002", Host: "h2", Owner: "bob", Reason: "appliance",
		Requester: "bob", ExpiresIn: 5 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := book.Approve(ctx, ex.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	// The plan reads the findings of the seed's refresh; the next refresh
	// brings the exception into the KPIs and the posture and the outcomes
	// into the deployment KPIs.
	deployOutcomes(t, st)
	kpitest.Refresh(t, st)
	d, err := compliance.Gather(ctx, st, compliance.Options{Period: 60 * 24 * time.Hour, Title: "Test fleet"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := compliance.WriteHTML(&buf, d); err != nil {
		t.Fatal(err)
	}
	return st, buf.String()
}

// deployOutcomes creates a plan and reports outcomes for its actions:
//
//	action 1: attempt 1 failed 100 days ago (before the period), attempt 2
//	          failed 3 days ago, attempt 3 succeeded 2 days ago
//	action 2: attempt 1 rolled back 2 days ago, attempt 2 skipped 1 day ago
//
// so the period (60 days) has 3 deployments: 1 failed, 1 rolled back.
func deployOutcomes(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	p, err := plan.Create(ctx, st, plan.CreateOptions{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.Query(ctx, "SELECT action_id, host_id, package, installed_version, target_version FROM plan_actions WHERE plan_id = ? ORDER BY rank", p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var acts [][5]string
	for rows.Next() {
		var a [5]string
		if err := rows.Scan(&a[0], &a[1], &a[2], &a[3], &a[4]); err != nil {
			t.Fatal(err)
		}
		acts = append(acts, a)
	}
	rows.Close()
	if len(acts) < 2 {
		t.Fatalf("plan %s has %d actions, want at least 2", p.ID, len(acts))
	}
	now := time.Now().UTC().Truncate(time.Second)
	day := func(d int) time.Time { return now.Add(-time.Duration(d) * 24 * time.Hour) }
	out := func(a [5]string, attempt uint32, status string, at time.Time) []any {
		return []any{p.ID, a[0], attempt, a[1], a[2], a[3], a[4], status, at.Add(-time.Hour), at, "", uint8(0), now}
	}
	if err := st.Insert(ctx, "outcomes", []string{"plan_id", "action_id", "attempt", "host_id", "package", "from_version", "to_version",
		"status", "started_at", "finished_at", "error", "reboot_required", "received_at"}, [][]any{
		out(acts[0], 1, "failed", day(100)),
		out(acts[0], 2, "failed", day(3)),
		out(acts[0], 3, "succeeded", day(2)),
		out(acts[1], 1, "rolled_back", day(2)),
		out(acts[1], 2, "skipped", day(1)),
	}); err != nil {
		t.Fatal(err)
	}
}

var figureRE = regexp.MustCompile(`data-figure="([^"]+)" data-value="([^"]*)"`)

// TestReportFiguresEqualViews reads every figure of the report back and
// checks it against SQL on the documented views.
func TestReportFiguresEqualViews(t *testing.T) {
	st, html := report(t)
	ctx := context.Background()
	figs := map[string]string{}
	for _, m := range figureRE.FindAllStringSubmatch(html, -1) {
		figs[m[1]] = m[2]
	}
	one := func(q string) float64 {
		t.Helper()
		rows, err := st.Query(ctx, "SELECT toFloat64(("+q+"))")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var v float64
		if !rows.Next() {
			t.Fatalf("%s: no row", q)
		}
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	want := map[string]string{
		"sla_compliance_pct":  "SELECT compliance_pct FROM kpi_sla_compliance WHERE exceptions = 'honoured' AND policy = 'default' AND dimension = 'all' AND severity = 'all'",
		"sla_overdue":         "SELECT overdue FROM kpi_sla_compliance WHERE exceptions = 'honoured' AND policy = 'default' AND dimension = 'all' AND severity = 'all'",
		"sla_met":             "SELECT met FROM kpi_sla_compliance WHERE exceptions = 'honoured' AND policy = 'default' AND dimension = 'all' AND severity = 'all'",
		"sla_missed":          "SELECT missed FROM kpi_sla_compliance WHERE exceptions = 'honoured' AND policy = 'default' AND dimension = 'all' AND severity = 'all'",
		"coverage_pct":        "SELECT coverage_pct FROM kpi_patch_coverage WHERE exceptions = 'honoured' AND policy = 'default' AND dimension = 'all'",
		"hosts":               "SELECT count() FROM host_risk",
		"hosts_overdue":       "SELECT hosts_overdue FROM kpi_patch_coverage WHERE exceptions = 'honoured' AND policy = 'default' AND dimension = 'all'",
		"open_total":          "SELECT sum(open_exposures) FROM kpi_open_exposure WHERE exceptions = 'honoured' AND dimension = 'all'",
		"open_kev":            "SELECT sum(open_exposures) FROM kpi_open_exposure WHERE exceptions = 'honoured' AND dimension = 'all' AND kev = 1",
		"open_critical":       "SELECT sum(open_exposures) FROM kpi_open_exposure WHERE exceptions = 'honoured' AND dimension = 'all' AND severity = 'critical'",
		"open_low":            "SELECT sum(open_exposures) FROM kpi_open_exposure WHERE exceptions = 'honoured' AND dimension = 'all' AND severity = 'low'",
		"sla_ring_prod_pct":   "SELECT compliance_pct FROM kpi_sla_compliance WHERE exceptions = 'honoured' AND policy = 'default' AND dimension = 'ring' AND dim_value = 'prod' AND severity = 'all'",
		"sla_owner_bob_pct":   "SELECT compliance_pct FROM kpi_sla_compliance WHERE exceptions = 'honoured' AND policy = 'default' AND dimension = 'owner' AND dim_value = 'bob' AND severity = 'all'",
		"mttr_high_days":      "SELECT mttr_days FROM kpi_mttr WHERE exceptions = 'honoured' AND dimension = 'all' AND severity = 'high'",
		"ttp_fix_high_days":   "SELECT from_fix_avg_days FROM kpi_time_to_patch WHERE exceptions = 'honoured' AND dimension = 'all' AND severity = 'high'",
		"exceptions_approved": "SELECT count() FROM exceptions_current WHERE effective_status = 'approved'",
		// Compliance posture per framework and group.
		"posture_internal_sla_hosts":                      "SELECT hosts FROM compliance_posture WHERE framework = 'internal-sla' AND dimension = 'all'",
		"posture_internal_sla_compliant_hosts":            "SELECT compliant_hosts FROM compliance_posture WHERE framework = 'internal-sla' AND dimension = 'all'",
		"posture_internal_sla_compliant_pct":              "SELECT compliant_pct FROM compliance_posture WHERE framework = 'internal-sla' AND dimension = 'all'",
		"posture_internal_sla_overdue_accepted":           "SELECT overdue_accepted FROM compliance_posture WHERE framework = 'internal-sla' AND dimension = 'all'",
		"posture_internal_sla_open_exceptions":            "SELECT open_exceptions FROM compliance_posture WHERE framework = 'internal-sla' AND dimension = 'all'",
		"posture_cisa_bod_22_01_compliant_hosts":          "SELECT compliant_hosts FROM compliance_posture WHERE framework = 'cisa-bod-22-01' AND dimension = 'all'",
		"posture_cisa_bod_22_01_overdue":                  "SELECT overdue FROM compliance_posture WHERE framework = 'cisa-bod-22-01' AND dimension = 'all'",
		"posture_pci_dss_6_3_3_compliant_hosts_strict":    "SELECT compliant_hosts_strict FROM compliance_posture WHERE framework = 'pci-dss-6.3.3' AND dimension = 'all'",
		"posture_pci_dss_6_3_3_overdue":                   "SELECT overdue FROM compliance_posture WHERE framework = 'pci-dss-6.3.3' AND dimension = 'all'",
		"posture_pci_dss_6_3_3_open_in_scope":             "SELECT open_in_scope FROM compliance_posture WHERE framework = 'pci-dss-6.3.3' AND dimension = 'all'",
		"posture_pci_dss_6_3_3_owner_bob_compliant_hosts": "SELECT compliant_hosts FROM compliance_posture WHERE framework = 'pci-dss-6.3.3' AND dimension = 'owner' AND dim_value = 'bob'",
		// Top fixes of the current plan.
		"plan_actions":         "SELECT count() FROM plan_actions_current",
		"fix_1_risk_reduction": "SELECT max(risk_reduction) FROM plan_fixes_current",
		"fix_1_hosts":          "SELECT argMax(hosts, risk_reduction) FROM plan_fixes_current",
	}
	// Deployment failures over the weeks from the one the period starts in.
	since, ok := figs["deploy_since"]
	if !ok {
		t.Fatal("figure deploy_since is not in the report")
	}
	weeks := "FROM kpi_deploy_failures WHERE dimension = '%s' AND week >= toDate('" + since + "')"
	for name, q := range map[string]string{
		"deploy_deployments":       "SELECT sum(deployments) " + weeks,
		"deploy_failed":            "SELECT sum(failed) " + weeks,
		"deploy_rolled_back":       "SELECT sum(rolled_back) " + weeks,
		"deploy_failure_rate_pct":  "SELECT 100 * (sum(failed) + sum(rolled_back)) / sum(deployments) " + weeks,
		"deploy_rollback_rate_pct": "SELECT 100 * sum(rolled_back) / sum(deployments) " + weeks,
	} {
		want[name] = fmt.Sprintf(q, "all")
	}
	// Per ring: every ring the report lists.
	rings := 0
	for name := range figs {
		if ring, ok := strings.CutPrefix(name, "deploy_ring_"); ok && strings.HasSuffix(ring, "_failure_rate_pct") {
			ring = strings.TrimSuffix(ring, "_failure_rate_pct")
			want[name] = fmt.Sprintf("SELECT 100 * (sum(failed) + sum(rolled_back)) / sum(deployments) "+weeks+" AND dim_value = '%s'", "ring", ring)
			rings++
		}
	}
	if rings == 0 {
		t.Error("the report lists no ring's deployment failures")
	}
	for name, q := range want {
		got, ok := figs[name]
		if !ok {
			t.Errorf("figure %s is not in the report", name)
			continue
		}
		w := one(q)
		g, err := strconv.ParseFloat(got, 64)
		if got == "nan" {
			g = math.NaN()
		} else if err != nil {
			t.Errorf("figure %s = %q: %v", name, got, err)
			continue
		}
		if !(g == w || math.IsNaN(g) && math.IsNaN(w) || math.Abs(g-w) < 1e-9) {
			t.Errorf("figure %s = %v, SQL says %v", name, g, w)
		}
	}
	// The hand-worked fleet: 4 hosts, 3 open exposures (h2/A1, h2/A2,
	// h3/A4), of which the exception accepts h2/A2 from the refresh after
	// its approval: 2 open, not accepted.
	if figs["hosts"] != "4" || figs["open_total"] != "2" || figs["exceptions_approved"] != "1" {
		t.Errorf("hosts %s, open %s, approved exceptions %s; want 4, 2, 1", figs["hosts"], figs["open_total"], figs["exceptions_approved"])
	}
	// By hand (see deployOutcomes and analytics/compliance/frameworks'
	// TestPostureHandWorked; the exception accepts h2's A2): the attempt
	// before the period is not counted; under PCI DSS h2 and h3 stay
	// out of compliance, under the internal SLA h2 (A1 past its KEV date).
	for name, w := range map[string]string{
		"deploy_deployments": "3", "deploy_failed": "1", "deploy_rolled_back": "1",
		"posture_internal_sla_compliant_hosts": "3", "posture_internal_sla_overdue_accepted": "1",
		"posture_pci_dss_6_3_3_overdue": "2", "posture_pci_dss_6_3_3_compliant_hosts_strict": "2",
		"posture_cisa_bod_22_01_overdue": "1",
	} {
		if figs[name] != w {
			t.Errorf("figure %s = %q, want %s", name, figs[name], w)
		}
	}
	for _, s := range []string{`id="chart-trend"`, `id="chart-ring"`, `id="chart-owner"`, `id="chart-mix"`, `id="chart-posture"`, "<polyline", "Methodology",
		"https://www.cisa.gov/news-events/directives/bod-22-01-reducing-significant-risk-known-exploited-vulnerabilities", "PCI DSS v4.0, requirement 6.3.3",
		"<dt>Compliance posture</dt>", "<dt>Top fixes</dt>", "<dt>Deployment failures and rollbacks</dt>"} {
		if !strings.Contains(html, s) {
			t.Errorf("report lacks %s", s)
		}
	}
	// Self-contained: nothing is fetched.
	// Sources are cited as text, so an address may appear in the text;
	// nothing may load or link to one.
	for _, s := range []string{"<script", "<link", "src=", "href=", "url(", "@import", "<iframe", "<object", "<img"} {
		if strings.Contains(html, s) {
			t.Errorf("report refers to an external resource (%s)", s)
		}
	}
}

// The report's "as of" is the last refresh that wrote the KPI tables: a
// refresh that left them for the next one (refresh.Job.DeferSnapshots, as
// `patchgrid run` does before its automation stage) does not move it.
func TestAsOfIsTheLastRefreshOfTheKPIs(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	kpitest.Seed(t, st)
	kpitest.Refresh(t, st)
	ctx := context.Background()
	asOf := func() time.Time {
		t.Helper()
		d, err := compliance.Gather(ctx, st, compliance.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return d.AsOf
	}
	first := asOf()
	if first.IsZero() {
		t.Fatal("no as-of time after a refresh")
	}
	// Refresh runs are recorded to the second.
	time.Sleep(1100 * time.Millisecond)
	if _, err := (&refresh.Job{Store: st, Log: slog.New(slog.DiscardHandler), DeferSnapshots: true}).Run(ctx, refresh.Incremental); err != nil {
		t.Fatal(err)
	}
	if got := asOf(); !got.Equal(first) {
		t.Errorf("as of %s after a refresh that left the KPI tables, want %s", got, first)
	}
	time.Sleep(1100 * time.Millisecond)
	kpitest.Refresh(t, st)
	if got := asOf(); !got.After(first) {
		t.Errorf("as of %s after a refresh that wrote the KPI tables, want after %s", got, first)
	}
}

func TestGatherRefusesAnUnknownPolicy(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	kpitest.Seed(t, st)
	kpitest.Refresh(t, st)
	_, err := compliance.Gather(context.Background(), st, compliance.Options{Policy: "defualt"})
	if err == nil || !strings.Contains(err.Error(), `unknown SLA policy "defualt"`) {
		t.Fatalf("mistyped policy: %v", err)
	}
}

func TestGatherRefusesAnEmptyStore(t *testing.T) {
	st := testenv.CHDBStore(t)
	kpitest.Migrate(t, st)
	if _, err := compliance.Gather(context.Background(), st, compliance.Options{}); !errors.Is(err, compliance.ErrNoData) {
		t.Fatalf("empty store: %v, want ErrNoData", err)
	}
}

// TestReportRendersInChromium prints the report to PNG and PDF with headless
// Chromium and looks at the result: pages that are not blank, and the
// charts' colours on them.
func TestReportRendersInChromium(t *testing.T) {
	chromium, pdftoppm := testenv.Chromium(t)
	_, html := report(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "report.html")
	if err := os.WriteFile(src, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	run := func(args ...string) {
		t.Helper()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
			"--user-data-dir=" + filepath.Join(dir, "profile"), "--hide-scrollbars"}
		cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, out)
		}
	}
	pngPath, pdfPath := filepath.Join(dir, "report.png"), filepath.Join(dir, "report.pdf")
	run("--window-size=1000,2400", "--screenshot="+pngPath, "file://"+src)
	run("--no-pdf-header-footer", "--print-to-pdf="+pdfPath, "file://"+src)

	img := readPNG(t, pngPath)
	if ink := inkShare(img); ink < 0.02 {
		t.Fatalf("screenshot is blank: %.4f of pixels are not white", ink)
	}
	// The trend chart and the severity mix draw critical exposures in
	// #7f0000 and low ones in #2b8a3e; the SLA bars draw in the same green
	// or in red/amber. Seeing those colours means the SVG charts rendered.
	for name, c := range map[string][3]uint8{"critical": {0x7f, 0, 0}, "low": {0x2b, 0x8a, 0x3e}} {
		if n := countColour(img, c); n < 50 {
			t.Errorf("screenshot has %d pixels of the %s colour: chart missing", n, name)
		}
	}

	pdf, err := os.ReadFile(pdfPath)
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("pdf: %v, starts %q", err, pdf[:min(8, len(pdf))])
	}
	out := filepath.Join(dir, "page")
	cmd := exec.CommandContext(ctx, pdftoppm, "-png", "-r", "50", pdfPath, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, b)
	}
	pages, _ := filepath.Glob(out + "*.png")
	if len(pages) < 2 {
		t.Fatalf("pdf has %d pages, want the report over at least 2", len(pages))
	}
	for _, p := range pages {
		if ink := inkShare(readPNG(t, p)); ink < 0.01 {
			t.Errorf("pdf page %s is blank (%.4f ink)", filepath.Base(p), ink)
		}
	}
	// PATCHGRID_REPORT_OUT=DIR keeps the rendered report for a person to
	// look at.
	if keep := os.Getenv("PATCHGRID_REPORT_OUT"); keep != "" {
		for _, p := range append([]string{src, pngPath, pdfPath}, pages...) {
			b, err := os.ReadFile(p)
			if err == nil {
				err = os.WriteFile(filepath.Join(keep, filepath.Base(p)), b, 0o644)
			}
			if err != nil {
				t.Errorf("keep %s: %v", p, err)
			}
		}
	}
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

func inkShare(img image.Image) float64 {
	b := img.Bounds()
	ink := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				ink++
			}
		}
	}
	return float64(ink) / float64(b.Dx()*b.Dy())
}

func countColour(img image.Image, c [3]uint8) int {
	b := img.Bounds()
	n := 0
	near := func(a uint32, w uint8) bool { d := int(a>>8) - int(w); return d > -12 && d < 12 }
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r, c[0]) && near(g, c[1]) && near(bl, c[2]) {
				n++
			}
		}
	}
	return n
}
