package plugin

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/schemas/store"
)

func table(cols []string, rows ...[]any) *export.Table {
	t := &export.Table{}
	for _, c := range cols {
		t.Columns = append(t.Columns, store.Column{Name: c})
	}
	t.Rows = rows
	return t
}

func TestTableFrame(t *testing.T) {
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	five := uint64(5)
	tbl := table([]string{"sev", "n", "delta", "pct", "kev", "due", "cves", "big", "ptr", "nothing"},
		[]any{"critical", uint8(3), int32(-2), 50.0, true, day, []string{"CVE-1", "CVE-2"}, uint64(math.MaxUint64), &five, nil},
		[]any{"low", uint8(0), int32(7), math.NaN(), false, time.Unix(0, 0).UTC(), []string{}, uint64(1), (*uint64)(nil), nil},
	)
	f, err := tableFrame("k", tbl)
	if err != nil {
		t.Fatal(err)
	}
	if f.Meta == nil || f.Meta.Type != data.FrameTypeTable {
		t.Fatalf("frame type %+v", f.Meta)
	}
	want := []struct {
		typ  data.FieldType
		vals []any
	}{
		{data.FieldTypeString, []any{"critical", "low"}},
		{data.FieldTypeUint64, []any{uint64(3), uint64(0)}},
		{data.FieldTypeInt64, []any{int64(-2), int64(7)}},
		{data.FieldTypeNullableFloat64, []any{50.0, nil}},
		{data.FieldTypeBool, []any{true, false}},
		{data.FieldTypeNullableTime, []any{day, nil}},
		{data.FieldTypeString, []any{"CVE-1, CVE-2", ""}},
		{data.FieldTypeUint64, []any{uint64(math.MaxUint64), uint64(1)}},
		{data.FieldTypeNullableUint64, []any{uint64(5), nil}},
		{data.FieldTypeNullableString, []any{nil, nil}},
	}
	for i, w := range want {
		fld := f.Fields[i]
		if fld.Name != tbl.Columns[i].Name || fld.Type() != w.typ {
			t.Errorf("field %d: %s %s, want %s %s", i, fld.Name, fld.Type(), tbl.Columns[i].Name, w.typ)
			continue
		}
		for r, wv := range w.vals {
			got, ok := fld.ConcreteAt(r)
			if wv == nil {
				if ok {
					t.Errorf("%s[%d] = %v, want null", fld.Name, r, got)
				}
				continue
			}
			if !ok || got != wv {
				t.Errorf("%s[%d] = %v (%T), want %v", fld.Name, r, got, got, wv)
			}
		}
	}
}

func TestTableFrameMixedTypes(t *testing.T) {
	_, err := tableFrame("k", table([]string{"x"}, []any{"a"}, []any{1.5}))
	if err == nil || !strings.Contains(err.Error(), "column x") {
		t.Fatalf("err = %v", err)
	}
}

func TestTrendFrame(t *testing.T) {
	d := func(n int) time.Time { return time.Date(2026, 11, n, 0, 0, 0, 0, time.UTC) }
	cols := []string{"dimension", "dim_value", "severity", "day", "opened", "resolved", "open_at_end"}
	// Ordered as kpi.Run returns them: series first, then day.
	tbl := table(cols,
		[]any{"ring", "prod", "all", d(1), int64(2), int64(0), int64(2)},
		[]any{"ring", "prod", "all", d(5), int64(0), int64(1), int64(1)},
		[]any{"ring", "test", "all", d(3), int64(4), int64(0), int64(4)},
		[]any{"ring", "test", "all", d(20), int64(1), int64(0), int64(5)},
	)
	tr := backend.TimeRange{From: d(1).Add(12 * time.Hour), To: d(10)}

	f, err := trendFrame(tbl, "open_at_end", tr)
	if err != nil {
		t.Fatal(err)
	}
	if f.Meta == nil || f.Meta.Type != data.FrameTypeTimeSeriesWide {
		t.Fatalf("frame type %+v", f.Meta)
	}
	if f.TimeSeriesSchema().Type != data.TimeSeriesTypeWide {
		t.Fatalf("not a wide time series: %v", f.TimeSeriesSchema().Type)
	}
	// d(1) counts (the range starts within it), d(20) is after the range.
	wantTimes := []time.Time{d(1), d(3), d(5)}
	if f.Rows() != len(wantTimes) {
		t.Fatalf("%d rows, want %d: %v", f.Rows(), len(wantTimes), f.Fields)
	}
	for i, w := range wantTimes {
		if got := f.Fields[0].At(i).(time.Time); !got.Equal(w) {
			t.Errorf("time[%d] = %v, want %v", i, got, w)
		}
	}
	series := map[string][]float64{}
	for _, fld := range f.Fields[1:] {
		var vals []float64
		for i := 0; i < fld.Len(); i++ {
			v, _ := fld.FloatAt(i)
			vals = append(vals, v)
		}
		series[fld.Labels["dim_value"]+"/"+fld.Config.DisplayNameFromDS] = vals
	}
	// open_at_end carries the last value over days without a row.
	want := map[string][]float64{"prod/prod": {2, 2, 1}, "test/test": {0, 4, 4}}
	for k, w := range want {
		got := series[k]
		if len(got) != len(w) {
			t.Fatalf("series %s = %v, want %v (all: %v)", k, got, w, series)
		}
		for i := range w {
			if got[i] != w[i] {
				t.Errorf("series %s = %v, want %v", k, got, w)
				break
			}
		}
	}

	// opened/resolved: a day without a row had no events.
	f, err = trendFrame(tbl, "opened", tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, fld := range f.Fields[1:] {
		if fld.Labels["dim_value"] == "prod" {
			for i, w := range []float64{2, 0, 0} {
				if v, _ := fld.FloatAt(i); v != w {
					t.Errorf("prod opened[%d] = %v, want %v", i, v, w)
				}
			}
		}
	}

	// test has no event in d(4)..d(10) but was at 4 since d(3).
	f, err = trendFrame(tbl, "open_at_end", backend.TimeRange{From: d(4), To: d(10)})
	if err != nil {
		t.Fatal(err)
	}
	if f.Rows() != 1 {
		t.Fatalf("%d rows, want 1 (d(5))", f.Rows())
	}
	for _, fld := range f.Fields[1:] {
		want := map[string]float64{"prod": 1, "test": 4}[fld.Labels["dim_value"]]
		if v, _ := fld.FloatAt(0); v != want {
			t.Errorf("%s open_at_end on d(5) = %v, want %v", fld.Labels["dim_value"], v, want)
		}
	}

	// No rows in range: an empty frame, still typed.
	f, err = trendFrame(tbl, "opened", backend.TimeRange{From: d(25), To: d(26)})
	if err != nil || f.Rows() != 0 || f.Meta.Type != data.FrameTypeTimeSeriesWide {
		t.Fatalf("empty range: %v %v", f, err)
	}

	if _, err := trendFrame(table([]string{"day"}), "opened", tr); err == nil {
		t.Fatal("missing columns accepted")
	}
}
