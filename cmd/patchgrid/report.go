package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/patchgrid/patchgrid/analytics/compliance"
	"github.com/patchgrid/patchgrid/schemas"
)

// runReport is `patchgrid report --format html --period 30d --out FILE`:
// the compliance report (analytics/compliance), one self-contained HTML
// file an auditor can open anywhere.
func runReport(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	format := fs.String("format", "html", "report format: html (self-contained: inline CSS and SVG charts)")
	period := fs.String("period", "30d", "how far back the trend goes: e.g. 30d, 12w")
	out := fs.String("out", "", "write the report to this file (default: stdout)")
	policy := fs.String("policy", "default", "the SLA policy the SLA figures use")
	title := fs.String("title", "patchgrid fleet", "the organisation or scope named on the cover")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(env.stderr, "patchgrid report: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if *format != "html" {
		fmt.Fprintf(env.stderr, "patchgrid report: --format %q: only html is supported\n", *format)
		return exitUsage
	}
	span, err := parseSpan(*period)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid report: --period: %v\n", err)
		return exitUsage
	}
	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid report: %v\n", err)
		return exitFailure
	}
	defer st.Close()
	if err := schemas.RequireAnalytics(ctx, st); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid report: %v\n", err)
		return exitFailure
	}
	d, err := compliance.Gather(ctx, st, compliance.Options{Period: span, Policy: *policy, Title: *title})
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid report: %v\n", err)
		return exitFailure
	}
	var w io.Writer = env.stdout
	var tmp *os.File
	if *out != "" {
		// Written beside the target and renamed: a failed run never leaves
		// half a report where the last good one was.
		if tmp, err = os.CreateTemp(filepath.Dir(*out), ".patchgrid-report-*"); err != nil {
			fmt.Fprintf(env.stderr, "patchgrid report: %v\n", err)
			return exitFailure
		}
		defer os.Remove(tmp.Name())
		w = tmp
	}
	if err := compliance.WriteHTML(w, d); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid report: %v\n", err)
		return exitFailure
	}
	if tmp != nil {
		if err := tmp.Close(); err != nil {
			fmt.Fprintf(env.stderr, "patchgrid report: %s: %v\n", *out, err)
			return exitFailure
		}
		if err := os.Rename(tmp.Name(), *out); err != nil {
			fmt.Fprintf(env.stderr, "patchgrid report: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(env.stderr, "patchgrid report: wrote %s (%d hosts, %d open exposures)\n", *out, d.Hosts, d.OpenTotal)
	}
	return exitOK
}
