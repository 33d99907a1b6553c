package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/schemas"
)

// exitAuditBroken is audit verify's exit code for a chain that does not
// hold: the command worked and found tampering (README "Exit codes").
const exitAuditBroken = 4

// runAudit is `patchgrid audit verify|export|head`: the hash-chained audit
// trail of decisions (analytics/audit).
func runAudit(ctx context.Context, env *cliEnv, args []string) int {
	usage := "usage: patchgrid audit verify [--expect-head SEQ:HASH] | export [--since SEQ] [--out FILE] | head"
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, usage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fmt.Fprintln(env.stdout, "The audit trail: an append-only, hash-chained log of policy versions, exceptions, plans, gate decisions, feed loads, refreshes and API token use.")
		fmt.Fprintln(env.stdout, usage)
		return exitOK
	}
	fs := flag.NewFlagSet("audit "+sub, flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	var (
		expectHead, out string
		since           uint64
	)
	switch sub {
	case "verify":
		fs.StringVar(&expectHead, "expect-head", "", "SEQ:HASH of a head recorded earlier (audit head): also catches removal of the newest entries")
	case "export":
		fs.Uint64Var(&since, "since", 1, "first entry (seq) to write")
		fs.StringVar(&out, "out", "", "write JSON lines to this file instead of stdout")
	case "head":
	default:
		fmt.Fprintf(env.stderr, "patchgrid audit: unknown subcommand %q\n%s\n", sub, usage)
		return exitUsage
	}
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(env.stderr, "patchgrid audit %s: unexpected arguments %q\n", sub, fs.Args())
		return exitUsage
	}
	var opt audit.VerifyOptions
	if expectHead != "" {
		seq, hash, ok := strings.Cut(expectHead, ":")
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || err != nil || n == 0 || len(hash) != 64 {
			fmt.Fprintf(env.stderr, "patchgrid audit verify: --expect-head %q: want SEQ:HASH as printed by 'patchgrid audit head'\n", expectHead)
			return exitUsage
		}
		opt.ExpectHeadSeq, opt.ExpectHeadHash = n, hash
	}
	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid audit %s: %v\n", sub, err)
		return exitFailure
	}
	defer st.Close()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid audit %s: %v\n", sub, err)
		return exitFailure
	}
	log := audit.New(st)
	switch sub {
	case "head":
		h, err := log.Head(ctx)
		if err != nil {
			fmt.Fprintf(env.stderr, "patchgrid audit head: %v\n", err)
			return exitFailure
		}
		if h.Seq == 0 {
			fmt.Fprintln(env.stdout, "the audit log is empty")
			return exitOK
		}
		fmt.Fprintf(env.stdout, "%d:%s\n", h.Seq, h.Hash)
	case "verify":
		rep, err := log.Verify(ctx, opt)
		if err != nil {
			fmt.Fprintf(env.stderr, "patchgrid audit verify: %v\n", err)
			return exitFailure
		}
		if rep.Broken != nil {
			fmt.Fprintf(env.stdout, "BROKEN at entry %d: %s\n(%d entries read)\n", rep.Broken.Seq, rep.Broken.Reason, rep.Entries)
			return exitAuditBroken
		}
		if rep.Entries == 0 {
			fmt.Fprintln(env.stdout, "ok: the audit log is empty")
			return exitOK
		}
		fmt.Fprintf(env.stdout, "ok: %d entries, chain intact; head %d:%s\n", rep.Entries, rep.Head.Seq, rep.Head.Hash)
	case "export":
		var w io.Writer = env.stdout
		if out != "" {
			f, err := os.Create(out)
			if err != nil {
				fmt.Fprintf(env.stderr, "patchgrid audit export: %v\n", err)
				return exitFailure
			}
			defer f.Close()
			w = f
		}
		n, err := log.Export(ctx, w, since)
		if err != nil {
			fmt.Fprintf(env.stderr, "patchgrid audit export: %v\n", err)
			return exitFailure
		}
		if out != "" {
			fmt.Fprintf(env.stderr, "patchgrid audit export: %d entries to %s\n", n, out)
		}
	}
	return exitOK
}
