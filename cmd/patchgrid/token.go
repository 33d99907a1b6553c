package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/patchgrid/patchgrid/analytics/audit"
	"github.com/patchgrid/patchgrid/analytics/auth"
	"github.com/patchgrid/patchgrid/schemas"
)

const tokenUsage = `usage:
  patchgrid token create --role viewer|analyst|approver|admin --name NAME [--expires 90d] [--actor WHO]
  patchgrid token list [--format table|json]
  patchgrid token revoke ID [--actor WHO]`

// runToken is `patchgrid token ...`: API tokens (analytics/auth). The
// token is printed once, by create; the store keeps only its hash.
// On the embedded store, serve holds the data directory: stop it first, or
// use the API's /api/v1/tokens with an admin token.
func runToken(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, tokenUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	if sub == "-h" || sub == "--help" || sub == "help" {
		fmt.Fprintln(env.stdout, "API tokens: create (printed once, stored hashed), list, revoke. Roles: viewer < analyst < approver < admin (SECURITY.md).")
		fmt.Fprintln(env.stdout, tokenUsage)
		return exitOK
	}
	fs := flag.NewFlagSet("token "+sub, flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	var role, name, expires, actor, format string
	var id string
	switch sub {
	case "create":
		fs.StringVar(&role, "role", "", "viewer, analyst, approver or admin")
		fs.StringVar(&name, "name", "", "who or what holds the token (a person, grafana, ci)")
		fs.StringVar(&expires, "expires", "90d", "how long the token is valid: e.g. 90d, 2w, 12h (at most 366d)")
		fs.StringVar(&actor, "actor", "", "who creates it, for the audit trail (default: $USER)")
	case "list":
		fs.StringVar(&format, "format", "table", "table or json (JSON lines)")
	case "revoke":
		fs.StringVar(&actor, "actor", "", "who revokes it, for the audit trail (default: $USER)")
		// The id comes first (token revoke ID --actor WHO); flag parsing
		// stops at the first non-flag.
		if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
			id, args = args[0], args[1:]
		}
	default:
		fmt.Fprintf(env.stderr, "patchgrid token: unknown subcommand %q\n%s\n", sub, tokenUsage)
		return exitUsage
	}
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(env.stderr, "patchgrid token "+sub+": "+format+"\n", a...)
		return code
	}
	if sub == "revoke" && id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() != 0 {
		return fail(exitUsage, "unexpected arguments %v\n%s", fs.Args(), tokenUsage)
	}
	if actor == "" {
		actor = env.getenv("USER")
	}
	var r auth.Role
	var ttl time.Duration
	switch sub {
	case "create":
		var err error
		if r, err = auth.ParseRole(role); err != nil {
			return fail(exitUsage, "--role: %v", err)
		}
		if name == "" {
			return fail(exitUsage, "--name is required")
		}
		if ttl, err = parseSpan(expires); err != nil {
			return fail(exitUsage, "--expires %v", err)
		}
		if ttl > auth.MaxTTL {
			return fail(exitUsage, "--expires %s: at most 366d (a forgotten token must expire)", expires)
		}
	case "list":
		if format != "table" && format != "json" {
			return fail(exitUsage, "--format %q: want table or json", format)
		}
	case "revoke":
		if id == "" {
			return fail(exitUsage, "which token? give its id (from 'patchgrid token list')\n%s", tokenUsage)
		}
	}
	st, err := sf.open(ctx)
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	defer st.Close()
	if _, err := schemas.Migrate(ctx, st, env.logger(nil)); err != nil {
		return fail(exitFailure, "%v", err)
	}
	toks := auth.New(st, auth.Options{Audit: audit.New(st), CacheTTL: -1})
	switch sub {
	case "create":
		secret, tok, err := toks.Create(ctx, auth.CreateRequest{Name: name, Role: r, TTL: ttl, CreatedBy: actor})
		if err != nil {
			return fail(exitFailure, "%v", err)
		}
		// The token alone on stdout (scripts capture it); what it is on stderr.
		fmt.Fprintln(env.stdout, secret)
		fmt.Fprintf(env.stderr, "token %s for %q, role %s, expires %s. It is shown only now: store it as a secret.\n",
			tok.ID, tok.Name, tok.RoleName, tok.ExpiresAt.Format(time.RFC3339))
	case "list":
		list, err := toks.List(ctx)
		if err != nil {
			return fail(exitFailure, "%v", err)
		}
		now := time.Now()
		if format == "json" {
			enc := json.NewEncoder(env.stdout)
			for _, t := range list {
				if err := enc.Encode(struct {
					auth.Token
					State string `json:"state"`
				}{t, t.State(now)}); err != nil {
					return fail(exitFailure, "%v", err)
				}
			}
			return exitOK
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tSTATE\tCREATED\tEXPIRES\tCREATED BY")
		for _, t := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.RoleName, t.State(now),
				t.CreatedAt.Format(time.DateOnly), t.ExpiresAt.Format(time.DateOnly), t.CreatedBy)
		}
		if err := tw.Flush(); err != nil {
			return fail(exitFailure, "%v", err)
		}
	case "revoke":
		tok, err := toks.Revoke(ctx, id, actor)
		if err != nil {
			return fail(exitFailure, "%v", err)
		}
		fmt.Fprintf(env.stderr, "token %s (%q) revoked\n", tok.ID, tok.Name)
	}
	return exitOK
}
