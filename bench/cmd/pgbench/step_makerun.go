package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The goals of `make run` with its defaults (issue 16): the whole run
// within a minute and 2 GB, on the bench machine.
const (
	makeRunWallCeilingS = 60
	makeRunRSSCeilingMB = 2048
)

// stepMakeRun runs `patchgrid run` as `make run` does (its defaults:
// 10,000 endpoints × 7 days, the local scan, the shared corpus), in a new
// data directory, and reports its wall time and peak RSS against the
// ceilings, with each stage's time from its log. A quick run simulates
// 500 endpoints instead (the ratios are then not the goal's).
func stepMakeRun(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	bin := filepath.Join(cfg.Work, "patchgrid-make-run")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/patchgrid")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build patchgrid (run pgbench from the repository root): %v: %s", err, b)
	}
	data, err := os.MkdirTemp(cfg.Work, "make-run-data-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	args := []string{"run", "--data-dir", data, "--cache-dir", filepath.Join(cfg.Work, "make-run-cache")}
	if cfg.Quick {
		args = append(args, "--endpoints", "500")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "PATCHGRID_SHARED_DATA="+cfg.Shared, "PATCHGRID_CHDB_LIB="+cfg.CHDBLib)
	var stderr bytes.Buffer
	where := &runPhase{}
	cmd.Stdout = io.Discard
	cmd.Stderr = io.MultiWriter(os.Stderr, &stderr, where)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("patchgrid %v: %w", args, err)
	}
	// The peak is the process's VmHWM; each rise of it is charged to the
	// phase the run's log was in when it was seen, so that the figure
	// says where the memory goes (issue 16).
	var peak peakPhase
	stopRSS := every(peakSampleEvery, func() bool {
		peak.sample(peakRSSMB(cmd.Process.Pid), where.String())
		return true
	})
	err = cmd.Wait()
	stopRSS()
	wall := time.Since(t0)
	// run exits 3 when --fail-on trips; without it, any failure is one.
	if err != nil {
		return fmt.Errorf("patchgrid %v: %w (last log: %s)", args, err, lastLines(stderr.String(), 5))
	}
	var rssMB float64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rssMB = float64(ru.Maxrss) / 1024
	}
	stages := stageTimes(stderr.Bytes())
	for name, d := range stages {
		out.Info["stage_"+name+"_s"] = round(d.Seconds(), 2)
	}
	// Which phase or snapshot of the refresh dominates (issue 16).
	refreshSteps := refreshStepTimes(stderr.Bytes())
	for name, d := range refreshSteps {
		out.Info["refresh_"+name+"_s"] = round(d.Seconds(), 2)
	}
	out.Info["args"] = args
	out.Info["peak_rss_phase"] = peak.phase
	note := "make run's defaults: 10,000 endpoints × 7 days"
	if cfg.Quick {
		note = "quick: 500 endpoints × 7 days (the goal is for the defaults)"
	}
	out.Metrics = append(out.Metrics,
		Metric{Name: "make run wall time", Value: round(wall.Seconds(), 1), Unit: "s", Ref: "goal ceiling",
			RefValue: makeRunWallCeilingS, Ratio: round(wall.Seconds()/makeRunWallCeilingS, 3), Better: "lower", Note: note},
		Metric{Name: "make run peak RSS", Value: round(rssMB, 0), Unit: "MB", Ref: "goal ceiling",
			RefValue: makeRunRSSCeilingMB, Ratio: round(rssMB/makeRunRSSCeilingMB, 3), Better: "lower", Note: note})
	log.Info("make run", "wall", wall.Round(time.Millisecond), "peak_rss_mb", int(rssMB), "peak_rss_phase", peak.phase, "stages", fmt.Sprint(stages),
		"refresh_steps", fmt.Sprint(refreshSteps))
	return nil
}

// stageLine matches the pipeline's "[k/n] name done ... took=1m2.5s" lines
// (cmd/patchgrid/run.go stages) in slog's text format.
var stageLine = regexp.MustCompile(`msg="\[\d+/\d+\] (\S+) done".* took=(\S+)`)

// stageTimes reads each stage's duration from the run's log.
func stageTimes(log []byte) map[string]time.Duration {
	out := map[string]time.Duration{}
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		m := stageLine.FindSubmatch(sc.Bytes())
		if m == nil {
			continue
		}
		if d, err := time.ParseDuration(unquote(string(m[2]))); err == nil {
			out[string(m[1])] = d
		}
	}
	return out
}

// refreshStepLine matches the refresh's closing line of step times
// (analytics/refresh: msg="refresh steps" name=duration ...).
var (
	refreshStepLine = regexp.MustCompile(`msg="refresh steps"(.*)$`)
	keyDuration     = regexp.MustCompile(`(\S+)=(\S+)`)
)

// refreshStepTimes reads the time of each refresh phase and snapshot from
// the run's log (a later line's time of a step wins).
func refreshStepTimes(log []byte) map[string]time.Duration {
	out := map[string]time.Duration{}
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		m := refreshStepLine.FindSubmatch(sc.Bytes())
		if m == nil {
			continue
		}
		for _, kv := range keyDuration.FindAllSubmatch(m[1], -1) {
			if d, err := time.ParseDuration(unquote(string(kv[2]))); err == nil {
				out[string(kv[1])] = d
			}
		}
	}
	return out
}

func unquote(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}

// peakSampleEvery is how often the make run step reads the run's VmHWM.
const peakSampleEvery = 250 * time.Millisecond

// peakPhase is the phase of a run in which its VmHWM last rose.
type peakPhase struct {
	mb    float64
	phase string
}

func (p *peakPhase) sample(hwmMB float64, phase string) {
	if hwmMB > p.mb {
		p.mb, p.phase = hwmMB, phase
	}
}

// runPhase follows a run's log as it is written: the stage ("[k/n]
// name" lines) and, within it, the step its progress lines name (the
// refresh's "step=...", a shard or a snapshot table).
type runPhase struct {
	mu          sync.Mutex
	partial     []byte
	stage, step string
}

var (
	stageStart = regexp.MustCompile(`msg="\[\d+/\d+\] (\S+)"`)
	stepAttr   = regexp.MustCompile(` step=("[^"]*"|\S+)`)
)

func (r *runPhase) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	splitLines(&r.partial, b, func(line []byte) {
		if m := stageStart.FindSubmatch(line); m != nil {
			r.stage, r.step = string(m[1]), ""
		} else if m := stepAttr.FindSubmatch(line); m != nil {
			r.step = strings.Trim(string(m[1]), `"`)
		}
	})
	return len(b), nil
}

// String is the phase: "stage" or "stage: step".
func (r *runPhase) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.step == "" {
		return r.stage
	}
	return r.stage + ": " + r.step
}
