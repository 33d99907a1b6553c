// Command patchgrid scans fleets, ingests inventories through Kafka into
// ClickHouse, matches them against advisories and reports exposure.
//
// Every flag of every subcommand can also be set as an environment variable
// PATCHGRID_<FLAG> (upper case, '-' becomes '_'); a flag on the command line
// wins over the environment.
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
}

func commands() map[string]command {
	return map[string]command{
		"run":      {"the whole pipeline on one machine: scan, simulate, Kafka, ClickHouse, match, report", runRun},
		"migrate":  {"apply schema migrations to the store", runMigrate},
		"version":  {"version keys and comparisons: 'version key', 'version compare'", runVersion},
		"feeds":    {"advisory and risk feeds: 'feeds load', 'feeds status'", runFeeds},
		"scan":     {"collect this machine's inventory (or an SBOM) and publish it to Kafka", runScan},
		"simulate": {"publish a simulated fleet of endpoints to Kafka", runSimulate},
		"ingest":   {"consume inventories from Kafka into ClickHouse", runIngest},
		"match":    {"match packages (JSON lines on stdin) or the whole fleet against advisories", runMatch},
		"refresh":  {"bring exposure history and the KPI and risk tables up to date (match --fleet does it after matching)", runRefresh},
		"serve":    {"HTTP API for KPIs, findings, hosts and exports", runServe},
		"export":   {"export findings with risk as arrow, parquet, csv or json", runExport},
		"explain":  {"explain why a host is or is not exposed to an advisory", runExplain},
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
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stderr, cmds)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "patchgrid: unknown command %q\n\n", args[0])
		usage(env.stderr, cmds)
		return exitUsage
	}
	return c.run(ctx, env, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: patchgrid <command> [flags]\n\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nEvery flag can also be set as PATCHGRID_<FLAG>. 'patchgrid <command> -h' lists a command's flags.")
}

// parseFlags parses args into fs, then fills every flag not given on the
// command line from PATCHGRID_<FLAG>. It returns a usage exit code and false
// when parsing failed (the error is already printed).
func parseFlags(env *cliEnv, fs *flag.FlagSet, args []string) (int, bool) {
	fs.SetOutput(env.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		name := envName(f.Name)
		if v := env.getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s (flag -%s): %w", v, name, f.Name, err)
			}
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
