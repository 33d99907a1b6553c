package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// markdown renders one run as a section: the run's own record, printed
// when it ends (RESULTS.md itself holds the current table, see currentTable).
func markdown(res *Results, jsonPath string) string {
	var b strings.Builder
	kind := "full"
	if res.Quick {
		kind = "quick (smoke, not a measurement)"
	}
	m := res.Machine
	fmt.Fprintf(&b, "\n## %s — %s run on %s\n\n", res.Started.Format("2006-01-02 15:04 UTC"), kind, m.Hostname)
	fmt.Fprintf(&b, "Machine: %s, %d cores, %.1f GB RAM, kernel %s, %s; load average at start %s. ",
		m.CPUModel, m.Cores, m.MemoryGB, m.Kernel, m.Go, m.Load1)
	fmt.Fprintf(&b, "Took %s. Raw results: `%s`.\n\n", res.Finished.Sub(res.Started).Round(1e9), jsonPath)
	for name, v := range res.Services {
		if s, ok := v.(map[string]any); ok {
			fmt.Fprintf(&b, "- %s at %v: started by this run: %v", name, s["addr"], s["started_by_bench"])
			if e, _ := s["error"].(string); e != "" {
				fmt.Fprintf(&b, " (unavailable: %s)", e)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\n| step | status | wall s | CPU s | peak RSS MB | figure | value | ceiling / peer | ref value | ratio |\n")
	b.WriteString("|---|---|---:|---:|---:|---|---:|---|---:|---:|\n")
	for _, s := range res.Steps {
		head := fmt.Sprintf("| %s | %s | %.1f | %.1f | %.0f ", s.Name, s.Status, s.WallS, s.CPUS, s.PeakRSSMB)
		if s.Status != "ok" && len(s.Metrics) == 0 {
			fmt.Fprintf(&b, "%s| %s | | | | |\n", head, cell(s.Error))
			continue
		}
		for i, mt := range s.Metrics {
			if i > 0 {
				head = "| | | | | "
			}
			fmt.Fprintf(&b, "%s| %s | %s %s | %s | %s | %s |\n", head, cell(mt.Name), num(mt.Value), mt.Unit,
				cell(mt.Ref), refNum(mt), ratioCell(mt))
		}
		if s.Status != "ok" {
			fmt.Fprintf(&b, "| | | | | | error: %s | | | | |\n", cell(s.Error))
		}
	}
	if len(res.Summary) > 0 {
		b.WriteString("\n| summary | value | peer | peer value | ratio |\n|---|---:|---|---:|---:|\n")
		for _, mt := range res.Summary {
			fmt.Fprintf(&b, "| %s | %s %s | %s | %s | %s |\n", cell(mt.Name), num(mt.Value), mt.Unit, cell(mt.Ref), refNum(mt), ratioCell(mt))
		}
	}
	for _, s := range res.Steps {
		if s.Name != "peer_osv" || s.Info == nil {
			continue
		}
		if d, ok := s.Info["differences"].([]any); ok {
			fmt.Fprintf(&b, "\nPeer agreement: %v (package, advisory) pairs on %v sampled hosts: %v in both, %v only in OSV-Scanner, %v only in patchgrid.\n",
				s.Info["pairs_union"], s.Info["sampled_hosts"], s.Info["pairs_both"], s.Info["pairs_osv_only"], s.Info["pairs_patchgrid_only"])
			if len(d) > 0 {
				b.WriteString("\n| side | package | advisory | installed | hosts | explanation |\n|---|---|---|---|---:|---|\n")
				for _, x := range d {
					if e, ok := x.(map[string]any); ok {
						fmt.Fprintf(&b, "| %v | %v | %v | %v | %v | %v |\n", e["side"], e["package"], e["advisory"], e["installed"], e["hosts"], cell(fmt.Sprint(e["explanation"])))
					}
				}
			}
		}
	}
	return b.String()
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1 || v <= -1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func refNum(m Metric) string {
	if m.Ref == "" {
		return ""
	}
	return num(m.RefValue) + " " + m.Unit
}

func ratioCell(m Metric) string {
	if m.Ratio == 0 {
		return ""
	}
	s := fmt.Sprintf("%.3g", m.Ratio)
	if m.Better != "" {
		s += " (" + m.Better + " is better)"
	}
	return s
}

// The current table of RESULTS.md sits between these markers; everything
// else in the file is written by hand and kept.
const (
	currentStart = "<!-- pgbench: current table (generated from bench/results/*.json; do not edit) -->"
	currentEnd   = "<!-- pgbench: end of current table -->"
)

// stepOrder ranks step names the way a run executes them.
func stepOrder(name string) int {
	for i, p := range []string{"version", "feeds", "scanner", "ingest_e2e", "outcome_ingest", "match", "kpi", "export", "plan", "api", "peer_osv", "verify", "make_run"} {
		if stepKind(name) == p {
			return i
		}
	}
	return 100
}

type currentEntry struct {
	step    string
	metric  Metric
	date    string
	file    string
	failure string // the step's latest run failed: its error
	order   int
}

// currentTable is, for every step, the figures of its latest full (not
// quick) run that produced any, with that run's date, and the step's
// latest failure when a later run failed.
func currentTable(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return "", err
	}
	var runs []struct {
		res  Results
		file string
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		var r Results
		if err := json.Unmarshal(b, &r); err != nil {
			return "", fmt.Errorf("%s: %w", f, err)
		}
		if r.Quick {
			continue
		}
		runs = append(runs, struct {
			res  Results
			file string
		}{r, filepath.Base(f)})
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].res.Started.Before(runs[j].res.Started) })
	entries := map[string]*currentEntry{}
	failures := map[string]*currentEntry{}
	for _, run := range runs {
		date := run.res.Started.Format("2006-01-02 15:04")
		for _, s := range run.res.Steps {
			if s.Status == "skipped" {
				continue
			}
			if s.Status == "failed" {
				failures[s.Name] = &currentEntry{step: s.Name, date: date, file: run.file, failure: s.Error}
			} else {
				delete(failures, s.Name)
			}
			if len(s.Metrics) == 0 {
				continue
			}
			// A step's figures all come from its latest run that produced
			// any: a figure an older run had and the latest does not is
			// stale, never shown beside newer ones.
			for k, e := range entries {
				if e.step == s.Name {
					delete(entries, k)
				}
			}
			for i, m := range s.Metrics {
				entries[s.Name+"\x00"+m.Name] = &currentEntry{step: s.Name, metric: m, date: date, file: run.file, order: i}
			}
		}
	}
	var list []*currentEntry
	for _, e := range entries {
		list = append(list, e)
	}
	for _, e := range failures {
		e.order = -1
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if stepOrder(a.step) != stepOrder(b.step) {
			return stepOrder(a.step) < stepOrder(b.step)
		}
		if a.step != b.step {
			return a.step < b.step
		}
		return a.order < b.order
	})
	var b strings.Builder
	b.WriteString(currentStart + "\n\n## Current figures\n\n")
	b.WriteString("The latest figure of every step and figure over the full runs in `bench/results/*.json` (the history),\n")
	b.WriteString("each with the date of the run it comes from; a step whose latest run failed says so first.\n\n")
	b.WriteString("| step | figure | value | ceiling / peer | ref value | ratio | run (UTC) |\n|---|---|---:|---|---:|---:|---|\n")
	for _, e := range list {
		if e.failure != "" {
			fmt.Fprintf(&b, "| %s | **latest run failed**: %s | | | | | %s `%s` |\n", e.step, cell(e.failure), e.date, e.file)
			continue
		}
		m := e.metric
		fmt.Fprintf(&b, "| %s | %s | %s %s | %s | %s | %s | %s `%s` |\n", e.step, cell(m.Name), num(m.Value), m.Unit,
			cell(m.Ref), refNum(m), ratioCell(m), e.date, e.file)
	}
	b.WriteString("\n" + currentEnd + "\n")
	return b.String(), nil
}

// writeResultsMD puts the current table at the top of the RESULTS.md at
// path (after its title), replacing the previous one and keeping the rest.
func writeResultsMD(path, table string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(old)
	if text == "" {
		text = "# patchgrid benchmark results\n"
	}
	if i, j := strings.Index(text, currentStart), strings.Index(text, currentEnd); i >= 0 && j > i {
		text = text[:i] + table + text[j+len(currentEnd)+1:]
	} else {
		title, rest, _ := strings.Cut(text, "\n")
		text = title + "\n\n" + table + rest
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
