// Package epss parses FIRST EPSS score files: CSV "cve,epss,percentile",
// optionally preceded by "#model_version:v2025.03.14,score_date:2026-01-02T12:55:00Z".
package epss

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
)

// Score is one row (the epss table).
type Score struct {
	CVE          string
	EPSS         float64
	Percentile   float64
	ScoreDate    time.Time // zero when the file has no comment line
	ModelVersion string
}

// Parse streams the file to emit, one row at a time (the full file has
// about 300k rows). A bad row is a problem; the rest loads. emit errors
// stop the parse.
func Parse(r io.Reader, file string, emit func(Score) error) ([]feed.Problem, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	var probs []feed.Problem
	var model string
	var date time.Time
	header := false
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "#") {
			for _, kv := range strings.Split(text[1:], ",") {
				k, v, _ := strings.Cut(kv, ":")
				switch strings.TrimSpace(k) {
				case "model_version":
					model = strings.TrimSpace(v)
				case "score_date":
					t, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
					if err != nil {
						t, err = time.Parse(time.DateOnly, strings.TrimSpace(v))
					}
					if err != nil {
						probs = append(probs, feed.Problem{File: file, Reason: fmt.Sprintf("line %d: bad score_date %q", line, v)})
						continue
					}
					date = t.UTC().Truncate(24 * time.Hour)
				}
			}
			continue
		}
		f := strings.Split(text, ",")
		if !header {
			header = true
			if len(f) >= 3 && strings.EqualFold(f[0], "cve") {
				if f[1] != "epss" || f[2] != "percentile" {
					return probs, fmt.Errorf("%s: epss: unexpected header %q", file, text)
				}
				continue
			}
			return probs, fmt.Errorf("%s: epss: first line %q is not the cve,epss,percentile header", file, text)
		}
		if len(f) != 3 || !strings.HasPrefix(f[0], "CVE-") {
			probs = append(probs, feed.Problem{File: file, Reason: fmt.Sprintf("line %d: bad row %q", line, text)})
			continue
		}
		e, err1 := strconv.ParseFloat(f[1], 64)
		p, err2 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil || e < 0 || e > 1 || p < 0 || p > 1 {
			probs = append(probs, feed.Problem{File: file, ID: f[0], Reason: fmt.Sprintf("line %d: bad scores %q", line, text)})
			continue
		}
		if err := emit(Score{CVE: f[0], EPSS: e, Percentile: p, ScoreDate: date, ModelVersion: model}); err != nil {
			return probs, err
		}
	}
	if err := sc.Err(); err != nil {
		return probs, fmt.Errorf("%s: epss: line %d: %w", file, line, err)
	}
	if !header {
		return probs, fmt.Errorf("%s: epss: empty file", file)
	}
	return probs, nil
}
