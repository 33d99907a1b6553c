// Package risk reads the risk score of findings and hosts. The score is
// defined once, in SQL: the view exposure_risk of
// schemas/migrations/0004_kpis.sql, documented in README.md here. This
// package selects from it (and from finding_risk and host_risk, which reuse
// it) and holds the one findings query that the API and exports share.
package risk

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/schemas/severity"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// FindingColumns is the stable column set of findings exports and of the
// findings API, in order. analytics/export/README.md documents it; a test
// keeps the two in step.
var FindingColumns = []export.Column{
	{Name: "host_id", Kind: export.String, Meaning: "stable endpoint id"},
	{Name: "hostname", Kind: export.String, Meaning: "host name from the latest scan"},
	{Name: "owner", Kind: export.String, Meaning: "owning team, from the latest scan"},
	{Name: "ring", Kind: export.String, Meaning: "deployment ring (test, pilot, prod)"},
	{Name: "os", Kind: export.String, Meaning: "OSV ecosystem of the host (Debian:12, Alpine:v3.18, ...)"},
	{Name: "criticality", Kind: export.Int64, Meaning: "asset criticality 1 (low) .. 4 (critical), 0 unknown"},
	{Name: "internet_facing", Kind: export.Bool, Meaning: "the host is reachable from the internet"},
	{Name: "source", Kind: export.String, Meaning: "advisory feed (osv, debian-tracker, ...)"},
	{Name: "advisory_id", Kind: export.String, Meaning: "advisory id within its feed"},
	{Name: "cves", Kind: export.StringList, Meaning: "CVE ids of the advisory"},
	{Name: "severity", Kind: export.String, Meaning: "critical, high, medium, low, none, unknown"},
	{Name: "cvss_score", Kind: export.Float64, Meaning: "CVSS base score (0 when the advisory has none)"},
	{Name: "epss", Kind: export.Float64, Meaning: "highest EPSS probability among the CVEs (null when none is scored)"},
	{Name: "epss_percentile", Kind: export.Float64, Meaning: "EPSS percentile of that CVE (null when none is scored)"},
	{Name: "kev", Kind: export.Bool, Meaning: "a CVE of the advisory is in CISA KEV"},
	{Name: "kev_due_date", Kind: export.Time, Meaning: "earliest KEV dueDate (null when not in KEV)"},
	{Name: "ecosystem", Kind: export.String, Meaning: "ecosystem the package matched in"},
	{Name: "package", Kind: export.String, Meaning: "installed package name"},
	{Name: "installed_version", Kind: export.String, Meaning: "installed version"},
	{Name: "fixed_version", Kind: export.String, Meaning: "first fixed version ('' when no fix is released)"},
	{Name: "status", Kind: export.String, Meaning: "affected (fix exists), unfixed, will_not_fix"},
	{Name: "published", Kind: export.Time, Meaning: "advisory publication time"},
	{Name: "fix_published", Kind: export.Time, Meaning: "when the fix became available (null when unknown)"},
	{Name: "first_seen", Kind: export.Time, Meaning: "first scan that showed this host exposed to the advisory"},
	{Name: "sla_deadline", Kind: export.Time, Meaning: "remediation deadline under the default SLA policy"},
	{Name: "sla_state", Kind: export.String, Meaning: "open (not yet due), overdue, or no_fix (no fix released: never overdue)"},
	{Name: "days_past_sla", Kind: export.Float64, Meaning: "days past the deadline, 0 when not due"},
	{Name: "risk_cvss", Kind: export.Float64, Meaning: "risk part from CVSS, 0..35"},
	{Name: "risk_epss", Kind: export.Float64, Meaning: "risk part from EPSS, 0..15"},
	{Name: "risk_kev", Kind: export.Float64, Meaning: "risk part from known exploitation (KEV, else SSVC), 0..20"},
	{Name: "risk_asset", Kind: export.Float64, Meaning: "risk part from asset criticality, 0..10"},
	{Name: "risk_internet", Kind: export.Float64, Meaning: "risk part from internet exposure, 0..10"},
	{Name: "risk_sla", Kind: export.Float64, Meaning: "risk part from age past SLA, 0..10"},
	{Name: "risk_score", Kind: export.Float64, Meaning: "sum of the six parts, 0..100"},
	{Name: "risk_level", Kind: export.String, Meaning: "critical (>= 70), high (>= 50), medium (>= 25), low"},
	{Name: "severity_source", Kind: export.String, Meaning: "where severity comes from: kind:source/advisory_id ('' when unknown)"},
	{Name: "exception_id", Kind: export.String, Meaning: "the approved, unexpired exception that covers this finding ('' when none)"},
	{Name: "exception_expires_at", Kind: export.Time, Meaning: "when that exception expires (null when none)"},
	{Name: "accepted", Kind: export.Bool, Meaning: "an exception covers the finding: accepted risk, shown, never hidden"},
	{Name: "stale", Kind: export.Bool, Meaning: "the host's latest scan is older than the stale limit: its state may have changed"},
}

