package plugin

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/patchgrid/patchgrid/analytics/export"
)

// maxTrendCells bounds the wide trend frame (rows × series): a dimension
// with thousands of values (owner on a big fleet) must not build a frame
// the browser cannot draw.
const maxTrendCells = 2_000_000

// tableFrame turns a result into a frame of type table. Each column keeps
// its type (strings, integers, floats, bools, times); a column with missing
// values becomes nullable. Values that mean "none" become null the way the
// API's JSON shows them: NaN (a KPI over no rows) and the epoch (a time
// never set). Arrays become comma-separated text: frames hold no arrays.
func tableFrame(name string, t *export.Table) (*data.Frame, error) {
	f := data.NewFrame(name)
	for i, c := range t.Columns {
		col := make([]any, len(t.Rows))
		for r, row := range t.Rows {
			col[r] = row[i]
		}
		field, err := column(c.Name, col)
		if err != nil {
			return nil, fmt.Errorf("column %s (%s): %w", c.Name, c.Type, err)
		}
		f.Fields = append(f.Fields, field)
	}
	f.Meta = &data.FrameMeta{Type: data.FrameTypeTable, TypeVersion: data.FrameTypeVersion{0, 1}}
	return f, nil
}

// kind is the field type a store value maps to.
type kind int

const (
	kNone kind = iota // only nulls so far
	kString
	kInt
	kUint
	kFloat
	kBool
	kTime
)

func kindOf(v any) kind {
	switch x := v.(type) {
	case nil:
		return kNone
	case string, []string:
		return kString
	case int8, int16, int32, int64, int:
		return kInt
	case uint8, uint16, uint32, uint64, uint:
		return kUint
	case float32, float64:
		return kFloat
	case bool:
		return kBool
	case time.Time:
		return kTime
	default:
		if rv := reflect.ValueOf(x); rv.Kind() == reflect.Pointer {
			if rv.IsNil() {
				return kNone
			}
			return kindOf(rv.Elem().Interface())
		}
		return kString // arrays of numbers, tuples: shown as JSON text
	}
}

// deref unwraps a pointer value (Nullable columns).
func deref(v any) any {
	if rv := reflect.ValueOf(v); v != nil && rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil
		}
		return rv.Elem().Interface()
	}
	return v
}

// none reports the values that read as null.
func none(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case float64:
		return math.IsNaN(x) || math.IsInf(x, 0)
	case float32:
		return math.IsNaN(float64(x)) || math.IsInf(float64(x), 0)
	case time.Time:
		return x.IsZero() || x.Unix() == 0
	}
	return false
}

func column(name string, vals []any) (*data.Field, error) {
	k, nulls := kNone, false
	for i, v := range vals {
		v = deref(v)
		vals[i] = v
		if none(v) {
			nulls = true
			if v == nil {
				continue
			}
		}
		vk := kindOf(v)
		switch {
		case k == kNone:
			k = vk
		case k != vk:
			return nil, fmt.Errorf("mixed value types %T and earlier %v", v, k)
		}
	}
	if k == kNone {
		k = kString // all null: a nullable text column
	}
	switch k {
	case kString:
		return build(name, vals, nulls, asString), nil
	case kInt:
		return build(name, vals, nulls, asInt), nil
	case kUint:
		return build(name, vals, nulls, asUint), nil
	case kFloat:
		return build(name, vals, nulls, asFloat), nil
	case kBool:
		return build(name, vals, nulls, func(v any) bool { return v.(bool) }), nil
	default:
		return build(name, vals, nulls, func(v any) time.Time { return v.(time.Time).UTC() }), nil
	}
}

