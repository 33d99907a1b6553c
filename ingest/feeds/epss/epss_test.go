package epss

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed/feedtest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func collect(t *testing.T, name string) ([]Score, error) {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.SharedData(t), "epss", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	var out []Score
	probs, err := Parse(r, name, func(s Score) error { out = append(out, s); return nil })
	if len(probs) > 0 {
		t.Errorf("%s: %v", name, probs)
	}
	return out, err
}

func TestHead(t *testing.T) {
	got, err := collect(t, "epss_scores-2026-01-02.head.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 29 || got[0].ModelVersion != "v2025.03.14" || got[0].ScoreDate.Format("2006-01-02") != "2026-01-02" {
		t.Errorf("%d rows, first %+v", len(got), got[0])
	}
	feedtest.Golden(t, "head-first-rows", got[:3])
}

func TestFull(t *testing.T) {
	got, err := collect(t, "epss_scores-2026-08-16.emba-derived.csv.gz")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 360142 {
		t.Errorf("%d rows, want 360142", len(got))
	}
	want := map[string][2]float64{"CVE-2021-44228": {0.99999, 1.0}, "CVE-2014-0160": {0.99999, 0.99997}, "CVE-2024-3094": {0.85974, 0.99712}}
	for _, s := range got {
		if w, ok := want[s.CVE]; ok {
			if s.EPSS != w[0] || s.Percentile != w[1] || !s.ScoreDate.IsZero() {
				t.Errorf("%+v, want %v", s, w)
			}
			delete(want, s.CVE)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing %v", want)
	}
}

func TestBad(t *testing.T) {
	var n int
	probs, err := Parse(strings.NewReader("#model_version:v1,score_date:bad\ncve,epss,percentile\nCVE-1,0.5,0.5\nCVE-2,2,0.1\nnope\n"), "x", func(Score) error { n++; return nil })
	if err != nil || n != 1 || len(probs) != 3 {
		t.Errorf("%v %d %v", err, n, probs)
	}
	if _, err := Parse(strings.NewReader("a,b\n"), "x", func(Score) error { return nil }); err == nil {
		t.Error("no error for a missing header")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("#model_version:v2025.03.14,score_date:2026-01-02T12:55:00Z\ncve,epss,percentile\nCVE-1999-0001,0.01,0.5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Parse(strings.NewReader(string(data)), "fuzz", func(s Score) error {
			if s.EPSS < 0 || s.EPSS > 1 {
				t.Fatalf("epss %v", s.EPSS)
			}
			return nil
		})
	})
}