// findingExprs casts each column of finding_risk to its export type, so the
// column types never depend on the backend or server version.
var findingExprs = map[string]string{
	"criticality":     "toInt64(criticality)",
	"internet_facing": "toUInt8(internet_facing)",
	"cvss_score":      "round(toFloat64(cvss_score), 1)",
	"epss":            "if(has_epss = 1, toFloat64(epss), nan)",
	"epss_percentile": "if(has_epss = 1, toFloat64(epss_percentile), nan)",
	"kev":             "toUInt8(kev)",
	"kev_due_date":    "if(kev = 1, toDateTime(kev_due_date, 'UTC'), toDateTime(0, 'UTC'))",
	"accepted":        "toUInt8(accepted)",
	"stale":           "toUInt8(stale)",
}

// How findings, hosts and KPIs read exceptions (the column exceptions of
// every KPI view, migration 0016): honoured counts an open exposure that
// approved, unexpired exceptions cover as accepted, never open or overdue,
// and ranks accepted findings last; ignored reads as if no exception
// existed. Either way accepted findings are shown, marked.
const (
	ExceptionsHonoured = "honoured"
	ExceptionsIgnored  = "ignored"
)

// Exceptions are the two readings, the default first.
var Exceptions = []string{ExceptionsHonoured, ExceptionsIgnored}

// ParseExceptions checks an exceptions choice of a request, flag or
// plugin query; "" means honoured.
func ParseExceptions(v string) (string, error) {
	if v == "" {
		return ExceptionsHonoured, nil
	}
	if !slices.Contains(Exceptions, v) {
		return "", fmt.Errorf("exceptions %q: want one of %s", v, strings.Join(Exceptions, ", "))
	}
	return v, nil
}

// Filter selects findings. Zero values select everything.
type Filter struct {
	Severity []string // any of these severities
	KEV      *bool    // only in KEV (true) / only not in KEV (false)
	Ring     string
	Owner    string
	OS       string
	HostID   string
	MinRisk  float64 // risk_score >= MinRisk
	// Exceptions is how a ranked page reads exceptions: honoured (""
	// too) ranks every accepted finding after every unaccepted one;
	// ignored ranks by risk alone. Both return every finding, accepted
	// ones marked (column accepted): exceptions never hide a finding.
	Exceptions string
}

// Validate rejects severities the schema does not know.
func (f Filter) Validate() error {
	for _, s := range f.Severity {
		if !severity.Valid(s) {
			return fmt.Errorf("unknown severity %q (want critical, high, medium, low, none or unknown)", s)
		}
	}
	if !(f.MinRisk >= 0 && f.MinRisk <= 100) { // also rejects NaN
		return fmt.Errorf("min risk %v out of range 0..100", f.MinRisk)
	}
	if _, err := ParseExceptions(f.Exceptions); err != nil {
		return err
	}
	return nil
}

// Where is the filter as a WHERE clause over finding_risk.
func (f Filter) Where() (string, []any) {
	return f.WhereOn(func(v bool) string {
		if v {
			return "kev = 1"
		}
		return "kev = 0"
	}, "risk_score")
}

