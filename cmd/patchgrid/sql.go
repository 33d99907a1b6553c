package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/sqlaccess"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// serveURLFile is the file in the embedded store's data dir where `serve`
// records its base URL while it holds the store, so that `sql` can route
// its queries through it (chDB allows one process per data dir).
const serveURLFile = "serve.url"

// runSQL is `patchgrid sql [QUERY]`: read-only SQL for compliance officers
// (analytics/sqlaccess). Without QUERY it reads statements from stdin, each
// ending with ';' at the end of a line.
func runSQL(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("sql", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	format := fs.String("format", "table", "output: table, csv or json (JSON lines)")
	maxRows := fs.Int("max-rows", sqlaccess.DefaultMaxRows, fmt.Sprintf("most rows per statement (at most %d); more are cut and reported", sqlaccess.MaxMaxRows))
	timeout := fs.Duration("timeout", sqlaccess.DefaultTimeout, "longest a statement may run (the engine's max_execution_time)")
	maxMemMB := fs.Int64("max-memory-mb", sqlaccess.DefaultMaxMemory>>20, "memory a statement may use, in MiB (the engine's max_memory_usage)")
	views := fs.Bool("views", false, "list the documented views (schemas/VIEWS.md), one line each, and exit")
	apiURL := fs.String("api", "", "run through a patchgrid serve at this base URL instead of opening the store (default: the serve that holds --data-dir, if any)")
	tokenFile := fs.String("token-file", "", "file holding the API token for --api (else $PATCHGRID_TOKEN)")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if *views {
		for _, v := range schemas.DocumentedViews() {
			fmt.Fprintf(env.stdout, "%-32s %s\n", v.Name, v.Summary)
		}
		return exitOK
	}
	if !slices.Contains(sqlaccess.Formats, *format) {
		fmt.Fprintf(env.stderr, "patchgrid sql: --format %q: want one of %s\n", *format, strings.Join(sqlaccess.Formats, ", "))
		return exitUsage
	}
	var stmts []string
	switch fs.NArg() {
	case 0:
		var err error
		if stmts, err = readStatements(env.stdin); err != nil {
			fmt.Fprintf(env.stderr, "patchgrid sql: stdin: %v\n", err)
			return exitFailure
		}
		if len(stmts) == 0 {
			fmt.Fprintln(env.stderr, "patchgrid sql: no statement given (pass QUERY, or statements ending with ';' on stdin); 'patchgrid sql --views' lists the views")
			return exitUsage
		}
	case 1:
		stmts = []string{fs.Arg(0)}
	default:
		fmt.Fprintln(env.stderr, "patchgrid sql: give one QUERY (quote it), or statements on stdin")
		return exitUsage
	}
	checked := make([]sqlaccess.Statement, len(stmts))
	for i, q := range stmts {
		s, err := sqlaccess.Check(q)
		if err != nil {
			fmt.Fprintf(env.stderr, "patchgrid sql: statement %d: %v\n", i+1, err)
			return exitFailure
		}
		checked[i] = s
	}
	opt := sqlaccess.Options{MaxRows: *maxRows, Timeout: *timeout, MaxMemory: *maxMemMB << 20}

	run, closeFn, err := sqlRunner(ctx, env, sf, *apiURL, *tokenFile, opt)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid sql: %v\n", err)
		return exitFailure
	}
	defer closeFn()
	for i, s := range checked {
		res, err := run(ctx, stmts[i], s)
		if err != nil {
			fmt.Fprintf(env.stderr, "patchgrid sql: statement %d: %v\n", i+1, err)
			return exitFailure
		}
		if len(checked) > 1 && *format == "table" && i > 0 {
			fmt.Fprintln(env.stdout)
		}
		if err := sqlaccess.Write(env.stdout, res, *format); err != nil {
			fmt.Fprintf(env.stderr, "patchgrid sql: write: %v\n", err)
			return exitFailure
		}
		if res.Truncated && *format != "table" {
			fmt.Fprintf(env.stderr, "patchgrid sql: statement %d: result cut at %d rows (--max-rows)\n", i+1, len(res.Rows))
		}
	}
	return exitOK
}

type sqlRun func(ctx context.Context, text string, s sqlaccess.Statement) (*sqlaccess.Result, error)

// sqlRunner opens the store, or, when --api is given or the embedded store
// is held by a running `serve` that advertised itself, routes through that
// serve's API.
func sqlRunner(ctx context.Context, env *cliEnv, sf *storeFlags, apiURL, tokenFile string, opt sqlaccess.Options) (sqlRun, func(), error) {
	remote := func(url string) (sqlRun, func(), error) {
		token := env.getenv("PATCHGRID_TOKEN")
		if tokenFile != "" {
			b, err := os.ReadFile(tokenFile)
			if err != nil {
				return nil, nil, fmt.Errorf("--token-file: %w", err)
			}
			token = strings.TrimSpace(string(b))
		}
		client := &http.Client{Timeout: opt.Timeout + 30*time.Second}
		return func(ctx context.Context, text string, _ sqlaccess.Statement) (*sqlaccess.Result, error) {
			return sqlaccess.Remote(ctx, client, url, token, sqlaccess.Request{
				Query: text, MaxRows: opt.MaxRows, TimeoutSeconds: int(opt.Timeout / time.Second),
			})
		}, func() {}, nil
	}
	if apiURL != "" {
		return remote(apiURL)
	}
	st, err := sf.open(ctx)
	if err != nil {
		if sf.backend == "chdb" {
			if b, rerr := os.ReadFile(filepath.Join(sf.dataDir, serveURLFile)); rerr == nil {
				url := strings.TrimSpace(string(b))
				fmt.Fprintf(env.stderr, "patchgrid sql: %s is held by a running serve; querying through %s\n", sf.dataDir, url)
				return remote(url)
			}
		}
		return nil, nil, err
	}
	return func(ctx context.Context, _ string, s sqlaccess.Statement) (*sqlaccess.Result, error) {
		res, err := s.Run(ctx, st, opt)
		var se *store.Error
		if errors.As(err, &se) && se.Err != nil {
			err = se.Err // the statement is the user's own: do not echo it back
		}
		return res, err
	}, func() { st.Close() }, nil
}

// readStatements splits r into statements, each ending with ';' at the end
// of a line (the last one may omit it).
func readStatements(r io.Reader) ([]string, error) {
	var (
		out []string
		cur strings.Builder
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			if s := strings.TrimSpace(cur.String()); s != ";" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out, nil
}
