package export

import (
	"context"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// The engine path (CSVCellSQL, used when chDB formats a CSV export itself)
// neutralises exactly the cells the Go writer does.
func TestCSVCellSQLMatchesWriter(t *testing.T) {
	st := testenv.CHDBStore(t)
	for _, c := range csvFormulaCases {
		rows, err := st.Query(context.Background(), "SELECT "+CSVCellSQL("s")+" FROM (SELECT toString(?) AS s)", c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		var got string
		for rows.Next() {
			if err := rows.Scan(&got); err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
		want := c.in
		if csvFormula(c.in) {
			want = "'" + c.in
		}
		if got != want {
			t.Errorf("CSVCellSQL(%q) = %q, the CSV writer neutralises it to %q", c.in, got, want)
		}
	}
}
