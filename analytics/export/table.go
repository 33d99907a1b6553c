package export

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// Table is a small result held in memory (a KPI, a page of findings), for
// JSON answers. Large results go through Copy instead.
type Table struct {
	Columns []store.Column `json:"columns"`
	Rows    [][]any        `json:"rows"`
}

// ReadTable reads up to max rows (max <= 0: all) and closes rows.
func ReadTable(rows store.Rows, max int) (*Table, error) {
	defer rows.Close()
	t := &Table{Columns: rows.Columns(), Rows: [][]any{}}
	for rows.Next() {
		if max > 0 && len(t.Rows) == max {
			break
		}
		row := make([]any, len(t.Columns))
		dest := make([]any, len(row))
		for i := range row {
			dest[i] = &row[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read row %d: %w", len(t.Rows)+1, err)
		}
		t.Rows = append(t.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// Column returns the index of the column named name, or -1.
func (t *Table) Column(name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// Records returns the rows as objects keyed by column name, with values
// made JSON-safe: NaN and ±Inf become null (a KPI over no rows is NaN), and
// times that mean "none" (the epoch) become null.
func (t *Table) Records() []map[string]any {
	out := make([]map[string]any, len(t.Rows))
	for r, row := range t.Rows {
		m := make(map[string]any, len(row))
		for i, v := range row {
			m[t.Columns[i].Name] = JSONSafe(v)
		}
		out[r] = m
	}
	return out
}

// MarshalJSON writes {"columns": [...], "rows": [[...]]} with JSON-safe values.
func (t *Table) MarshalJSON() ([]byte, error) {
	rows := make([][]any, len(t.Rows))
	for r, row := range t.Rows {
		safe := make([]any, len(row))
		for i, v := range row {
			safe[i] = JSONSafe(v)
		}
		rows[r] = safe
	}
	return json.Marshal(struct {
		Columns []store.Column `json:"columns"`
		Rows    [][]any        `json:"rows"`
	}{t.Columns, rows})
}

// JSONSafe is v as every JSON output of patchgrid writes it: NaN and
// infinities become null (JSON has neither), times RFC 3339 in UTC, the
// store's "no time" (epoch 0) null.
func JSONSafe(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil
		}
	case time.Time:
		if isNoTime(x) {
			return nil
		}
		return x.UTC().Format(time.RFC3339)
	}
	return v
}
