package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Metric is one figure with the reference it is judged against.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Ref names the ceiling or peer; RefValue is its figure in the same unit.
	Ref      string  `json:"ref,omitempty"`
	RefValue float64 `json:"ref_value,omitempty"`
	// Ratio is Value / RefValue. Better says which direction is good for
	// Value ("higher" for rates, "lower" for times).
	Ratio  float64 `json:"ratio,omitempty"`
	Better string  `json:"better,omitempty"`
	Note   string  `json:"note,omitempty"`
}

// StepOutput is what a child prints on stdout.
type StepOutput struct {
	Metrics []Metric       `json:"metrics"`
	Info    map[string]any `json:"info,omitempty"`
}

// StepResult is one step as recorded.
type StepResult struct {
	Name      string         `json:"name"`
	Status    string         `json:"status"` // ok, failed, skipped
	Error     string         `json:"error,omitempty"`
	WallS     float64        `json:"wall_s"`
	CPUS      float64        `json:"cpu_s"`       // user+sys of the step's process (and its children)
	PeakRSSMB float64        `json:"peak_rss_mb"` // of the step's process (largest child for external peers)
	Metrics   []Metric       `json:"metrics,omitempty"`
	Info      map[string]any `json:"info,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	Hostname string  `json:"hostname"`
	CPUModel string  `json:"cpu_model"`
	Cores    int     `json:"cores"`
	MemoryGB float64 `json:"memory_gb"`
	Kernel   string  `json:"kernel"`
	Go       string  `json:"go"`
	Load1    string  `json:"load_at_start"`
}

// Results is the JSON file of one run.
type Results struct {
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Quick    bool           `json:"quick"`
	Machine  Machine        `json:"machine"`
	Config   Config         `json:"config"`
	Services map[string]any `json:"services"`
	Steps    []StepResult   `json:"steps"`
	Summary  []Metric       `json:"summary"`
}

type orchestrator struct {
	log         *slog.Logger
	quick       bool
	sizes       []int
	shared      string
	outDir      string
	mdPath      string
	only        []string
	services    bool
	stepTimeout time.Duration
	maxRSSMB    int
	e2eHosts    int // 0: the default size
}

func (o *orchestrator) run(ctx context.Context) error {
	started := time.Now().UTC()
	work, err := os.MkdirTemp("", "pgbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	runID := started.Format("20060102t150405")
	cfg := Config{
		Quick: o.quick, Endpoints: o.sizes, Shared: o.shared, Work: work, RunID: runID,
		CHDBLib: chdbLib(), RunDir: runDir(),
		E2EHosts: 5000, KPIHosts: 100000, KPIBase: 2000, KPIDays: 90, ExportHosts: 500, Days: 2,
		PeerFleet: 200, PeerSample: 20, PeerProcs: 2, Reps: 20,
	}
	if o.quick {
		cfg.E2EHosts, cfg.KPIHosts, cfg.KPIBase, cfg.KPIDays, cfg.ExportHosts = 100, 200, 50, 10, 50
		cfg.PeerFleet, cfg.PeerSample, cfg.Reps = 20, 2, 3
	}
	if o.e2eHosts > 0 {
		cfg.E2EHosts = o.e2eHosts
	}
	res := Results{Started: started, Quick: o.quick, Machine: machineInfo(), Services: map[string]any{}}

	// Services: start only what is down, and stop exactly that afterwards,
	// even when a step fails (the deferred stop runs on every path).
	if o.services {
		svc := &services{log: o.log, runDir: cfg.RunDir}
		defer svc.stopStarted()
		for _, name := range []string{"clickhouse", "kafka"} {
			addr, startedByUs, err := svc.ensure(ctx, name)
			res.Services[name] = map[string]any{"addr": addr, "started_by_bench": startedByUs, "error": errString(err)}
			if err != nil {
				o.log.Warn("service unavailable; steps that need it will be skipped", "service", name, "err", err)
				continue
			}
			if name == "clickhouse" {
				cfg.ClickHouse = addr
			} else {
				cfg.Kafka = addr
			}
		}
	}

	// The peer is installed for whichever selected step needs it (-only
	// peer_osv too), not for one step name.
	if o.needs(cfg, "osv-scanner") {
		bin, err := installOSVScanner(ctx)
		if err != nil {
			o.log.Warn("osv-scanner unavailable; the peer step will fail", "err", err)
		}
		cfg.OSVScanner = bin
	}
	res.Config = cfg

	for _, s := range o.steps(cfg) {
		if !o.wants(s.name) {
			continue
		}
		r := o.runStep(ctx, s, cfg)
		res.Steps = append(res.Steps, r)
		if ctx.Err() != nil {
			break
		}
	}
	cleanupRun(cfg, o.log)
	res.Finished = time.Now().UTC()
	res.Summary = summarize(res.Steps)
	return o.write(&res)
}

type stepSpec struct {
	name  string
	arg   string
	needs []string // "clickhouse", "kafka", "osv-scanner"
}

func (o *orchestrator) steps(cfg Config) []stepSpec {
	steps := []stepSpec{{name: "version"}, {name: "feeds"}}
	for _, inv := range scannerInventories(o.quick) {
		steps = append(steps, stepSpec{name: "scanner:" + inv, arg: inv})
	}
	steps = append(steps, stepSpec{name: "ingest_e2e", needs: []string{"clickhouse", "kafka"}})
	steps = append(steps, outcomeStep(o.quick)) // deployment outcome ingest (issue 13)
	for _, n := range cfg.Endpoints {
		steps = append(steps, stepSpec{name: fmt.Sprintf("match:%d", n), arg: fmt.Sprint(n)})
	}
	steps = append(steps, stepSpec{name: "kpi"}, stepSpec{name: "export"}, stepSpec{name: "plan"}, stepSpec{name: "api"},
		stepSpec{name: "peer_osv", needs: []string{"osv-scanner"}})
	steps = append(steps, verifyStep(o.quick))        // deployment verification and gates (issue 13)
	steps = append(steps, stepSpec{name: "make_run"}) // `make run` against its ceilings (issue 16)
	return steps
}

// needs reports whether a selected step needs the named service or tool.
func (o *orchestrator) needs(cfg Config, what string) bool {
	for _, s := range o.steps(cfg) {
		if o.wants(s.name) && slices.Contains(s.needs, what) {
			return true
		}
	}
	return false
}

func (o *orchestrator) wants(name string) bool {
	if len(o.only) == 0 {
		return true
	}
	for _, p := range o.only {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// runStep runs one step as a child process and records its rusage.
func (o *orchestrator) runStep(ctx context.Context, s stepSpec, cfg Config) StepResult {
	r := StepResult{Name: s.name}
	for _, n := range s.needs {
		missing := (n == "clickhouse" && cfg.ClickHouse == "") || (n == "kafka" && cfg.Kafka == "") ||
			(n == "osv-scanner" && cfg.OSVScanner == "")
		if missing {
			r.Status, r.Error = "skipped", n+" not available"
			o.log.Warn("step skipped", "step", s.name, "reason", r.Error)
			return r
		}
	}
	cfg.Arg = s.arg
	body, _ := json.Marshal(cfg)
	self, err := os.Executable()
	if err != nil {
		r.Status, r.Error = "failed", err.Error()
		return r
	}
	timeout := o.stepTimeout
	if (stepKind(s.name) == "kpi" || stepKind(s.name) == "plan") && !o.quick { // plan builds the same fleet (issue 12)
		// Building the 100,000-endpoint × 90-day fleet and its first full
		// refresh takes most of an hour on a busy 2-core machine.
		timeout = max(timeout, 90*time.Minute)
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(sctx, self, "-step", stepKind(s.name), "-config", string(body))
	var (
		stdout   bytes.Buffer
		progress lastProgress
	)
	cmd.Stdout, cmd.Stderr = &stdout, io.MultiWriter(os.Stderr, &progress)
	// The child's children (osv-scanner) go with it when it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	o.log.Info("step start", "step", s.name)
	t0 := time.Now()
	var overRSS atomic.Bool
	if err = cmd.Start(); err == nil {
		stopWatch := o.watchRSS(cmd.Process.Pid, &overRSS)
		err = cmd.Wait()
		stopWatch()
	}
	r.WallS = time.Since(t0).Seconds()
	if ps := cmd.ProcessState; ps != nil {
		r.CPUS = (ps.UserTime() + ps.SystemTime()).Seconds()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.PeakRSSMB = float64(ru.Maxrss) / 1024
		}
	}
	var out StepOutput
	if jerr := json.Unmarshal(lastLine(stdout.Bytes()), &out); jerr == nil {
		r.Metrics, r.Info = out.Metrics, out.Info
	}
	switch {
	case overRSS.Load():
		r.Status, r.Error = "failed", fmt.Sprintf("killed: RSS over -step-max-rss %d MB (the machine is shared) %s", o.maxRSSMB, progress.phase())
	case sctx.Err() == context.DeadlineExceeded:
		r.Status, r.Error = "failed", fmt.Sprintf("timed out after %s %s", timeout, progress.phase())
	case err != nil:
		r.Status = "failed"
		r.Error = err.Error()
		if msg, ok := r.Info["error"].(string); ok {
			r.Error = msg
		}
	default:
		r.Status = "ok"
	}
	o.log.Info("step done", "step", s.name, "status", r.Status, "wall_s", round(r.WallS, 1),
		"cpu_s", round(r.CPUS, 1), "peak_rss_mb", round(r.PeakRSSMB, 0), "err", r.Error)
	return r
}

// watchRSS kills the step's process group when its RSS passes the limit:
// a step that runs away must not take the shared machine's memory.
func (o *orchestrator) watchRSS(pid int, over *atomic.Bool) (stop func()) {
	if o.maxRSSMB <= 0 {
		return func() {}
	}
	return every(time.Second, func() bool {
		if rss := currentRSSMB(pid); rss > float64(o.maxRSSMB) {
			o.log.Error("step over its memory limit; killing it", "pid", pid, "rss_mb", int(rss), "limit_mb", o.maxRSSMB)
			over.Store(true)
			syscall.Kill(-pid, syscall.SIGKILL)
			return false
		}
		return true
	})
}

// every calls fn every d until fn returns false or stop is called; stop
// returns once fn is no longer running.
func every(d time.Duration, fn func() (more bool)) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if !fn() {
					return
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

func stepKind(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// write saves the JSON (a new file; an existing name gets a suffix) and
// appends the table to RESULTS.md.
func (o *orchestrator) write(res *Results) error {
	if err := os.MkdirAll(o.outDir, 0o755); err != nil {
		return err
	}
	base := res.Started.Format("2006-01-02") + "-" + sanitize(res.Machine.Hostname)
	if res.Quick {
		base += "-quick"
	}
	path := filepath.Join(o.outDir, base+".json")
	for i := 2; ; i++ {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			break
		}
		path = filepath.Join(o.outDir, fmt.Sprintf("%s-%d.json", base, i))
	}
	body, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(body, '\n'), 0o644); err != nil {
		return err
	}
	// The run's own section goes to stderr; RESULTS.md opens with the
	// latest figure of every step over all full runs.
	fmt.Fprint(os.Stderr, markdown(res, path))
	table, err := currentTable(o.outDir)
	if err != nil {
		return fmt.Errorf("current table of %s: %w", o.outDir, err)
	}
	if err := writeResultsMD(o.mdPath, table); err != nil {
		return err
	}
	o.log.Info("results written", "json", path, "markdown", o.mdPath)
	failed := 0
	for _, s := range res.Steps {
		if s.Status == "failed" {
			failed++
		}
	}
	if failed > 0 {
		o.log.Warn("some steps failed (recorded in the results)", "failed", failed, "steps", len(res.Steps))
	}
	return nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

func machineInfo() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"), "%f", &kb)
		m.MemoryGB = round(kb/1024/1024, 1)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.Load1 = strings.Fields(string(b))[0]
	}
	return m
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}

// summarize lifts cross-step comparisons: patchgrid's fleet matching against
// the peer's hosts/s.
func summarize(steps []StepResult) []Metric {
	find := func(step, metric string) (Metric, bool) {
		for _, s := range steps {
			if s.Name != step || s.Status != "ok" {
				continue
			}
			for _, m := range s.Metrics {
				if m.Name == metric {
					return m, true
				}
			}
		}
		return Metric{}, false
	}
	var out []Metric
	peer, ok := find("peer_osv", "osv_scanner_hosts_per_s")
	if !ok {
		return nil
	}
	names := []string{}
	for _, s := range steps {
		if strings.HasPrefix(s.Name, "match:") {
			names = append(names, s.Name)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		for _, name := range []string{"full_match_hosts_per_s", "full match + every host's findings delivered (inventory rows shared by reference), hosts/s"} {
			m, ok := find(n, name)
			if !ok {
				continue
			}
			out = append(out, ratio(Metric{Name: n + " " + name + " vs OSV-Scanner", Value: m.Value, Unit: "hosts/s", Better: "higher",
				Note: "patchgrid matches the whole fleet at once in chDB; OSV-Scanner is one process per host (2 in parallel)"},
				"peer: OSV-Scanner v2.5.0 offline, hosts/s", peer.Value))
		}
	}
	return out
}

func ratio(m Metric, ref string, refValue float64) Metric {
	m.Ref, m.RefValue = ref, refValue
	if refValue != 0 {
		m.Ratio = m.Value / refValue
	}
	return m
}

// lastProgress keeps the last progress line a step logged (slog text: a
// line with msg=...). Steps log as each phase ends, so a step that is
// killed was in the phase after that line: its error says so.
type lastProgress struct {
	mu      sync.Mutex
	partial []byte
	last    string
}

func (p *lastProgress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	splitLines(&p.partial, b, func(l []byte) {
		if line := string(l); strings.Contains(line, " msg=") && strings.Contains(line, "level=INFO") {
			p.last = line[strings.Index(line, " msg=")+1:]
		}
	})
	return len(b), nil
}

// splitLines is the line splitting of a log-following writer: it appends
// b to *partial, hands each complete line to line and keeps the rest. A
// partial line past 64 KiB is dropped: a line that long is not a log line
// the bench reads.
func splitLines(partial *[]byte, b []byte, line func(l []byte)) {
	*partial = append(*partial, b...)
	for {
		i := bytes.IndexByte(*partial, '\n')
		if i < 0 {
			break
		}
		line((*partial)[:i])
		*partial = (*partial)[i+1:]
	}
	if len(*partial) > 64<<10 {
		*partial = (*partial)[:0]
	}
}

// phase describes where the step was: after its last progress line.
func (p *lastProgress) phase() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == "" {
		return "before its first progress line"
	}
	return "in the phase after: " + p.last
}
