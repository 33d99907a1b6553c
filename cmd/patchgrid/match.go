package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/patchgrid/patchgrid/analytics/failon"
	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/analytics/refresh"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// matchBatch is how many input lines share one ranges query.
const matchBatch = 500

// matchLine is one output line of `patchgrid match`.
type matchLine struct {
	Line    int           `json:"line"`
	Input   *match.Input  `json:"input,omitempty"`
	Matches []match.Match `json:"matches"`
	Error   string        `json:"error,omitempty"`
}

// runMatch matches JSON-lines packages from stdin, or with --fleet runs the
// fleet matching job.
func runMatch(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("match", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	fleet := fs.Bool("fleet", false, "run the fleet matching job instead of reading packages from stdin")
	mode := fs.String("mode", "incremental", "fleet job mode: incremental (only new scans and new/modified advisories) or full")
	doRefresh := fs.Bool("refresh", true, "with --fleet: then refresh exposure history and the KPI and risk tables (incremental, or full with --mode full); skipped on a ClickHouse too old for analytics")
	var failOn failon.Threshold
	fs.Var(&failOn, "fail-on", failon.Usage()+" (stdin mode)")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, `usage: patchgrid match [flags] < packages.jsonl
       patchgrid match --fleet [--mode incremental|full] [flags]

Reads {"ecosystem","name","version"[,"source_name","source_version"]} lines and
writes one JSON line per input with the advisories it matches and their evidence.`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(env.stderr, "patchgrid match: takes no arguments (packages come on stdin)")
		return exitUsage
	}
	if *fleet && *mode != string(match.Full) && *mode != string(match.Incremental) {
		fmt.Fprintf(env.stderr, "patchgrid match: invalid --mode %q (want incremental or full)\n", *mode)
		return exitUsage
	}
	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid match: %v\n", err)
		return exitFailure
	}
	defer st.Close()
	if err := schemas.RequireMigrated(ctx, st); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid match: %v\n", err)
		return exitFailure
	}

	if *fleet {
		log := env.logger(nil)
		stats, err := (&match.Job{Store: st, Log: log}).Run(ctx, match.Mode(*mode))
		if err != nil {
			fmt.Fprintf(env.stderr, "patchgrid match: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(env.stdout, "run %s (%s): %d versions, %d advisory records, %d inventories, %d version findings in %s\n",
			stats.RunID, stats.Mode, stats.Versions, stats.Advisories, stats.Inventories, stats.VersionFindings,
			stats.Finished.Sub(stats.Started))
		if !*doRefresh {
			return exitOK
		}
		if err := schemas.RequireAnalytics(ctx, st); err != nil {
			log.Warn("no refresh of exposure history and KPIs", "reason", err)
			return exitOK
		}
		rmode := refresh.Incremental
		if *mode == string(match.Full) {
			rmode = refresh.Full
		}
		rs, err := (&refresh.Job{Store: st, Log: log}).Run(ctx, rmode)
		if err != nil {
			fmt.Fprintf(env.stderr, "patchgrid match: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(env.stdout, "refresh %s (%s): %d hosts, %d advisories, %d exposure rows in %s\n",
			rs.RefreshID, rs.Mode, rs.Hosts, rs.Advisories, rs.Exposures, rs.Finished.Sub(rs.Started))
		if err := recordRefresh(ctx, st, env, rs); err != nil {
			fmt.Fprintf(env.stderr, "patchgrid match: %v\n", err)
			return exitFailure
		}
		return exitOK
	}

	out := json.NewEncoder(env.stdout)
	out.SetEscapeHTML(false)
	sc := bufio.NewScanner(env.stdin)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	code := exitOK
	var batch []matchLine
	var inputs []match.Input
	flush := func() bool {
		if len(inputs) > 0 {
			res, err := match.MatchInputs(ctx, st, version.Compare, inputs)
			if err != nil {
				fmt.Fprintf(env.stderr, "patchgrid match: %v\n", err)
				return false
			}
			j := 0
			for i := range batch {
				if batch[i].Input != nil {
					batch[i].Matches = res[j]
					j++
				}
			}
		}
		for i := range batch {
			l := &batch[i]
			if l.Matches == nil {
				l.Matches = []match.Match{}
			}
			for _, m := range l.Matches {
				if failOn.Trips(m.Severity) && code == exitOK {
					code = exitFindings
				}
			}
			if err := out.Encode(l); err != nil {
				fmt.Fprintf(env.stderr, "patchgrid match: writing output: %v\n", err)
				return false
			}
		}
		batch, inputs = batch[:0], inputs[:0]
		return true
	}
	n := 0
	for sc.Scan() {
		n++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		l := matchLine{Line: n}
		var in match.Input
		if err := json.Unmarshal([]byte(text), &in); err != nil {
			l.Error = fmt.Sprintf("line %d: not a JSON package object: %v", n, err)
		} else if in.Ecosystem == "" || in.Name == "" || in.Version == "" {
			l.Error = fmt.Sprintf("line %d: ecosystem, name and version are required", n)
		} else if _, err := version.Key(in.Ecosystem, in.Version); err != nil {
			l.Error = fmt.Sprintf("line %d: %v", n, err)
		} else {
			l.Input = &in
			inputs = append(inputs, in)
		}
		if l.Error != "" {
			fmt.Fprintf(env.stderr, "patchgrid match: %s\n", l.Error)
		}
		batch = append(batch, l)
		if len(inputs) >= matchBatch && !flush() {
			return exitFailure
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid match: reading stdin: %v\n", err)
		return exitFailure
	}
	if !flush() {
		return exitFailure
	}
	return code
}
