package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patchgrid/patchgrid/ingest/feeds"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/version"
)

// runFeeds serves 'patchgrid feeds load' and 'patchgrid feeds status'.
func runFeeds(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, "usage: patchgrid feeds load --from DIR|FILE|URL [--from ...] [--online]\n       patchgrid feeds status")
		return exitUsage
	}
	switch args[0] {
	case "load":
		return runFeedsLoad(ctx, env, args[1:])
	case "status":
		return runFeedsStatus(ctx, env, args[1:])
	}
	fmt.Fprintf(env.stderr, "patchgrid feeds: unknown subcommand %q (want load or status)\n", args[0])
	return exitUsage
}

// listFlag collects a repeatable flag; from the environment it takes a
// comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func versionLookup(eco string) (feed.Comparator, error) { return version.Lookup(eco) }

func runFeedsLoad(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("feeds load", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	var from listFlag
	fs.Var(&from, "from", "feed location: a directory, a file (.json, .yaml, .jsonl, .csv, .zip, .tar.gz, .gz) or an http(s) URL; repeatable")
	online := fs.Bool("online", false, "also load the official feeds: OSV exports of --osv-ecosystems, CISA KEV and FIRST EPSS")
	osvEcos := listFlag(nil)
	fs.Var(&osvEcos, "osv-ecosystems", "OSV ecosystems --online fetches (comma-separated; default "+strings.Join(feeds.DefaultOSVEcosystems, ",")+")")
	cacheDir := fs.String("cache-dir", defaultCacheDir(env), "where downloaded feeds are cached (with their ETag / Last-Modified)")
	quiet := fs.Bool("quiet", false, "log warnings only (no progress)")
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(env.stderr, "patchgrid feeds load: unexpected arguments %q (use --from)\n", fs.Args())
		return exitUsage
	}
	if *online {
		ecos := []string(osvEcos)
		if len(ecos) == 0 {
			ecos = feeds.DefaultOSVEcosystems
		}
		from = append(from, feeds.OnlineURLs(ecos)...)
	}
	if len(from) == 0 {
		fmt.Fprintln(env.stderr, "patchgrid feeds load: nothing to load: give --from or --online")
		return exitUsage
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelWarn
	}
	log := env.logger(level)

	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid feeds load: %v\n", err)
		return exitFailure
	}
	defer st.Close()
	if _, err := schemas.Migrate(ctx, st, log); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid feeds load: %v\n", err)
		return exitFailure
	}
	all, errs := loadFeeds(ctx, st, *cacheDir, from, log)
	// Audit trail: every source loaded, before the results are printed.
	if err := recordFeedLoads(ctx, st, env, all); err != nil {
		errs = append(errs, err)
	}
	var rejected []feeds.Rejection
	for _, err := range errs {
		var rej *feeds.RejectedError
		if errors.As(err, &rej) {
			rejected = append(rejected, rej.Inputs...)
			continue
		}
		fmt.Fprintf(env.stderr, "patchgrid feeds load: %v\n", err)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tLOCATION\tRECORDS\tLOADED\tUPDATED\tUNCHANGED\tWITHDRAWN\tSKIPPED\tSECONDS")
	for _, s := range all {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\n", s.Source, s.Location, s.Records, s.Loaded, s.Updated,
			s.Unchanged, s.Withdrawn, s.Skipped, s.Finished.Sub(s.Started).Seconds())
	}
	tw.Flush()
	// Inputs refused whole are listed under the table: the rest loaded,
	// but the exit status says the load is incomplete.
	if len(rejected) > 0 {
		fmt.Fprintln(env.stdout)
		tw = tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REJECTED INPUT\tREASON")
		for _, r := range rejected {
			fmt.Fprintf(tw, "%s\t%s\n", r.Name, r.Reason)
		}
		tw.Flush()
		fmt.Fprintf(env.stderr, "patchgrid feeds load: %d input(s) rejected whole, the rest loaded\n", len(rejected))
	}
	if len(errs) > 0 || len(rejected) > 0 {
		return exitFailure
	}
	return exitOK
}

func runFeedsStatus(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("feeds status", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	st, err := sf.open(ctx)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid feeds status: %v\n", err)
		return exitFailure
	}
	defer st.Close()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid feeds status: %v\n", err)
		return exitFailure
	}
	status, err := feeds.Status(ctx, st)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid feeds status: %v\n", err)
		return exitFailure
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tRECORDS\tWITHDRAWN\tNEWEST\tLAST LOAD\tWRITTEN\tSKIPPED\tLOCATION\tERROR")
	day := func(t time.Time) string {
		if t.Unix() <= 0 {
			return "-"
		}
		return t.UTC().Format(time.DateOnly)
	}
	for _, s := range status {
		last := "-"
		if s.LastLoad.Unix() > 0 {
			last = s.LastLoad.UTC().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Source, s.Records, s.Withdrawn, day(s.NewestModified), last,
			s.LastWritten, s.LastSkipped, s.LastLocation, s.LastError)
	}
	tw.Flush()
	return exitOK
}

// defaultCacheDir is $PATCHGRID_CACHE, else ~/.cache/patchgrid.
func defaultCacheDir(env *cliEnv) string {
	if c := env.getenv("PATCHGRID_CACHE"); c != "" {
		return c
	}
	if h := env.getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "patchgrid")
	}
	return filepath.Join(".patchgrid", "cache")
}

// loadFeeds loads each location (a URL is fetched into cacheDir first). A
// location that fails is reported and the others still load. Inputs
// refused whole (a failed download, a hostile or unreadable file) come
// back as *feeds.RejectedError; store failures and cancellation as other
// errors.
func loadFeeds(ctx context.Context, st store.Store, cacheDir string, from []string, log *slog.Logger) ([]feeds.Summary, []error) {
	fetcher := &feeds.Fetcher{CacheDir: cacheDir}
	loader := &feeds.Loader{Store: st, Lookup: versionLookup, Log: log}
	var all []feeds.Summary
	var errs []error
	for _, loc := range from {
		path := loc
		if feeds.IsURL(loc) {
			p, fresh, err := fetcher.Fetch(ctx, loc)
			if err != nil {
				if ctx.Err() != nil {
					errs = append(errs, err)
					break
				}
				log.Warn("feeds: input rejected", "url", loc, "reason", err)
				errs = append(errs, &feeds.RejectedError{Location: loc, Inputs: []feeds.Rejection{{Name: loc, Reason: err.Error()}}})
				continue
			}
			log.Info("feeds: fetched", "url", loc, "file", p, "downloaded", fresh)
			path = p
		}
		sums, err := loader.Load(ctx, path)
		all = append(all, sums...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", loc, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	return all, errs
}
