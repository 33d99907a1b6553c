package risk

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/store/storetest"
)

// rowsOnly hides a store's RawQuerier, so Export takes the row path.
type rowsOnly struct{ store.Store }

// decoded is an export read back: its column names, the Arrow schema when
// the format has one, and its rows with values normalized per Kind
// (string, int64, float64 or nil, bool, Unix seconds or nil, []string).
type decoded struct {
	names  []string
	schema *arrow.Schema
	rows   [][]any
}

func decodeExport(t *testing.T, format string, b []byte) decoded {
	t.Helper()
	var d decoded
	switch format {
	case "arrow", "arrow-stream", "parquet":
		d.schema = storetest.EachArrowRecord(t, b, format == "parquet", func(rec arrow.Record) {
			d.rows = append(d.rows, arrowRows(t, rec)...)
		})
	case "csv":
		recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		d.names = recs[0]
		for _, rec := range recs[1:] {
			row := make([]any, len(rec))
			for i, s := range rec {
				row[i] = textValue(t, FindingColumns[i].Kind, s, s == "")
			}
			d.rows = append(d.rows, row)
		}
	case "json":
		for line := range strings.SplitSeq(strings.TrimSuffix(string(b), "\n"), "\n") {
			if line == "" {
				continue
			}
			dec := json.NewDecoder(strings.NewReader(line))
			dec.UseNumber()
			if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
				t.Fatalf("json line %q: %v", line, err)
			}
			var names []string
			var row []any
			for dec.More() {
				key, _ := dec.Token()
				names = append(names, key.(string))
				var v any
				if err := dec.Decode(&v); err != nil {
					t.Fatal(err)
				}
				k := FindingColumns[len(row)].Kind
				switch x := v.(type) {
				case nil:
					row = append(row, textValue(t, k, "", true))
				case json.Number:
					row = append(row, textValue(t, k, x.String(), false))
				case string:
					row = append(row, textValue(t, k, x, false))
				case bool:
					row = append(row, x)
				case []any:
					l := []string{}
					for _, s := range x {
						l = append(l, s.(string))
					}
					row = append(row, l)
				}
			}
			if d.names == nil {
				d.names = names
			} else if !slices.Equal(d.names, names) {
				t.Fatalf("json keys changed: %v, then %v", d.names, names)
			}
			d.rows = append(d.rows, row)
		}
	}
	if d.schema != nil {
		for _, f := range d.schema.Fields() {
			d.names = append(d.names, f.Name)
		}
	}
	// Exports are unordered.
	keyed := make([]struct {
		key string
		row []any
	}, len(d.rows))
	for i, r := range d.rows {
		// The columns that identify a finding; now-dependent ones vary.
		keyed[i].key, keyed[i].row = fmt.Sprint(r[0], r[7], r[8], r[16], r[17], r[18], r[2], r[9]), r
	}
	slices.SortFunc(keyed, func(a, b struct {
		key string
		row []any
	}) int {
		return strings.Compare(a.key, b.key)
	})
	for i := range keyed {
		d.rows[i] = keyed[i].row
	}
	return d
}

func textValue(t *testing.T, k export.Kind, s string, null bool) any {
	t.Helper()
	var v any
	var err error
	switch k {
	case export.String:
		v = s
	case export.Int64:
		v, err = strconv.ParseInt(s, 10, 64)
	case export.Float64:
		if null {
			return nil
		}
		v, err = strconv.ParseFloat(s, 64)
	case export.Bool:
		v, err = strconv.ParseBool(s)
	case export.Time:
		if null {
			return nil
		}
		var tm time.Time
		tm, err = time.Parse(time.RFC3339, s)
		v = tm.Unix()
	case export.StringList:
		l := []string{}
		if s != "" {
			l = strings.Split(s, ";")
		}
		v = l
	}
	if err != nil {
		t.Fatalf("value %q of kind %v: %v", s, k, err)
	}
	return v
}

func arrowRows(t *testing.T, rec arrow.Record) [][]any {
	t.Helper()
	rows := make([][]any, rec.NumRows())
	for r := range rows {
		rows[r] = make([]any, rec.NumCols())
	}
	for c, col := range rec.Columns() {
		for r := range rows {
			if col.IsNull(r) {
				continue
			}
			var v any
			switch a := col.(type) {
			case *array.String:
				v = a.Value(r)
			case *array.Int64:
				v = a.Value(r)
			case *array.Float64:
				v = a.Value(r)
			case *array.Boolean:
				v = a.Value(r)
			case *array.Timestamp:
				v = a.Value(r).ToTime(a.DataType().(*arrow.TimestampType).Unit).Unix()
			case *array.List:
				l := []string{}
				items := a.ListValues().(*array.String)
				start, end := a.ValueOffsets(r)
				for i := start; i < end; i++ {
					l = append(l, items.Value(int(i)))
				}
				v = l
			default:
				t.Fatalf("column %d: unexpected Arrow type %v", c, col.DataType())
			}
			rows[r][c] = v
		}
	}
	return rows
}