// WhereOn is the filter as a WHERE clause (" WHERE ...", or "" when it
// selects everything) over any table with finding_risk's severity, ring,
// owner, os and host_id columns, so other readers (plan actions) filter
// exactly as the findings do. kev gives the condition for "in KEV = v"
// there and riskCol the column MinRisk compares with.
func (f Filter) WhereOn(kev func(v bool) string, riskCol string) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, arg any) { conds, args = append(conds, cond), append(args, arg) }
	if len(f.Severity) > 0 {
		add("has(?, severity)", f.Severity)
	}
	if f.KEV != nil {
		conds = append(conds, kev(*f.KEV))
	}
	if f.Ring != "" {
		add("ring = ?", f.Ring)
	}
	if f.Owner != "" {
		add("owner = ?", f.Owner)
	}
	if f.OS != "" {
		add("os = ?", f.OS)
	}
	if f.HostID != "" {
		add("host_id = ?", f.HostID)
	}
	if f.MinRisk > 0 {
		add(riskCol+" >= ?", f.MinRisk)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Page is a window of an ordered result.
type Page struct {
	Limit, Offset int
}

// FindingsSQL is the findings statement: the columns of FindingColumns
// from finding_risk, filtered. With a page, rows come highest risk first
// (ties in a stable order) and the page is cut out; without one (exports)
// rows stream unordered, as the engine produces them.
func FindingsSQL(f Filter, page *Page) (string, []any, error) {
	if err := f.Validate(); err != nil {
		return "", nil, err
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range FindingColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		if e, ok := findingExprs[c.Name]; ok {
			b.WriteString(e + " AS " + c.Name)
		} else {
			b.WriteString(c.Name)
		}
	}
	b.WriteString(" FROM finding_risk")
	where, args := f.Where()
	b.WriteString(where)
	if page != nil {
		// The page is cut in two passes (issue 15). Sorting every column
		// of every finding to keep offset+limit rows cost the engine more
		// than 256 MB and 30 s for a page of 10,000 out of 2.4M findings.
		// The first pass sorts the rank alone (accepted, risk_score: two
		// narrow columns) and finds the rank of the page's last row; the
		// second reads, as a PREWHERE, only the rows ranked at or above
		// it (the page plus its ties) and sorts those in full. Measured
		// in chDB on 2.4M findings: the page fits in 40 MB, and took 5.5
		// to 7 s against 33 s under the same load. Both passes are plain
		// SQL, so the ClickHouse server runs them too.
		// When fewer rows match, the first pass's max covers them all.
		rankBy, rank := "risk_score DESC", "-risk_score"
		if exc, _ := ParseExceptions(f.Exceptions); exc == ExceptionsHonoured {
			rankBy, rank = "accepted, risk_score DESC", "(accepted, -risk_score)"
		}
		if where == "" {
			b.WriteString(" WHERE ")
		} else {
			b.WriteString(" AND ")
		}
		fmt.Fprintf(&b, "%[1]s <= (SELECT max(%[1]s) FROM (SELECT accepted, risk_score FROM finding_risk%[2]s ORDER BY %[3]s LIMIT ?))",
			rank, where, rankBy)
		b.WriteString(" ORDER BY " + rankBy + pageTies + " LIMIT ? OFFSET ?")
		args = append(append(args, args...), page.Offset+page.Limit, page.Limit, page.Offset)
	}
	return b.String(), args, nil
}

// pageTies orders findings of equal rank in a stable order.
const pageTies = ", host_id, source, advisory_id, ecosystem, package, installed_version"

// Findings opens a cursor over the findings f selects (page: see
// FindingsSQL). The caller closes it.
func Findings(ctx context.Context, st store.Store, f Filter, page *Page) (store.Rows, error) {
	q, args, err := FindingsSQL(f, page)
	if err != nil {
		return nil, err
	}
	rows, err := st.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("findings: %w", err)
	}
	return rows, nil
}

