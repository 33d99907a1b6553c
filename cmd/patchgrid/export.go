package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/export"
	"github.com/patchgrid/patchgrid/analytics/progress"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/schemas"
)

// runExport streams the current findings with their risk to a file or
// stdout (analytics/export/README.md documents formats and columns).
func runExport(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	format := fs.String("format", "csv", "output format: "+strings.Join(export.Formats, ", "))
	out := fs.String("out", "-", "output file ('-' for stdout)")
	batch := fs.Int("batch-size", export.DefaultBatchSize, "rows per batch (bounds memory)")
	filters := map[string]*string{}
	for _, f := range []struct{ name, usage string }{
		{"severity", "only these severities, comma separated (critical,high,medium,low,none,unknown)"},
		{"kev", "true: only advisories in CISA KEV; false: only those not in it"},
		{"ring", "only hosts of this ring"},
		{"owner", "only hosts of this owner"},
		{"os", "only hosts of this OS (OSV ecosystem, e.g. Debian:12)"},
		{"host", "only this host id"},
		{"min-risk", "only findings with risk_score at least this (0..100)"},
	} {
		filters[f.name] = fs.String(f.name, "", f.usage)
	}
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(env.stderr, "patchgrid export: "+format+"\n", a...)
		return code
	}
	if fs.NArg() != 0 {
		return fail(exitUsage, "takes no arguments")
	}
	filter, err := risk.ParseFilter(func(name string) string { return *filters[name] })
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	// Checked before anything is opened or created.
	if _, err := export.NewWriter(*format, io.Discard, risk.FindingColumns); err != nil {
		return fail(exitUsage, "%v", err)
	}

	st, err := sf.open(ctx)
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	defer st.Close()
	if err := schemas.RequireAnalytics(ctx, st); err != nil {
		return fail(exitFailure, "%v", err)
	}

	var dst io.Writer = env.stdout
	var file *os.File
	if *out != "-" {
		if file, err = os.Create(*out); err != nil {
			return fail(exitFailure, "%v", err)
		}
		dst = file
	}
	// Progress: the engine streams the rows, so what can be counted while
	// they arrive is bytes written (rows are counted at the end).
	meter := progress.Start(progress.Config{Log: env.logger(nil), Stage: "export", Unit: "bytes"})
	bw := bufio.NewWriterSize(countingWriter{dst, meter}, 1<<20)
	start := time.Now()
	n, err := risk.Export(ctx, st, filter, *format, bw, *batch)
	meter.Stop()
	if err == nil {
		err = bw.Flush()
	}
	if file != nil {
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(*out) // a cut file must not pass for a whole export
		}
	}
	if err != nil {
		return fail(exitFailure, "after %d rows: %v", n, err)
	}
	el := time.Since(start)
	fmt.Fprintf(env.stderr, "exported %d findings as %s in %s (%.0f rows/s)\n", n, *format, el.Round(time.Millisecond), float64(n)/el.Seconds())
	return exitOK
}

// countingWriter counts the bytes written through it on a progress meter.
type countingWriter struct {
	w io.Writer
	m *progress.Meter
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.m.Add(int64(n))
	return n, err
}