// nowDependent are the columns computed from now(), with how far two
// exports a few seconds apart may differ: days (1e-3 is 86 s) and the
// parts rounded to 2 decimals.
var nowDependent = map[string]float64{"days_past_sla": 1e-3, "risk_sla": 0.011, "risk_score": 0.011}

func sameRows(a, b [][]any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		for j, c := range FindingColumns {
			x, y := a[i][j], b[i][j]
			if tol, ok := nowDependent[c.Name]; ok && x != nil && y != nil {
				if d := x.(float64) - y.(float64); d > tol || d < -tol {
					return false
				}
				continue
			}
			if !reflect.DeepEqual(x, y) {
				return false
			}
		}
	}
	return true
}

// TestExportRawEqualsRows exports the seeded findings in every format both
// ways, engine-formatted (the chDB store's RawQuerier) and through the row
// path, and checks they hold the same columns, types and values, and that
// the columns are FindingColumns.
func TestExportRawEqualsRows(t *testing.T) {
	st, fleet := seeded(t)
	if _, ok := st.(store.RawQuerier); !ok {
		t.Fatal("the chDB store does not implement store.RawQuerier")
	}
	ctx := context.Background()
	compareExports(t, st, []Filter{{}, {Owner: "bob"}, {HostID: "nope"}})
	// The fixture exercises nulls: a KEV due date and one without.
	var b bytes.Buffer
	if _, err := Export(ctx, st, Filter{}, "json", &b, 0); err != nil {
		t.Fatal(err)
	}
	due := fleet.KEVDue().Format(time.RFC3339)
	if !strings.Contains(b.String(), `"kev_due_date":"`+due+`"`) || !strings.Contains(b.String(), `"kev_due_date":null`) {
		t.Errorf("raw json export: %s", b.String())
	}
}

// TestExportRawEqualsRowsSynthetic compares both paths on the benchmark's
// synthetic findings: several engine chunks, values without EPSS (NaN),
// times that mean "none", strings needing CSV quotes and JSON escapes.
func TestExportRawEqualsRowsSynthetic(t *testing.T) {
	st := exportFixture(t, 70_000)
	ctx := context.Background()
	if err := st.Exec(ctx, `INSERT INTO finding_risk (host_id, hostname, owner, cves, epss, has_epss)
		VALUES ('h"1', 'a,b', 'x/y\n\t"z', ['CVE-1', 'with;semi'], nan, 1), ('h2', 'ünï', '', [], 0.5, 0)`); err != nil {
		t.Fatal(err)
	}
	compareExports(t, st, []Filter{{}})
}

func compareExports(t *testing.T, st store.Store, filters []Filter) {
	ctx := context.Background()
	var names []string
	for _, c := range FindingColumns {
		names = append(names, c.Name)
	}
	for _, format := range export.Formats {
		for _, f := range filters {
			t.Run(fmt.Sprintf("%s/%+v", format, f), func(t *testing.T) {
				var raw, rows bytes.Buffer
				nRaw, err := Export(ctx, st, f, format, &raw, 0)
				if err != nil {
					t.Fatalf("raw export: %v", err)
				}
				nRows, err := Export(ctx, rowsOnly{st}, f, format, &rows, 0)
				if err != nil {
					t.Fatalf("row export: %v", err)
				}
				dr, dw := decodeExport(t, format, raw.Bytes()), decodeExport(t, format, rows.Bytes())
				if nRaw != nRows || int(nRaw) != len(dr.rows) {
					t.Errorf("raw export says %d rows and holds %d; row export says %d", nRaw, len(dr.rows), nRows)
				}
				if format == "json" && nRaw == 0 {
					// JSON lines name columns only in rows.
					dr.names, dw.names = names, names
				}
				if !slices.Equal(dr.names, names) || !slices.Equal(dw.names, names) {
					t.Errorf("columns\nraw  %v\nrows %v\nwant %v", dr.names, dw.names, names)
				}
				if !sameRows(dr.rows, dw.rows) {
					t.Errorf("rows differ\nraw  %v\nrows %v", dr.rows, dw.rows)
				}
				switch format {
				case "arrow", "arrow-stream":
					if want := export.Schema(FindingColumns); !dr.schema.Equal(want) || !dw.schema.Equal(want) {
						t.Errorf("arrow schema\nraw  %v\nrows %v\nwant %v", dr.schema, dw.schema, want)
					}
				case "parquet":
					// Parquet has no second-precision timestamps: the
					// engine's are milliseconds; otherwise the same types.
					for i, fr := range dr.schema.Fields() {
						fw := dw.schema.Field(i)
						if ts, ok := fr.Type.(*arrow.TimestampType); ok && ts.TimeZone == "UTC" {
							fr.Type = fw.Type
						}
						if !arrow.TypeEqual(fr.Type, fw.Type) || fr.Nullable != fw.Nullable {
							t.Errorf("parquet column %s: raw %v (nullable %v), rows %v (nullable %v)", fr.Name, fr.Type, fr.Nullable, fw.Type, fw.Nullable)
						}
					}
				}
			})
		}
	}
}
