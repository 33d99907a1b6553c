package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// runVersion serves 'patchgrid version key', 'version compare' and
// 'version ecosystems'. (The build's own version is `patchgrid --version`.)
func runVersion(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		printCommandHelp(env.stderr, "version", subcommands["version"])
		return exitUsage
	}
	switch args[0] {
	case "key":
		return runVersionKey(ctx, env, args[1:])
	case "compare":
		return runVersionCompare(env, args[1:])
	case "ecosystems":
		return runVersionEcosystems(env, args[1:])
	default:
		fmt.Fprintf(env.stderr, "patchgrid version: unknown subcommand %q (want key, compare or ecosystems)\n", args[0])
		return exitUsage
	}
}

func versionFlags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("version "+name, flag.ContinueOnError)
	eco := fs.String("ecosystem", "", "OSV ecosystem in any case, e.g. Debian:12, alpine:v3.18, pypi (required; 'patchgrid version ecosystems' lists them)")
	return fs, eco
}

// runVersionEcosystems lists the ecosystems with their versioning scheme.
func runVersionEcosystems(env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("version ecosystems", flag.ContinueOnError)
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(env.stderr, "patchgrid version ecosystems: takes no arguments")
		return exitUsage
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ECOSYSTEM\tSCHEME")
	for _, e := range version.Ecosystems() {
		scheme, _ := version.Scheme(e)
		fmt.Fprintf(tw, "%s\t%s\n", e, scheme)
	}
	tw.Flush()
	fmt.Fprintln(env.stdout, "\nNames are matched in any case; a release may follow a colon (Debian:12, Alpine:v3.18, Ubuntu:22.04:LTS).")
	return exitOK
}

// Build identity, set at link time by the Makefile:
//
//	-ldflags "-X main.buildVersion=v1.2.3 -X main.buildCommit=abc123"
//
// Package variables because -X can set nothing else. Without them the
// Go toolchain's build info (module version, VCS revision) is used.
var buildVersion, buildCommit string

// buildIdentity is the version and commit of this binary.
func buildIdentity() (ver, commit, when string, modified bool) {
	ver, commit = buildVersion, buildCommit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if ver == "" {
			ver = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if commit == "" {
					commit = s.Value
				}
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if ver == "" {
		ver = "(devel)"
	}
	if commit == "" {
		commit = "unknown"
	}
	return ver, commit, when, modified
}

// printVersion is `patchgrid --version`: the build, then the age of the
// feeds in the configured store when one is there to read. It never
// creates a data directory, gives a server two seconds, and does not fail
// when no store is reachable: that is what it reports then.
func printVersion(ctx context.Context, env *cliEnv) int {
	ver, commit, when, modified := buildIdentity()
	fmt.Fprintf(env.stdout, "patchgrid %s\n", ver)
	line := "commit " + commit
	if when != "" {
		line += " (" + when
		if modified {
			line += ", modified"
		}
		line += ")"
	}
	fmt.Fprintln(env.stdout, line)
	fmt.Fprintf(env.stdout, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)

	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	fs.SetOutput(io.Discard)
	if _, ok := parseFlags(&cliEnv{stdout: io.Discard, stderr: io.Discard, getenv: env.getenv, config: env.config, global: env.global}, fs, nil); !ok {
		fmt.Fprintln(env.stdout, "feeds: store settings invalid (see 'patchgrid feeds status')")
		return exitOK
	}
	where := sf.backend
	if sf.backend == "chdb" {
		where = sf.dataDir
		exists, empty, err := dataDirState(sf.dataDir)
		if err != nil || !exists || empty {
			fmt.Fprintf(env.stdout, "feeds: none (no data in %s; 'patchgrid run' or 'patchgrid feeds load' fills it)\n", sf.dataDir)
			return exitOK
		}
	} else {
		where = sf.addr
	}
	cfg, err := sf.config()
	if err != nil {
		fmt.Fprintf(env.stdout, "feeds: store settings invalid (%v)\n", firstLine(err))
		return exitOK
	}
	cfg.DialTimeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := store.Open(ctx, cfg)
	if err != nil {
		fmt.Fprintf(env.stdout, "feeds: store %s not readable now (%v)\n", where, firstLine(err))
		return exitOK
	}
	defer st.Close()
	ages, err := feedAges(ctx, st)
	if err != nil || len(ages) == 0 {
		fmt.Fprintf(env.stdout, "feeds: none loaded in %s ('patchgrid feeds load' loads them)\n", where)
		return exitOK
	}
	fmt.Fprintf(env.stdout, "feeds in %s:\n", where)
	writeFeedAges(env.stdout, ages, time.Now())
	return exitOK
}

// firstLine shortens an error for a one-line report.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// runVersionKey writes "version<TAB>hexkey" for each line of stdin. A bad
// line gets "version<TAB>ERROR: reason" and the rest still run; the exit
// code then says that something failed.
func runVersionKey(ctx context.Context, env *cliEnv, args []string) int {
	fs, eco := versionFlags("key")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if *eco == "" || fs.NArg() != 0 {
		fmt.Fprintln(env.stderr, "patchgrid version key: want --ecosystem and no arguments; versions are read from stdin")
		return exitUsage
	}
	c, err := lookupTyped(*eco)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid version key: %v\n", err)
		return exitUsage
	}
	out := bufio.NewWriter(env.stdout)
	sc := bufio.NewScanner(env.stdin)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var key, hexKey []byte
	failed := 0
	for n := 0; sc.Scan(); n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			break
		}
		v := strings.TrimRight(sc.Text(), "\r")
		key, err = c.AppendKey(key[:0], v)
		out.WriteString(v)
		out.WriteByte('\t')
		if err != nil {
			failed++
			out.WriteString("ERROR: ")
			out.WriteString(err.Error())
		} else {
			hexKey = hex.AppendEncode(hexKey[:0], key)
			out.Write(hexKey)
		}
		out.WriteByte('\n')
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid version key: writing output: %v\n", err)
		return exitFailure
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid version key: reading stdin: %v\n", err)
		return exitFailure
	}
	if err := ctx.Err(); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid version key: %v\n", err)
		return exitFailure
	}
	if failed > 0 {
		fmt.Fprintf(env.stderr, "patchgrid version key: %d invalid versions\n", failed)
		return exitFailure
	}
	return exitOK
}

func runVersionCompare(env *cliEnv, args []string) int {
	fs, eco := versionFlags("compare")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if *eco == "" || fs.NArg() != 2 {
		fmt.Fprintln(env.stderr, "patchgrid version compare: want --ecosystem E A B")
		return exitUsage
	}
	c, err := lookupTyped(*eco)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid version compare: %v\n", err)
		return exitUsage
	}
	r, err := c.Compare(fs.Arg(0), fs.Arg(1))
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid version compare: %v\n", err)
		return exitFailure
	}
	op := "="
	switch {
	case r < 0:
		op = "<"
	case r > 0:
		op = ">"
	}
	fmt.Fprintln(env.stdout, op)
	return exitOK
}

// lookupTyped is version.Lookup for an ecosystem a person typed: any case.
func lookupTyped(eco string) (version.Comparator, error) {
	canon, err := version.Canonical(eco)
	if err != nil {
		return nil, err
	}
	return version.Lookup(canon)
}
