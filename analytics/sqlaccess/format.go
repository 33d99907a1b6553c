package sqlaccess

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"github.com/patchgrid/patchgrid/analytics/export"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Formats Write accepts.
var Formats = []string{"table", "csv", "json"}

// Write writes res to w as a table (aligned columns with a header), csv
// (RFC 4180 with a header row) or json (one object per row, JSON lines).
func Write(w io.Writer, res *Result, format string) error {
	switch format {
	case "table":
		return writeTable(w, res)
	case "csv":
		return writeCSV(w, res)
	case "json":
		return writeJSONLines(w, res)
	}
	return fmt.Errorf("output format %q: want one of %s", format, strings.Join(Formats, ", "))
}

// maxCellWidth keeps one long value from making a table unreadable; csv and
// json carry values whole.
const maxCellWidth = 60

func writeTable(w io.Writer, res *Result) error {
	cells := make([][]string, len(res.Rows)+1)
	width := make([]int, len(res.Columns))
	cells[0] = make([]string, len(res.Columns))
	for i, c := range res.Columns {
		cells[0][i] = c.Name
		width[i] = utf8.RuneCountInString(c.Name)
	}
	for r, row := range res.Rows {
		cells[r+1] = make([]string, len(row))
		for i, v := range row {
			s := text(v)
			if utf8.RuneCountInString(s) > maxCellWidth {
				s = string([]rune(s)[:maxCellWidth-1]) + "…"
			}
			cells[r+1][i] = s
			width[i] = max(width[i], utf8.RuneCountInString(s))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		b.Reset()
		for i, s := range row {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(s)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(s)))
			}
		}
		b.WriteByte('\n')
	}
	sep := make([]string, len(width))
	for i, n := range width {
		sep[i] = strings.Repeat("-", n)
	}
	for i, row := range cells {
		line(row)
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
		if i == 0 {
			line(sep)
			if _, err := io.WriteString(w, b.String()); err != nil {
				return err
			}
		}
	}
	_, err := fmt.Fprintf(w, "(%d rows%s)\n", len(res.Rows), truncNote(res))
	return err
}

func truncNote(res *Result) string {
	if res.Truncated {
		return ", truncated: raise --max-rows or narrow the query"
	}
	return ""
}

func writeCSV(w io.Writer, res *Result) error {
	cw := csv.NewWriter(w)
	rec := make([]string, len(res.Columns))
	for i, c := range res.Columns {
		rec[i] = c.Name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for _, row := range res.Rows {
		for i, v := range row {
			rec[i] = export.NeutralizeCSVCell(text(v))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func writeJSONLines(w io.Writer, res *Result) error {
	enc := json.NewEncoder(w)
	for _, row := range res.Rows {
		obj := make(map[string]any, len(row))
		for i, v := range row {
			obj[res.Columns[i].Name] = export.JSONSafe(v)
		}
		if err := enc.Encode(obj); err != nil {
			return err
		}
	}
	return nil
}

// text renders a value the way ClickHouse's own text formats do.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case string:
		return x
	case time.Time:
		return x.UTC().Format(time.DateTime)
	case float64:
		return formatFloat(x)
	case float32:
		return formatFloat(float64(x))
	case bool:
		if x {
			return "true"
		}
		return "false"
	case []string:
		q := make([]string, len(x))
		for i, s := range x {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ",") + "]"
	case []any:
		q := make([]string, len(x))
		for i, e := range x {
			if s, ok := e.(string); ok {
				q[i] = strconv.Quote(s)
			} else {
				q[i] = text(e)
			}
		}
		return "[" + strings.Join(q, ",") + "]"
	}
	return fmt.Sprint(v)
}

func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
