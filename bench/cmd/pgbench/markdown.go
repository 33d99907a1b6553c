package main

import (
	"fmt"
	"strings"
)

// markdown renders one run as a section to append to RESULTS.md.
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
