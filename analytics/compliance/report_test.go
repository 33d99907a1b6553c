package compliance_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
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
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// report seeds kpitest's fleet, approves one exception and writes the
// report.
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
		"sla_compliance_pct":  "SELECT compliance_pct FROM kpi_sla_compliance WHERE policy = 'default' AND dimension = 'all' AND severity = 'all'",
		"sla_overdue":         "SELECT overdue FROM kpi_sla_compliance WHERE policy = 'default' AND dimension = 'all' AND severity = 'all'",
		"sla_met":             "SELECT met FROM kpi_sla_compliance WHERE policy = 'default' AND dimension = 'all' AND severity = 'all'",
		"sla_missed":          "SELECT missed FROM kpi_sla_compliance WHERE policy = 'default' AND dimension = 'all' AND severity = 'all'",
		"coverage_pct":        "SELECT coverage_pct FROM kpi_patch_coverage WHERE policy = 'default' AND dimension = 'all'",
		"hosts":               "SELECT count() FROM host_risk",
		"hosts_overdue":       "SELECT hosts_overdue FROM kpi_patch_coverage WHERE policy = 'default' AND dimension = 'all'",
		"open_total":          "SELECT sum(open_exposures) FROM kpi_open_exposure WHERE dimension = 'all'",
		"open_kev":            "SELECT sum(open_exposures) FROM kpi_open_exposure WHERE dimension = 'all' AND kev = 1",
		"open_critical":       "SELECT sum(open_exposures) FROM kpi_open_exposure WHERE dimension = 'all' AND severity = 'critical'",
		"open_low":            "SELECT sum(open_exposures) FROM kpi_open_exposure WHERE dimension = 'all' AND severity = 'low'",
		"sla_ring_prod_pct":   "SELECT compliance_pct FROM kpi_sla_compliance WHERE policy = 'default' AND dimension = 'ring' AND dim_value = 'prod' AND severity = 'all'",
		"sla_owner_bob_pct":   "SELECT compliance_pct FROM kpi_sla_compliance WHERE policy = 'default' AND dimension = 'owner' AND dim_value = 'bob' AND severity = 'all'",
		"mttr_high_days":      "SELECT mttr_days FROM kpi_mttr WHERE dimension = 'all' AND severity = 'high'",
		"ttp_fix_high_days":   "SELECT from_fix_avg_days FROM kpi_time_to_patch WHERE dimension = 'all' AND severity = 'high'",
		"exceptions_approved": "SELECT count() FROM exceptions_current WHERE effective_status = 'approved'",
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
	// The hand-worked fleet: 4 hosts, 3 open exposures (h2/A1, h2/A2, h3/A4).
	if figs["hosts"] != "4" || figs["open_total"] != "3" || figs["exceptions_approved"] != "1" {
		t.Errorf("hosts %s, open %s, approved exceptions %s; want 4, 3, 1", figs["hosts"], figs["open_total"], figs["exceptions_approved"])
	}
	for _, s := range []string{`id="chart-trend"`, `id="chart-ring"`, `id="chart-owner"`, `id="chart-mix"`, "<polyline", "Methodology"} {
		if !strings.Contains(html, s) {
			t.Errorf("report lacks %s", s)
		}
	}
	// Self-contained: nothing is fetched.
	for _, s := range []string{"http://", "https://", "<script", "<link", "src="} {
		if strings.Contains(strings.ReplaceAll(html, `xmlns="http://www.w3.org/2000/svg"`, ""), s) {
			t.Errorf("report refers to an external resource (%s)", s)
		}
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
