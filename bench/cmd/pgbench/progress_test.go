package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLastProgress(t *testing.T) {
	var p lastProgress
	if got := p.phase(); got != "before its first progress line" {
		t.Fatalf("empty: %q", got)
	}
	// Lines arrive in pieces; only INFO lines with a msg count.
	for _, chunk := range []string{
		"time=2026-12-03T09:00:00Z level=INFO msg=\"feeds loaded\" records=6036\n",
		"time=2026-12-03T09:00:01Z level=INFO msg=\"full ma", "tch\" endpoints=100000 took=460ms\n",
		"time=2026-12-03T09:00:02Z level=WARN msg=\"slow\"\n",
		"half a line without its end",
	} {
		if _, err := p.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	got := p.phase()
	if !strings.HasPrefix(got, "in the phase after: msg=\"full match\" endpoints=100000") {
		t.Fatalf("phase: %q", got)
	}
}

func TestCurrentTable(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, r Results) {
		t.Helper()
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	day := func(d int) time.Time { return time.Date(2026, 12, d, 8, 0, 0, 0, time.UTC) }
	write("old.json", Results{Started: day(1), Steps: []StepResult{
		{Name: "kpi", Status: "ok", Metrics: []Metric{{Name: "mttr p50", Value: 400, Unit: "ms"}, {Name: "mttr p95", Value: 9, Unit: "ms"}}},
		{Name: "match:100000", Status: "ok", Metrics: []Metric{{Name: "full_match_s", Value: 0.6, Unit: "s"}}},
	}})
	write("new.json", Results{Started: day(2), Steps: []StepResult{
		{Name: "kpi", Status: "ok", Metrics: []Metric{{Name: "mttr p95", Value: 5, Unit: "ms"}}},
		{Name: "match:100000", Status: "failed", Error: "killed: RSS over 6000 MB in the phase after: msg=\"full match\""},
	}})
	write("quick.json", Results{Started: day(3), Quick: true, Steps: []StepResult{
		{Name: "kpi", Status: "ok", Metrics: []Metric{{Name: "mttr p95", Value: 1, Unit: "ms"}}},
	}})
	table, err := currentTable(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| kpi | mttr p95 | 5.00 ms |", "2026-12-02 08:00 `new.json`", "**latest run failed**: killed", "| match:100000 | full_match_s | 0.6 s |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	for _, stale := range []string{"mttr p50", "1 ms", "quick.json"} {
		if strings.Contains(table, stale) {
			t.Errorf("table shows %q (stale or quick):\n%s", stale, table)
		}
	}
	md := filepath.Join(dir, "RESULTS.md")
	if err := os.WriteFile(md, []byte("# title\n\nhand-written notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second run replaces the table, once
		if err := writeResultsMD(md, table); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(md)
	if got := string(b); !strings.HasPrefix(got, "# title\n\n"+currentStart) || strings.Count(got, currentStart) != 1 || !strings.HasSuffix(got, "hand-written notes\n") {
		t.Fatalf("RESULTS.md:\n%s", got)
	}
}
