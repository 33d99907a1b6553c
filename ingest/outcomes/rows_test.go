package outcomes_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/ingest/outcomes"
	"github.com/patchgrid/patchgrid/schemas/outcome"
)

// TestRowsEqualRow: the rows a batch is built into (shared backing array,
// repeated values boxed once) are Row's, row by row, whatever repeats and
// whatever changes between neighbours.
func TestRowsEqualRow(t *testing.T) {
	received := time.Date(2026, 12, 3, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	f := newFixture("rows", 9)
	outs := append(f.outcomes, newFixture("rows-2", 3).outcomes...)
	outs[3].Package, outs[4].FromVersion, outs[5].ToVersion = "libssl3", "", "3.0.2-0ubuntu1.13"
	outs[6].Status, outs[6].Error = outcome.RolledBack, "health check failed"
	rows := outcomes.Rows(outs, received)
	if len(rows) != len(outs) {
		t.Fatalf("%d rows for %d outcomes", len(rows), len(outs))
	}
	for i, o := range outs {
		if want := outcomes.Row(o, received); !reflect.DeepEqual(rows[i], want) {
			t.Errorf("row %d: %v, want %v", i, rows[i], want)
		}
		if len(rows[i]) != len(outcomes.Columns) || cap(rows[i]) != len(outcomes.Columns) {
			t.Errorf("row %d: len %d cap %d, want %d (an append must not reach the next row)", i, len(rows[i]), cap(rows[i]), len(outcomes.Columns))
		}
	}
	if got := outcomes.Rows(nil, received); len(got) != 0 {
		t.Errorf("no outcomes: %d rows", len(got))
	}
}

// BenchmarkRows: building a 100,000-outcome batch's rows (the consumer's
// batch size).
func BenchmarkRows(b *testing.B) {
	outs := newFixture("bench", 80000).outcomes
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		outcomes.Rows(outs, now)
	}
}
