package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/ipc"
)

// TestHelpEverywhere: -h, --help and help answer on stdout with exit 0 for
// every command and every subcommand, starting with a one-line
// description, and list flags in --flag spelling.
func TestHelpEverywhere(t *testing.T) {
	env := map[string]string{"HOME": t.TempDir()}
	check := func(t *testing.T, name string, args ...string) {
		t.Helper()
		code, out, errOut := runCLI(t, "", env, args...)
		if code != exitOK || errOut != "" {
			t.Fatalf("patchgrid %v: exit %d, stderr %q", args, code, errOut)
		}
		first, _, _ := strings.Cut(out, "\n")
		if !strings.HasPrefix(first, "patchgrid "+name+": ") || len(first) < len("patchgrid "+name+": ")+10 {
			t.Fatalf("patchgrid %v: first line %q is no description", args, first)
		}
		if strings.Contains(out, "\n  -") && !strings.Contains(out, "\n  --") {
			t.Errorf("patchgrid %v: flags not spelled --flag:\n%s", args, out)
		}
	}
	names := make([]string, 0, len(commands()))
	for n := range commands() {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			for _, h := range []string{"-h", "--help"} {
				check(t, n, n, h)
			}
			check(t, n, "help", n)
			for _, s := range subcommands[n] {
				if n == "completion" {
					continue // its "subcommands" are shells and take no flags
				}
				check(t, n+" "+s.name, n, s.name, "-h")
				check(t, n+" "+s.name, n, s.name, "--help")
			}
		})
	}
	code, out, _ := runCLI(t, "", env, "--help")
	if code != exitOK || !strings.Contains(out, "global flags:") || !strings.Contains(out, "completion") {
		t.Errorf("patchgrid --help: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "", env, "export", "--nope"); code != exitUsage || !strings.Contains(errOut, "patchgrid export -h") {
		t.Errorf("unknown flag: exit %d, stderr %q", code, errOut)
	}
}

func TestVersionFlag(t *testing.T) {
	// No store: the build is still printed, and it says why there are no feeds.
	data := filepath.Join(t.TempDir(), "data")
	code, out, errOut := runCLI(t, "", map[string]string{"PATCHGRID_DATA_DIR": data}, "--version")
	if code != exitOK || !strings.HasPrefix(out, "patchgrid ") || !strings.Contains(out, "\ncommit ") ||
		!strings.Contains(out, "feeds: none (no data in "+data) {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("--version created the data directory: %v", err)
	}

	env := seededCLIEnv(t)
	code, out, errOut = runCLI(t, "", env, "--version")
	if code != exitOK || !strings.Contains(out, "feeds in ") || !strings.Contains(out, "osv") || !strings.Contains(out, "newest record 1d") {
		t.Fatalf("with a store: exit %d\n%s%s", code, out, errOut)
	}
}