// Export streams the findings f selects to w in format (see
// analytics/export) and returns how many rows it wrote. The CLI and the API
// both export this way. When the store can write query results itself
// (store.RawQuerier: the embedded engine) the engine formats the rows
// (ExportSQL); otherwise rows are decoded and written by export's writers
// in batches of batchSize rows (0: the default). Both give the same
// columns, types and values.
func Export(ctx context.Context, st store.Store, f Filter, format string, w io.Writer, batchSize int) (int64, error) {
	if rq, ok := st.(store.RawQuerier); ok {
		q, args, err := ExportSQL(f, format)
		if err != nil {
			return 0, err
		}
		rawFormat := rawFormats[format]
		if format == "arrow" {
			// The engine streams ArrowStream only (its Arrow file format
			// is not streamable); the record batches are copied into an
			// IPC file as they arrive.
			fw := export.StreamToFile(w)
			n, err := rq.QueryRaw(ctx, fw, rawFormat, q, args...)
			if cerr := fw.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return n, fmt.Errorf("export %s: %w", format, err)
			}
			return n, nil
		}
		var hw *headerWriter
		if format == "csv" {
			// The header comes from FindingColumns, byte for byte the row
			// path's; the engine writes the rows (CSV, no names).
			hw = &headerWriter{w: w, header: export.AppendCSVHeader(nil, FindingColumns)}
			w = hw
		}
		n, err := rq.QueryRaw(ctx, w, rawFormat, q, args...)
		if err == nil && hw != nil {
			err = hw.flush() // an empty CSV export still names its columns
		}
		if err != nil {
			return n, fmt.Errorf("export %s: %w", format, err)
		}
		return n, nil
	}
	// The query goes first: a writer may write a header at once, and a
	// failed query must leave w untouched.
	rows, err := Findings(ctx, st, f, nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	ew, err := export.NewWriter(format, w, FindingColumns)
	if err != nil {
		return 0, err
	}
	return export.Copy(ctx, rows, FindingColumns, ew, batchSize)
}

// rawFormats maps export formats to the ClickHouse output formats that
// write them.
var rawFormats = map[string]string{
	"arrow":        "ArrowStream", // rewritten as an IPC file: see Export
	"arrow-stream": "ArrowStream",
	"parquet":      "Parquet",
	"csv":          "CSV", // header: see Export
	"json":         "JSONEachRow",
}

// rawSettings make the engine's output match export's writers (README of
// analytics/export): strings as UTF-8 strings not binary, no dictionaries,
// uncompressed Arrow buffers (the engine's default is LZ4, which not every
// reader supports),
// numbers unquoted in JSON, NaN as JSON null, '/' unescaped and invalid
// UTF-8 replaced in JSON (so it always parses), ISO 8601 UTC times, NULL
// as an empty CSV field, Snappy Parquet.
const rawSettings = ` SETTINGS output_format_arrow_string_as_string = 1, output_format_arrow_low_cardinality_as_dictionary = 0,
	output_format_arrow_compression_method = 'none',
	output_format_parquet_string_as_string = 1, output_format_parquet_compression_method = 'snappy',
	output_format_json_quote_64bit_integers = 0, output_format_json_quote_64bit_floats = 0, output_format_json_quote_denormals = 0,
	output_format_json_escape_forward_slashes = 0, output_format_json_validate_utf8 = 1,
	date_time_output_format = 'iso', format_csv_null_representation = ''`

// headerWriter writes header before the first bytes written through it,
// so that a query failing before its first row leaves the output untouched.
type headerWriter struct {
	w      io.Writer
	header []byte
}

func (h *headerWriter) Write(p []byte) (int, error) {
	if err := h.flush(); err != nil {
		return 0, err
	}
	return h.w.Write(p)
}

func (h *headerWriter) flush() error {
	if h.header == nil {
		return nil
	}
	_, err := h.w.Write(h.header)
	h.header = nil
	return err
}

