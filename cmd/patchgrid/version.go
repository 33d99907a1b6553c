package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"strings"

	"github.com/patchgrid/patchgrid/schemas/version"
)

// runVersion serves 'patchgrid version key' and 'patchgrid version compare'.
func runVersion(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, "usage: patchgrid version key --ecosystem E  (versions on stdin)\n       patchgrid version compare --ecosystem E A B")
		return exitUsage
	}
	switch args[0] {
	case "key":
		return runVersionKey(ctx, env, args[1:])
	case "compare":
		return runVersionCompare(env, args[1:])
	default:
		fmt.Fprintf(env.stderr, "patchgrid version: unknown subcommand %q (want key or compare)\n", args[0])
		return exitUsage
	}
}

func versionFlags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("version "+name, flag.ContinueOnError)
	eco := fs.String("ecosystem", "", "OSV ecosystem, e.g. Debian:12, Alpine:v3.18, PyPI (required)")
	return fs, eco
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
	c, err := version.Lookup(*eco)
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
	c, err := version.Lookup(*eco)
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
