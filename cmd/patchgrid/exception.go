package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/exception"
	"github.com/patchgrid/patchgrid/analytics/policy"
	"github.com/patchgrid/patchgrid/schemas"
)

const exceptionUsage = `usage:
  patchgrid exception request --advisory ID (--host HOST | --group SELECTOR | --package NAME)
                              --owner O --reason R [--control C] --expires 30d --requester WHO
  patchgrid exception approve ID --approver WHO
  patchgrid exception reject ID --approver WHO [--reason R]
  patchgrid exception revoke ID --actor WHO [--reason R]
  patchgrid exception list [--status S] [--advisory ID] [--expiring 14d] [--format table|json]`

// runException is `patchgrid exception ...`: risk acceptance
// (analytics/exception), every change recorded in the audit trail.
func runException(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, exceptionUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fmt.Fprintln(env.stdout, "Exceptions (risk acceptance): request, approve (never by the requester), reject, revoke and list; approved, unexpired exceptions mark findings accepted.")
		fmt.Fprintln(env.stdout, exceptionUsage)
		return exitOK
	}
	fs := flag.NewFlagSet("exception "+sub, flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	var (
		req                      exception.Request
		expires, approver, actor string
		reason, status, format   string
		expiring                 string
	)
	needID := true
	switch sub {
	case "request":
		needID = false
		fs.StringVar(&req.Advisory, "advisory", "", "advisory id or CVE id the exception accepts")
		fs.StringVar(&req.Host, "host", "", "scope: one host (host id or hostname)")
		fs.StringVar(&req.Group, "group", "", "scope: hosts matching a label selector, e.g. ring=prod,owner=web,hostname=web-*")
		fs.StringVar(&req.Package, "package", "", "scope: an installed package name, on every host")
		fs.StringVar(&req.Owner, "owner", "", "who owns the accepted risk")
		fs.StringVar(&req.Reason, "reason", "", "why the risk is accepted")
		fs.StringVar(&req.CompensatingControl, "control", "", "the compensating control in place")
		fs.StringVar(&req.Requester, "requester", "", "who asks")
		fs.StringVar(&expires, "expires", "", "how long it lasts: e.g. 30d, 2w, 12h (capped by the policy, default 90d)")
	case "approve", "reject":
		fs.StringVar(&approver, "approver", "", "who decides (never the requester)")
		if sub == "reject" {
			fs.StringVar(&reason, "reason", "", "why")
		}
	case "revoke":
		fs.StringVar(&actor, "actor", "", "who revokes it")
		fs.StringVar(&reason, "reason", "", "why")
	case "list":
		needID = false
		fs.StringVar(&status, "status", "", "only this status: requested, approved, rejected, expired, revoked")
		fs.StringVar(&req.Advisory, "advisory", "", "only this advisory or CVE id")
		fs.StringVar(&expiring, "expiring", "", "only approved exceptions expiring within this, e.g. 14d")
		fs.StringVar(&format, "format", "table", "table or json (JSON lines)")
	default:
		fmt.Fprintf(env.stderr, "patchgrid exception: unknown subcommand %q\n%s\n", sub, exceptionUsage)
		return exitUsage
	}
	// The id comes first (exception approve ID --approver WHO); flag
	// parsing stops at the first non-flag, so take it off before.
	var id string
	if needID && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if needID && id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() != 0 {
		fmt.Fprintf(env.stderr, "patchgrid exception %s: unexpected arguments %q\n", sub, fs.Args())
		return exitUsage
	}
	if needID && id == "" {
		fmt.Fprintf(env.stderr, "patchgrid exception %s: which exception? (give its id, e.g. EX-0123456789ab)\n", sub)
		return exitUsage
	}
	var err error
	if sub == "request" {
		if req.ExpiresIn, err = parseSpan(expires); err != nil {
			fmt.Fprintf(env.stderr, "patchgrid exception request: --expires: %v\n", err)
			return exitUsage
		}
	}
	var filter exception.Filter
	if sub == "list" {
		if status != "" {
			if filter.Status, err = exception.ParseStatus(status); err != nil {
				fmt.Fprintf(env.stderr, "patchgrid exception list: --status: %v\n", err)
				return exitUsage
			}
		}
		if expiring != "" {
			if filter.ExpiringWithin, err = parseSpan(expiring); err != nil {
				fmt.Fprintf(env.stderr, "patchgrid exception list: --expiring: %v\n", err)
				return exitUsage
			}
		}
		if format != "table" && format != "json" {
			fmt.Fprintf(env.stderr, "patchgrid exception list: --format %q: want table or json\n", format)
			return exitUsage
		}
		filter.Advisory = req.Advisory
	}

	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid exception %s: %v\n", sub, err)
		return exitFailure
	}
	defer st.Close()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid exception %s: %v\n", sub, err)
		return exitFailure
	}
	// The active policy's exceptions.max_duration caps expiries (issue 14).
	book := exception.New(st, audit.New(st), exception.Config{Cap: func(ctx context.Context) (time.Duration, error) {
		return policy.ExceptionCap(ctx, st)
	}})
	var ex exception.Exception
	switch sub {
	case "request":
		ex, err = book.Request(ctx, req)
	case "approve":
		ex, err = book.Approve(ctx, id, approver)
	case "reject":
		ex, err = book.Reject(ctx, id, approver, reason)
	case "revoke":
		ex, err = book.Revoke(ctx, id, actor, reason)
	case "list":
		var list []exception.Exception
		if list, err = book.List(ctx, filter); err == nil {
			err = writeExceptions(env, list, format)
		}
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid exception %s: %v\n", sub, err)
		if errors.Is(err, exception.ErrInvalid) {
			return exitUsage
		}
		return exitFailure
	}
	switch sub {
	case "request":
		fmt.Fprintln(env.stdout, ex.ID)
	case "approve", "reject", "revoke":
		fmt.Fprintf(env.stdout, "%s %s\n", ex.ID, ex.Status)
	}
	return exitOK
}

func writeExceptions(env *cliEnv, list []exception.Exception, format string) error {
	if format == "json" {
		enc := json.NewEncoder(env.stdout)
		for _, e := range list {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tADVISORY\tSCOPE\tOWNER\tREQUESTER\tAPPROVER\tEXPIRES")
	for _, e := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\t%s\t%s\t%s\t%s\n", e.ID, e.Status, e.Advisory, e.Scope, e.Host+e.Package+e.Selector,
			e.Owner, e.Requester, e.Approver, e.ExpiresAt.Format(time.DateOnly))
	}
	return tw.Flush()
}