// build makes a field of T from vals: []T without nulls, []*T with them.
func build[T any](name string, vals []any, nulls bool, conv func(any) T) *data.Field {
	if !nulls {
		out := make([]T, len(vals))
		for i, v := range vals {
			out[i] = conv(v)
		}
		return data.NewField(name, nil, out)
	}
	out := make([]*T, len(vals))
	for i, v := range vals {
		if !none(v) {
			x := conv(v)
			out[i] = &x
		}
	}
	return data.NewField(name, nil, out)
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []string:
		return strings.Join(x, ", ")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func asInt(v any) int64 {
	return reflect.ValueOf(v).Int()
}

func asUint(v any) uint64 {
	return reflect.ValueOf(v).Uint()
}

func asFloat(v any) float64 {
	return reflect.ValueOf(v).Float()
}

// trendFrame turns rows of kpi_daily_trend into a wide time series: one
// time field (day) and one field of metric per (dim_value, severity), the
// pair carried as labels, over the days of tr. Days without an event have
// no row; the gaps fill as the metric means: open_at_end keeps the previous
// day's value (0 before a series' first event), opened and resolved are 0.
// The whole history is widened before the range is cut out, so a series
// that has no event inside the range still starts at its true level.
func trendFrame(t *export.Table, metric string, tr backend.TimeRange) (*data.Frame, error) {
	iDay, iDim, iSev, iVal := t.Column("day"), t.Column("dim_value"), t.Column("severity"), t.Column(metric)
	if iDay < 0 || iDim < 0 || iSev < 0 || iVal < 0 {
		return nil, fmt.Errorf("daily trend: columns day, dim_value, severity and %s expected, got %v", metric, t.Columns)
	}
	type point struct {
		day      time.Time
		dim, sev string
		val      float64
	}
	pts := make([]point, 0, len(t.Rows))
	for r, row := range t.Rows {
		day, ok := row[iDay].(time.Time)
		if !ok {
			return nil, fmt.Errorf("daily trend row %d: day is %T, not a time", r+1, row[iDay])
		}
		v := deref(row[iVal])
		if k := kindOf(v); k != kInt && k != kUint && k != kFloat {
			return nil, fmt.Errorf("daily trend row %d: %s is %T, not a number", r+1, metric, v)
		}
		dim, _ := row[iDim].(string)
		sev, _ := row[iSev].(string)
		pts = append(pts, point{day.UTC(), dim, sev, toFloat(v)})
	}
	// kpi.Run orders by series, then day; a wide frame needs time order.
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].day.Before(pts[j].day) })

	meta := &data.FrameMeta{Type: data.FrameTypeTimeSeriesWide, TypeVersion: data.FrameTypeVersion{0, 1}}
	out := data.NewFrame("daily_trend", data.NewField("time", nil, []time.Time{}))
	out.Meta = meta
	if len(pts) == 0 {
		// LongToWide refuses an empty frame; an empty wide frame is the
		// honest answer for a fleet without exposures.
		out.Fields = append(out.Fields, data.NewField(metric, nil, []float64{}))
		return out, nil
	}
	days := make([]time.Time, len(pts))
	dims, sevs := make([]string, len(pts)), make([]string, len(pts))
	vals := make([]float64, len(pts))
	for i, p := range pts {
		days[i], dims[i], sevs[i], vals[i] = p.day, p.dim, p.sev, p.val
	}
	long := data.NewFrame("daily_trend",
		data.NewField("time", nil, days),
		data.NewField(metric, nil, vals),
		data.NewField("dim_value", nil, dims),
		data.NewField("severity", nil, sevs),
	)
	fill := &data.FillMissing{Mode: data.FillModeValue, Value: 0}
	if metric == "open_at_end" {
		fill = &data.FillMissing{Mode: data.FillModePrevious}
	}
	wide, err := data.LongToWideWithLimit(long, fill, maxTrendCells)
	if err != nil {
		return nil, fmt.Errorf("daily trend to wide frame: %w", err)
	}

	// Cut the range out; a day counts when any part of it is in the range.
	from := tr.From.UTC().Truncate(24 * time.Hour)
	var keep []int
	for i := 0; i < wide.Rows(); i++ {
		day := wide.Fields[0].At(i).(time.Time)
		if (tr.From.IsZero() || !day.Before(from)) && (tr.To.IsZero() || !day.After(tr.To)) {
			keep = append(keep, i)
			out.Fields[0].Append(day)
		}
	}
	for _, f := range wide.Fields[1:] {
		vals := make([]float64, len(keep))
		for j, i := range keep {
			// Null is left only before a series' first event: 0 then.
			if v, err := f.NullableFloatAt(i); err == nil && v != nil {
				vals[j] = *v
			}
		}
		nf := data.NewField(metric, f.Labels, vals)
		nf.Config = &data.FieldConfig{DisplayNameFromDS: seriesName(metric, f.Labels)}
		out.Fields = append(out.Fields, nf)
	}
	return out, nil
}

// seriesName is the legend of one trend series: "critical" on the fleet,
// "prod critical" per ring, and the metric when the severity is the rollup.
func seriesName(metric string, l data.Labels) string {
	var parts []string
	if v := l["dim_value"]; v != "" && v != "all" {
		parts = append(parts, v)
	}
	if v := l["severity"]; v != "" && v != "all" {
		parts = append(parts, v)
	}
	if len(parts) == 0 {
		return metric
	}
	return strings.Join(parts, " ")
}

func toFloat(v any) float64 {
	switch kindOf(v) {
	case kInt:
		return float64(asInt(v))
	case kUint:
		return float64(asUint(v))
	}
	return asFloat(v)
}