// ExportSQL is the statement the engine formats an export with: the rows
// of FindingsSQL (unordered), each column cast to the ClickHouse type that
// gives its export type in format ("arrow", "parquet", "csv" or "json"):
// floats that are not numbers and times that mean "none" become NULL; CSV
// lists are joined with ';'.
func ExportSQL(f Filter, format string) (string, []any, error) {
	if _, ok := rawFormats[format]; !ok {
		return "", nil, fmt.Errorf("unknown export format %q (want one of %v)", format, export.Formats)
	}
	inner, args, err := FindingsSQL(f, nil)
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range FindingColumns {
		if i > 0 {
			b.WriteString(", ")
		}
		n := c.Name
		switch c.Kind {
		case export.String:
			if format == "csv" {
				b.WriteString(export.CSVCellSQL("CAST(" + n + " AS String)")) // formula cells neutralised
			} else {
				fmt.Fprintf(&b, "CAST(%s AS String)", n)
			}
		case export.Int64:
			fmt.Fprintf(&b, "toInt64(%s)", n)
		case export.Float64:
			if format == "json" {
				// JSON writes NaN and infinities as null by itself
				// (output_format_json_quote_denormals = 0), and plain
				// Float64 formats twice as fast as Nullable.
				fmt.Fprintf(&b, "toFloat64(%s)", n)
			} else {
				fmt.Fprintf(&b, "CAST(if(isFinite(toFloat64(%[1]s)), toFloat64(%[1]s), NULL) AS Nullable(Float64))", n)
			}
		case export.Bool:
			fmt.Fprintf(&b, "CAST(%s != 0 AS Bool)", n)
		case export.Time:
			if format == "arrow" || format == "arrow-stream" || format == "parquet" {
				// DateTime64(0) is what becomes timestamp[s] (DateTime
				// would be uint32).
				fmt.Fprintf(&b, "CAST(nullIf(toDateTime(%s, 'UTC'), toDateTime(0, 'UTC')) AS Nullable(DateTime64(0, 'UTC')))", n)
			} else {
				// Same text (date_time_output_format = 'iso'), formatted
				// faster than DateTime64.
				fmt.Fprintf(&b, "nullIf(toDateTime(%s, 'UTC'), toDateTime(0, 'UTC'))", n)
			}
		case export.StringList:
			if format == "csv" {
				b.WriteString(export.CSVCellSQL("arrayStringConcat(" + n + ", ';')"))
			} else {
				fmt.Fprintf(&b, "CAST(%s AS Array(String))", n)
			}
		default:
			return "", nil, fmt.Errorf("column %s: no export cast for kind %v", n, c.Kind)
		}
		b.WriteString(" AS " + n)
	}
	b.WriteString(" FROM (" + inner + ")" + rawSettings)
	return b.String(), args, nil
}

// HostFilter selects hosts.
type HostFilter struct {
	Ring, Owner, OS string
	MinRisk         float64
	// Exceptions: honoured ("" too) ranks and filters hosts by
	// host_risk_unaccepted (the risk of exposures no exception covers),
	// ignored by host_risk. Every host is listed either way.
	Exceptions string
}

// Hosts reads one page of hosts with their risk (view host_risk), riskiest
// first.
func Hosts(ctx context.Context, st store.Store, f HostFilter, page Page) (*export.Table, error) {
	exc, err := ParseExceptions(f.Exceptions)
	if err != nil {
		return nil, err
	}
	riskCol := "host_risk"
	if exc == ExceptionsHonoured {
		riskCol = "host_risk_unaccepted"
	}
	var conds []string
	var args []any
	for _, c := range []struct{ col, v string }{{"ring", f.Ring}, {"owner", f.Owner}, {"os", f.OS}} {
		if c.v != "" {
			conds, args = append(conds, c.col+" = ?"), append(args, c.v)
		}
	}
	if f.MinRisk > 0 {
		conds, args = append(conds, riskCol+" >= ?"), append(args, f.MinRisk)
	}
	q := "SELECT * FROM host_risk"
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY " + riskCol + " DESC, host_risk DESC, host_id LIMIT ? OFFSET ?"
	args = append(args, page.Limit, page.Offset)
	rows, err := st.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	return export.ReadTable(rows, 0)
}

// Host reads one host's row of host_risk; ok is false when no scan of the
// host is stored.
func Host(ctx context.Context, st store.Store, hostID string) (t *export.Table, ok bool, err error) {
	rows, err := st.Query(ctx, "SELECT * FROM host_risk WHERE host_id = ?", hostID)
	if err != nil {
		return nil, false, fmt.Errorf("host %s: %w", hostID, err)
	}
	t, err = export.ReadTable(rows, 1)
	if err != nil {
		return nil, false, fmt.Errorf("host %s: %w", hostID, err)
	}
	return t, len(t.Rows) == 1, nil
}

// Breakdown is the risk score of one exposure (host, advisory) with its
// inputs and its parts. Score always equals the sum of Parts (rounding
// aside: each part is rounded to 2 decimals before summing).
type Breakdown struct {
	HostID     string  `json:"host_id"`
	Source     string  `json:"source"`
	AdvisoryID string  `json:"advisory_id"`
	Open       bool    `json:"open"`
	Inputs     Inputs  `json:"inputs"`
	Parts      Parts   `json:"parts"`
	Score      float64 `json:"risk_score"`
	Level      string  `json:"risk_level"`
	Formula    string  `json:"formula"`
}

