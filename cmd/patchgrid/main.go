// Command patchgrid scans fleets, ingests inventories through Kafka into
// ClickHouse, matches them against advisories and reports exposure.
//
// Every flag of every subcommand can also be set as an environment variable
// PATCHGRID_<FLAG> (upper case, '-' becomes '_') or as a key of the
// configuration file ($XDG_CONFIG_HOME/patchgrid/config.yaml): a flag on the
// command line wins over the environment, which wins over the file. The
// conventions shared by every command (help, global flags, configuration,
// logging) live in cli.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit codes. They are part of the CLI contract (README "Exit codes").
const (
	exitOK       = 0
	exitFailure  = 1 // the command failed
	exitUsage    = 2 // bad flags or arguments
	exitFindings = 3 // the command worked and found exposure (run, match --fail-on)
)

// command is one subcommand. run gets the arguments after the subcommand
// name and returns an exit code.
type command struct {
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) int
}

// cliEnv is what every subcommand gets from main: its streams and the
// process environment, passed explicitly so tests can run commands in-process.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	// Set by dispatch.
	command string      // the command being run ("export")
	global  globalFlags // --log-format and the other global flags
	config  *fileConfig // the configuration file (empty when there is none)
	// collect, when set, makes parseFlags hand over the command's FlagSet
	// instead of parsing: help tests and shell completion list flags so.
	collect func(*flag.FlagSet)
}

func commands() map[string]command {
	return map[string]command{
		"run":        {"the whole pipeline on one machine: scan, simulate, Kafka, ClickHouse, match, report", runRun},
		"migrate":    {"apply schema migrations to the store", runMigrate},
		"version":    {"version keys, comparisons and the ecosystem list: 'version key', 'version compare', 'version ecosystems'", runVersion},
		"completion": {"shell completion script: 'completion bash', 'completion zsh', 'completion fish'", runCompletion},
		"feeds":      {"advisory and risk feeds: 'feeds load', 'feeds status'", runFeeds},
		"scan":       {"collect this machine's inventory (or an SBOM) and publish it to Kafka", runScan},
		"simulate":   {"publish a simulated fleet of endpoints to Kafka", runSimulate},
		"ingest":     {"consume inventories from Kafka into ClickHouse", runIngest},
		"match":      {"match packages (JSON lines on stdin) or the whole fleet against advisories", runMatch},
		"refresh":    {"bring exposure history and the KPI and risk tables up to date (match --fleet does it after matching)", runRefresh},
		"serve":      {"HTTP API for KPIs, findings, hosts and exports", runServe},
		"token":      {"API tokens: 'token create|list|revoke'", runToken},
		"export":     {"export findings with risk as arrow (IPC file), arrow-stream, parquet, csv or json", runExport},
		"explain":    {"explain why a host is or is not exposed to an advisory", runExplain},
		"audit":      {"the hash-chained audit trail: 'audit verify', 'audit export', 'audit head'", runAudit},
		"sql":        {"read-only SQL over the documented views, on either store", runSQL},
		"exception":  {"risk acceptance: 'exception request|approve|reject|revoke|list'", runException},
		"report":     {"the compliance report: one self-contained HTML file (--period 30d --out FILE)", runReport},
		"outcome":    {"deployment outcomes: 'outcome report' publishes JSON lines of outcomes to Kafka", runOutcome},
		"policy":     {"remediation policy as code: 'policy apply FILE.yaml', 'policy show', 'policy diff A B', 'policy history'", runPolicy},
		"plan":       {"remediation plans: 'plan create', 'plan list', 'plan show [ID] --by fix', 'plan export [ID] --format ...'", runPlan},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, env *cliEnv, args []string) int {
	cmds := commands()
	// Completion sees the command line as typed, global flags included.
	if len(args) > 0 && args[0] == completeCommand {
		return runComplete(ctx, env, args[1:])
	}
	args, showVersion, err := parseGlobal(env, args)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid: %v\n", err)
		return exitUsage
	}
	if showVersion {
		return printVersion(ctx, env)
	}
	if len(args) == 0 {
		usage(env.stderr, cmds)
		return exitUsage
	}
	if isHelp(args[0]) {
		if len(args) > 1 { // patchgrid help CMD [SUB]
			return dispatch(ctx, env, append(args[1:], "-h"))
		}
		usage(env.stdout, cmds)
		return exitOK
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "patchgrid: unknown command %q\n\n", args[0])
		usage(env.stderr, cmds)
		return exitUsage
	}
	env.command = args[0]
	// Commands with subcommands: help on the command itself is answered
	// here, so each of them need not.
	if subs, ok := subcommands[args[0]]; ok && len(args) > 1 && isHelp(args[1]) {
		printCommandHelp(env.stdout, args[0], subs)
		return exitOK
	}
	return c.run(ctx, env, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	width := 0
	for n := range cmds {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	fmt.Fprintln(w, "patchgrid: fleet vulnerability scanning and patch compliance analytics\n\nusage: patchgrid [global flags] <command> [flags]\n\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, cmds[n].summary)
	}
	fmt.Fprintf(w, `
global flags:
  --version             print the version, the commit and the age of the loaded feeds
  --log-format text|json  log format of every command (default text)
  --log-level LEVEL     debug, info (default), warn or error
  --config FILE         configuration file (default $XDG_CONFIG_HOME/patchgrid/config.yaml; - for none)
  --max-feed-age AGE    warn when the newest loaded feed record is older (default %s; 0: never)

'patchgrid <command> -h' lists a command's flags. Every flag can also be set
as PATCHGRID_<FLAG> or as a key of the configuration file (flag > variable >
file); a section named after a command holds keys for that command only.
`, "7d")
}

// parseFlags parses args into fs, then fills every flag not given on the
// command line from PATCHGRID_<FLAG>, then from the configuration file. It
// returns a usage exit code and false when parsing failed (the error is
// already printed) or help was asked for (printed on stdout, exit 0).
func parseFlags(env *cliEnv, fs *flag.FlagSet, args []string) (int, bool) {
	if env.collect != nil {
		env.collect(fs)
		return exitOK, false
	}
	fs.SetOutput(env.stderr)
	// Help is printed below and parse errors by flag itself; a command's
	// own usage text (positional arguments, modes) is kept for its own
	// later calls and shown in the help.
	own := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = own
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(env.stdout, fs, ownUsage(env, fs, own))
			return exitOK, false
		}
		fmt.Fprintf(env.stderr, "'patchgrid %s -h' lists its flags\n", fs.Name())
		return exitUsage, false
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	path := strings.Fields(fs.Name())
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		name := envName(f.Name)
		if v := env.getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s (flag --%s): %w", v, name, f.Name, err)
			}
			return
		}
		if err := env.config.apply(path, f); err != nil {
			envErr = fmt.Errorf("configuration file %s: key %s: %w", env.config.path, f.Name, err)
		}
	})
	if envErr != nil {
		fmt.Fprintf(env.stderr, "patchgrid %s: %v\n", fs.Name(), envErr)
		return exitUsage, false
	}
	return exitOK, true
}

// envName maps a flag name to its environment variable: data-dir → PATCHGRID_DATA_DIR.
func envName(flagName string) string {
	b := []byte("PATCHGRID_")
	for i := 0; i < len(flagName); i++ {
		c := flagName[i]
		switch {
		case c == '-' || c == '.':
			c = '_'
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}