func TestReadCommandsOnMissingData(t *testing.T) {
	base := t.TempDir()
	for _, args := range [][]string{{"export"}, {"explain", "h1", "A1"}, {"sql", "SELECT 1"}, {"feeds", "status"}, {"serve"}} {
		dir := filepath.Join(base, "typo")
		code, out, errOut := runCLI(t, "", map[string]string{"PATCHGRID_DATA_DIR": dir}, args...)
		if code != exitFailure || !strings.Contains(errOut, "does not exist") || !strings.Contains(errOut, "'patchgrid run' fills it") || out != "" {
			t.Errorf("%v on a missing data dir: exit %d, stderr %q", args, code, errOut)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%v created the mistyped data directory", args)
		}
		empty := filepath.Join(base, "empty")
		os.MkdirAll(empty, 0o755)
		if code, _, errOut := runCLI(t, "", map[string]string{"PATCHGRID_DATA_DIR": empty}, args...); code != exitFailure || !strings.Contains(errOut, "is empty") {
			t.Errorf("%v on an empty data dir: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// TestConfigFile: keys are flag names, for every command or in a
// command's section; a flag beats PATCHGRID_*, which beats the file.
func TestConfigFile(t *testing.T) {
	xdg := t.TempDir()
	write := func(body string) {
		t.Helper()
		os.MkdirAll(filepath.Join(xdg, "patchgrid"), 0o755)
		if err := os.WriteFile(filepath.Join(xdg, "patchgrid", "config.yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"XDG_CONFIG_HOME": xdg}
	compare := func(extra ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, "", env, append(append([]string{"version", "compare"}, extra...), "1.0", "1.0.0")...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		return strings.TrimSpace(out)
	}
	// dpkg orders 1.0 before 1.0.0; PEP 440 and semver-like schemes do not.
	write("ecosystem: debian:12\n")
	if got := compare(); got != "<" {
		t.Errorf("top-level key: %s, want < (Debian)", got)
	}
	write("ecosystem: debian:12\nversion:\n  compare:\n    ecosystem: PyPI\n")
	if got := compare(); got != "=" {
		t.Errorf("command section: %s, want = (PyPI)", got)
	}
	write("ecosystem: debian:12\n\"version compare\":\n  ecosystem: pypi\n")
	if got := compare(); got != "=" {
		t.Errorf("flat command section: %s, want =", got)
	}
	env["PATCHGRID_ECOSYSTEM"] = "Debian"
	if got := compare(); got != "<" {
		t.Errorf("environment must beat the file: %s", got)
	}
	if got := compare("--ecosystem", "PyPI"); got != "=" {
		t.Errorf("flag must beat the environment: %s", got)
	}
	delete(env, "PATCHGRID_ECOSYSTEM")

	write("ecosystem: [unclosed\n")
	if code, _, errOut := runCLI(t, "", env, "version", "ecosystems"); code != exitUsage || !strings.Contains(errOut, "config.yaml") {
		t.Errorf("bad file: exit %d, %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "", env, "--config", "-", "version", "ecosystems"); code != exitOK {
		t.Errorf("--config - must skip the file: exit %d", code)
	}
	if code, _, errOut := runCLI(t, "", env, "--config", filepath.Join(xdg, "none.yaml"), "version", "ecosystems"); code != exitUsage || !strings.Contains(errOut, "none.yaml") {
		t.Errorf("a named file that is missing is an error: exit %d, %q", code, errOut)
	}
}

func TestGlobalFlags(t *testing.T) {
	env := &cliEnv{getenv: func(string) string { return "" }}
	rest, _, err := parseGlobal(env, []string{"--log-level", "debug", "run", "--endpoints", "3", "--log-format=json", "--", "--log-format", "x"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"run", "--endpoints", "3", "--", "--log-format", "x"}; !slices.Equal(rest, want) {
		t.Errorf("rest %q, want %q", rest, want)
	}
	if env.global.logFormat != "json" || env.global.logLevel != slog.LevelDebug || env.global.maxFeedAge != defaultMaxFeedAge {
		t.Errorf("global %+v", env.global)
	}
	for _, bad := range [][]string{{"--log-format", "xml", "run"}, {"--log-level", "loud", "run"}, {"--max-feed-age", "soon", "run"}, {"--bogus", "run"}, {"run", "--log-format"}} {
		if _, _, err := parseGlobal(&cliEnv{getenv: env.getenv}, bad); err == nil {
			t.Errorf("parseGlobal(%q) accepted", bad)
		}
	}
	if d, err := parseAge("1.5d"); err != nil || d.Hours() != 36 {
		t.Errorf("parseAge(1.5d) = %v, %v", d, err)
	}
}

// TestOneLogFormat: every command logs through env.logger: slog's text by
// default, JSON lines with --log-format json.
func TestOneLogFormat(t *testing.T) {
	var buf bytes.Buffer
	env := &cliEnv{stderr: &buf, getenv: func(string) string { return "" }}
	if _, _, err := parseGlobal(env, []string{"--log-format", "json", "serve"}); err != nil {
		t.Fatal(err)
	}
	env.logger(nil).Info("hello", "n", 1)
	env.logger(slog.LevelWarn).Info("dropped: below the command's minimum")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["msg"] != "hello" || line["n"] != 1.0 {
		t.Fatalf("json log %q: %v", buf.String(), err)
	}
	buf.Reset()
	env.global.logFormat = "text"
	env.logger(nil).Info("hello", "n", 1)
	if !strings.Contains(buf.String(), "level=INFO msg=hello n=1") {
		t.Errorf("text log %q", buf.String())
	}
	// The commands that used to differ (serve wrote JSON, run and scan text)
	// now all build their logger with env.logger.
	for _, f := range []string{"run.go", "serve.go", "scan.go", "ingest.go", "simulate.go", "refresh.go", "migrate.go", "feeds.go", "match.go"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(src, []byte("slog.NewTextHandler(env.stderr")) || bytes.Contains(src, []byte("slog.NewJSONHandler(env.stderr")) {
			t.Errorf("%s builds a log handler of its own: use env.logger", f)
		}
	}
}

func TestStaleFeedWarning(t *testing.T) {
	env := seededCLIEnv(t)
	// kpitest's newest advisory is a day old.
	env["PATCHGRID_MAX_FEED_AGE"] = "1h"
	code, _, errOut := runCLI(t, "", env, "export", "--format", "json")
	if code != exitOK || !strings.Contains(errOut, "loaded feeds are older than --max-feed-age") || !strings.Contains(errOut, "osv (1d0h)") {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	env["PATCHGRID_MAX_FEED_AGE"] = "60d" // kpitest's KEV entry is 41 days old
	if code, _, errOut := runCLI(t, "", env, "export", "--format", "json"); code != exitOK || strings.Contains(errOut, "older than") {
		t.Fatalf("fresh feeds warned: exit %d, stderr %s", code, errOut)
	}
}

func TestEcosystemsCLI(t *testing.T) {
	code, out, _ := runCLI(t, "", nil, "version", "ecosystems")
	if code != exitOK || !strings.Contains(out, "Debian ") || !strings.Contains(out, "PyPI ") || !strings.Contains(out, "dpkg") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, eco := range []string{"debian:12", "DEBIAN", "Debian:12"} {
		if code, out, errOut := runCLI(t, "", nil, "version", "compare", "--ecosystem", eco, "1:1.0", "2.0"); code != exitOK || out != ">\n" {
			t.Errorf("--ecosystem %s: exit %d %q %s", eco, code, out, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "", nil, "version", "compare", "--ecosystem", "debain", "1", "2"); code != exitUsage || !strings.Contains(errOut, "Debian") {
		t.Errorf("typo: exit %d, %s", code, errOut)
	}
}

func TestCompletion(t *testing.T) {
	for _, tt := range []struct {
		words []string
		want  []string
	}{
		{[]string{"exp"}, []string{"explain", "export"}},
		{[]string{"--log-format", "json", "fee"}, []string{"feeds"}},
		{[]string{"--log-f"}, []string{"--log-format"}},
		{[]string{"feeds", ""}, []string{"load", "status"}},
		{[]string{"export", "--for"}, []string{"--format"}},
		{[]string{"feeds", "load", "--onl"}, []string{"--online"}},
		{[]string{"version", "key", "--ecosystem", "Al"}, []string{"AlmaLinux", "Alpine"}},
		{[]string{"export", "--store", ""}, []string{"chdb", "clickhouse"}},
		{[]string{"export", "out"}, nil},
	} {
		code, out, _ := runCLI(t, "", nil, append([]string{completeCommand}, tt.words...)...)
		got := strings.Fields(out)
		if code != exitOK || !slices.Equal(got, tt.want) {
			t.Errorf("complete %q = %q, want %q", tt.words, got, tt.want)
		}
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, out, _ := runCLI(t, "", nil, "completion", sh)
		if code != exitOK || !strings.Contains(out, "patchgrid __complete") {
			t.Errorf("completion %s: exit %d", sh, code)
		}
		if path, err := exec.LookPath(sh); err == nil {
			cmd := exec.Command(path, "-n")
			cmd.Stdin = strings.NewReader(out)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", sh, err, b)
			}
		}
	}
	if code, _, _ := runCLI(t, "", nil, "completion", "tcsh"); code != exitUsage {
		t.Errorf("completion tcsh: exit %d", code)
	}

	// The bash script against the real binary.
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := filepath.Join(t.TempDir(), "patchgrid")
	if b, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	script := `source <(patchgrid completion bash); COMP_WORDS=(patchgrid feeds lo); COMP_CWORD=2; _patchgrid; printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command(bash, "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "load" {
		t.Errorf("bash completion of 'patchgrid feeds lo': %v %q", err, out)
	}
}

// TestExportArrowFormats: --format arrow writes an Arrow IPC file (what
// pyarrow.ipc.open_file reads), arrow-stream the IPC stream.
func TestExportArrowFormats(t *testing.T) {
	env := seededCLIEnv(t)
	dir := t.TempDir()
	file, stream := filepath.Join(dir, "f.arrow"), filepath.Join(dir, "f.arrows")
	if code, _, errOut := runCLI(t, "", env, "export", "--format", "arrow", "--out", file); code != exitOK {
		t.Fatalf("arrow: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", env, "export", "--format", "arrow-stream", "--out", stream); code != exitOK {
		t.Fatalf("arrow-stream: exit %d: %s", code, errOut)
	}
	b, _ := os.ReadFile(file)
	r, err := ipc.NewFileReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("--format arrow is not an Arrow IPC file: %v", err)
	}
	rows := 0
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		rows += int(rec.NumRows())
	}
	r.Close()
	if rows != 3 {
		t.Errorf("arrow file holds %d rows, want 3", rows)
	}
	sb, _ := os.ReadFile(stream)
	if bytes.HasPrefix(sb, []byte("ARROW1")) {
		t.Error("arrow-stream wrote a file")
	}
	if sr, err := ipc.NewReader(bytes.NewReader(sb)); err != nil {
		t.Errorf("arrow-stream: %v", err)
	} else {
		sr.Release()
	}
	// pyarrow, when this machine has it, is the reader the issue names.
	if py, err := exec.LookPath("python3"); err == nil && exec.Command(py, "-c", "import pyarrow").Run() == nil {
		out, err := exec.Command(py, "-c", "import sys, pyarrow.ipc as i; print(i.open_file(sys.argv[1]).read_all().num_rows)", file).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "3" {
			t.Errorf("pyarrow.ipc.open_file: %v %s", err, out)
		} else {
			t.Logf("pyarrow.ipc.open_file read the export: %s rows", strings.TrimSpace(string(out)))
		}
	}
}

// TestConfigLists: explicit feed locations in the file. A list sets a
// repeatable flag once per item and a comma-list flag to the joined items.
func TestConfigLists(t *testing.T) {
	cfg := &fileConfig{path: "config.yaml", values: map[string]any{
		"feeds": []any{"/top"},
		"run":   map[string]any{"feeds": []any{"/srv/advisories", "/srv/kev"}},
		"scan":  map[string]any{"path": []any{"/a", "/b"}},
	}}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var feeds listFlag
	fs.Var(&feeds, "feeds", "")
	if err := cfg.apply([]string{"run"}, fs.Lookup("feeds")); err != nil || !slices.Equal(feeds, listFlag{"/srv/advisories", "/srv/kev"}) {
		t.Errorf("run feeds %v, %v", feeds, err)
	}
	fs = flag.NewFlagSet("scan", flag.ContinueOnError)
	var paths stringList
	fs.Var(&paths, "path", "")
	if err := cfg.apply([]string{"scan"}, fs.Lookup("path")); err != nil || !slices.Equal(paths, stringList{"/a", "/b"}) {
		t.Errorf("scan paths %v, %v", paths, err)
	}
	fs = flag.NewFlagSet("simulate", flag.ContinueOnError)
	var other listFlag
	fs.Var(&other, "feeds", "")
	if err := cfg.apply([]string{"simulate"}, fs.Lookup("feeds")); err != nil || !slices.Equal(other, listFlag{"/top"}) {
		t.Errorf("top-level feeds %v, %v", other, err)
	}
}