// Inputs are what the score was computed from.
type Inputs struct {
	Severity       string  `json:"severity"`
	SeveritySource string  `json:"severity_source"` // kind:source/advisory_id, "" when unknown
	SSVC           string  `json:"ssvc_exploitation,omitempty"`
	CVSSScore      float64 `json:"cvss_score"`
	EPSS           float64 `json:"epss"`
	EPSSPercentile float64 `json:"epss_percentile"`
	KEV            bool    `json:"kev"`
	KEVDueDate     string  `json:"kev_due_date,omitempty"`
	Criticality    int64   `json:"criticality"`
	InternetFacing bool    `json:"internet_facing"`
	SLADeadline    string  `json:"sla_deadline"`
	DaysPastSLA    float64 `json:"days_past_sla"`
}

// Parts are the six additive components (README.md).
type Parts struct {
	CVSS     float64 `json:"cvss"`
	EPSS     float64 `json:"epss"`
	KEV      float64 `json:"kev"`
	Asset    float64 `json:"asset"`
	Internet float64 `json:"internet"`
	SLA      float64 `json:"sla"`
}

// Sum adds the parts up.
func (p Parts) Sum() float64 { return p.CVSS + p.EPSS + p.KEV + p.Asset + p.Internet + p.SLA }

// Formula is the score's definition in one line (README.md has the detail).
const Formula = "risk_score = cvss (3.5 x CVSS base, 0..35) + epss (10 x EPSS + 5 x percentile, 0..15) + kev (15 in KEV, +5 past its due date; else SSVC exploitation active 15, poc 7.5; 0..20) + asset (2.5 x criticality, unknown = 2, 0..10) + internet (10 if internet-facing) + sla (10 x min(days past SLA, 30) / 30, 0..10)"

// Explain reads the breakdown of the exposure of host to (source,
// advisoryID); ok is false when there is none.
func Explain(ctx context.Context, st store.Store, hostID, source, advisoryID string) (b Breakdown, ok bool, err error) {
	rows, err := st.Query(ctx, `SELECT host_id, source, advisory_id, is_open, severity, severity_source, ssvc_exploitation, toFloat64(cvss_score), toFloat64(epss),
		toFloat64(epss_percentile), kev, if(kev = 1, toString(kev_due_date), ''), toInt64(criticality), internet_facing,
		formatDateTime(sla_deadline, '%Y-%m-%dT%H:%i:%SZ', 'UTC'), days_past_sla,
		risk_cvss, risk_epss, risk_kev, risk_asset, risk_internet, risk_sla, risk_score, risk_level
		FROM exposure_risk WHERE host_id = ? AND source = ? AND advisory_id = ?`, hostID, source, advisoryID)
	if err != nil {
		return b, false, fmt.Errorf("risk of %s/%s on %s: %w", source, advisoryID, hostID, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return b, false, rows.Err()
	}
	in, p := &b.Inputs, &b.Parts
	if err := rows.Scan(&b.HostID, &b.Source, &b.AdvisoryID, &b.Open, &in.Severity, &in.SeveritySource, &in.SSVC, &in.CVSSScore, &in.EPSS,
		&in.EPSSPercentile, &in.KEV, &in.KEVDueDate, &in.Criticality, &in.InternetFacing,
		&in.SLADeadline, &in.DaysPastSLA,
		&p.CVSS, &p.EPSS, &p.KEV, &p.Asset, &p.Internet, &p.SLA, &b.Score, &b.Level); err != nil {
		return b, false, fmt.Errorf("risk of %s/%s on %s: %w", source, advisoryID, hostID, err)
	}
	b.Formula = Formula
	return b, true, nil
}

// ParseFilter builds a Filter from named text values, the way both the CLI
// (flags) and the API (query parameters) spell them: severity (comma
// separated), kev (true/false), ring, owner, os, host, min-risk.
func ParseFilter(get func(name string) string) (Filter, error) {
	var f Filter
	if s := get("severity"); s != "" {
		for _, p := range strings.Split(s, ",") {
			if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
				f.Severity = append(f.Severity, p)
			}
		}
	}
	if s := get("kev"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return f, fmt.Errorf("kev %q: want true or false", s)
		}
		f.KEV = &v
	}
	f.Ring, f.Owner, f.OS, f.HostID = get("ring"), get("owner"), get("os"), get("host")
	if s := get("min-risk"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return f, fmt.Errorf("min-risk %q: not a number", s)
		}
		f.MinRisk = v
	}
	return f, f.Validate()
}
