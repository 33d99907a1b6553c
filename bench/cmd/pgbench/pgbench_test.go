package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	scaninv "github.com/patchgrid/patchgrid/scanner/inventory"
	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestPercentile(t *testing.T) {
	d := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{d(5), 0.95, 5 * time.Millisecond},
		{d(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{d(10, 1, 2, 3, 4, 5, 6, 7, 8, 9), 0.95, 10 * time.Millisecond},
		{d(10, 1, 2, 3, 4, 5, 6, 7, 8, 9), 0.5, 5 * time.Millisecond},
	} {
		if got := percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
		}
	}
}

type recordSink struct{ got []string }

func (s *recordSink) Send(_ context.Context, batch []simulate.Message) error {
	for _, m := range batch {
		s.got = append(s.got, string(m.Key))
	}
	return nil
}

// TestPausingSink: the stream stops exactly at the boundary, inside a
// batch, and resumes with the rest of that batch.
func TestPausingSink(t *testing.T) {
	next := &recordSink{}
	s := &pausingSink{next: next, pauseAt: 3, paused: make(chan struct{}), resume: make(chan struct{})}
	msgs := func(keys ...string) []simulate.Message {
		var out []simulate.Message
		for _, k := range keys {
			out = append(out, simulate.Message{Key: []byte(k)})
		}
		return out
	}
	ctx := context.Background()
	if err := s.Send(ctx, msgs("a", "b")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, msgs("c", "d", "e")) }()
	<-s.paused
	if want := []string{"a", "b", "c"}; !slices.Equal(next.got, want) {
		t.Fatalf("at the pause the sink had %v, want %v", next.got, want)
	}
	close(s.resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "d", "e"}; !slices.Equal(next.got, want) {
		t.Fatalf("after resuming the sink had %v, want %v", next.got, want)
	}
}

// TestWriteDpkgRoot: the status file handed to OSV-Scanner reads back as
// the same packages, source names and versions (what Debian advisories
// are keyed by) through patchgrid's own scanner.
func TestWriteDpkgRoot(t *testing.T) {
	shared := testenv.SharedData(t)
	ctx := context.Background()
	orig, err := scaninv.ReadFile(ctx, filepath.Join(shared, "inventories", "dpkg", "debian12-bookworm-host-b.status"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := writeDpkgRoot(root, orig.Packages); err != nil {
		t.Fatal(err)
	}
	back, err := scaninv.ReadFile(ctx, filepath.Join(root, "var", "lib", "dpkg", "status"))
	if err != nil {
		t.Fatal(err)
	}
	key := func(f *scaninv.File) []string {
		var out []string
		for _, p := range f.Packages {
			out = append(out, strings.Join([]string{p.Name, p.Version, p.Arch, p.MatchName(), p.MatchVersion()}, " "))
		}
		slices.Sort(out)
		return out
	}
	a, b := key(orig), key(back)
	if len(a) != 745 {
		t.Fatalf("host-b has %d packages, want 745", len(a))
	}
	if !slices.Equal(a, b) {
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("first difference: %q was written back as %q", a[i], b[i])
			}
		}
		t.Fatalf("%d packages written, %d read back", len(a), len(b))
	}
}

// TestWriteAppends: two runs give two JSON files and two sections, the
// first untouched.
// TestWriteResults: every run keeps its own JSON file, and RESULTS.md
// holds one current table, rewritten by each run.
func TestWriteResults(t *testing.T) {
	dir := t.TempDir()
	o := &orchestrator{log: testLogger(t), outDir: filepath.Join(dir, "results"), mdPath: filepath.Join(dir, "RESULTS.md")}
	res := &Results{
		Started: time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC), Finished: time.Date(2026, 11, 22, 4, 1, 0, 0, time.UTC),
		Machine: Machine{Hostname: "box/1", Cores: 2},
		Steps: []StepResult{
			{Name: "version", Status: "ok", Metrics: []Metric{ratio(Metric{Name: "Debian AppendKey", Value: 2e7, Unit: "keys/s/core", Better: "higher"}, "peer: x", 1e7)}},
			{Name: "ingest_e2e", Status: "skipped", Error: "clickhouse not available"},
		},
	}
	for range 2 {
		if err := o.write(res); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "results", "*.json"))
	slices.Sort(files)
	want := []string{filepath.Join(dir, "results", "2026-11-22-box_1-2.json"), filepath.Join(dir, "results", "2026-11-22-box_1.json")}
	if !slices.Equal(files, want) {
		t.Fatalf("result files %v, want %v", files, want)
	}
	md, err := os.ReadFile(o.mdPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(md), currentStart); n != 1 {
		t.Fatalf("RESULTS.md has %d current tables, want 1:\n%s", n, md)
	}
	if s := "| version | Debian AppendKey | 20000000 keys/s/core | peer: x | 10000000 keys/s/core | 2 (higher is better) | 2026-11-22 04:00"; !strings.Contains(string(md), s) {
		t.Errorf("RESULTS.md lacks %q:\n%s", s, md)
	}
	// The run's own section (printed on stderr) still says what was skipped.
	if sec := markdown(res, files[0]); !strings.Contains(sec, "clickhouse not available") {
		t.Errorf("run section lacks the skip reason:\n%s", sec)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// Every step the orchestrator runs has a place in the current table's
// order; an unranked step would sort after every other one.
func TestStepOrderCoversEveryStep(t *testing.T) {
	for _, quick := range []bool{false, true} {
		o := &orchestrator{quick: quick}
		for _, s := range o.steps(Config{Endpoints: []int{1000}}) {
			if stepOrder(s.name) == 100 {
				t.Errorf("quick=%v: step %q has no place in stepOrder", quick, s.name)
			}
		}
	}
}
