package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/ingest/feeds"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// feedAge is how current one loaded feed is.
type feedAge struct {
	source string
	newest time.Time // newest record (modified, KEV date added, EPSS score date); zero when unknown
	loaded time.Time // last load; zero when never
}

// age is how old the feed's data is: its newest record, else its last load.
func (f feedAge) age(now time.Time) time.Duration {
	t := f.newest
	if t.Unix() <= 0 {
		t = f.loaded
	}
	if t.Unix() <= 0 {
		return -1
	}
	return now.Sub(t)
}

// feedAges reads the loaded feeds of st (feeds.Status, the numbers of
// `patchgrid feeds status`).
func feedAges(ctx context.Context, st store.Store) ([]feedAge, error) {
	status, err := feeds.Status(ctx, st)
	if err != nil {
		return nil, err
	}
	out := make([]feedAge, 0, len(status))
	for _, s := range status {
		out = append(out, feedAge{source: s.Source, newest: s.NewestModified, loaded: s.LastLoad})
	}
	return out, nil
}

// humanAge prints a duration the way people read ages: 3d4h, 5h12m, 40s.
func humanAge(d time.Duration) string {
	switch {
	case d < 0:
		return "unknown"
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return d.Round(time.Second).String()
}

// writeFeedAges writes one line per feed.
func writeFeedAges(w io.Writer, ages []feedAge, now time.Time) {
	for _, f := range ages {
		line := fmt.Sprintf("  %-16s newest record %s old", f.source, humanAge(f.age(now)))
		if f.loaded.Unix() > 0 {
			line += fmt.Sprintf(", loaded %s ago", humanAge(now.Sub(f.loaded)))
		}
		fmt.Fprintln(w, line)
	}
}

// warnStaleFeeds logs a warning naming every feed whose data is older than
// maxAge (--max-feed-age; 0 turns the check off). A store without feeds
// gets a warning too: every verdict would then be "not exposed".
func warnStaleFeeds(ctx context.Context, log *slog.Logger, st store.Store, maxAge time.Duration, now time.Time) {
	if maxAge <= 0 {
		return
	}
	ages, err := feedAges(ctx, st)
	if err != nil {
		log.Debug("feed ages unavailable", "err", err)
		return
	}
	if len(ages) == 0 {
		log.Warn("no advisory feeds are loaded: run `patchgrid feeds load` (or `patchgrid run`)")
		return
	}
	var stale []string
	for _, f := range ages {
		if a := f.age(now); a > maxAge {
			stale = append(stale, fmt.Sprintf("%s (%s)", f.source, humanAge(a)))
		}
	}
	if len(stale) > 0 {
		log.Warn("loaded feeds are older than --max-feed-age: results miss newer advisories; refresh with `patchgrid feeds load --online` (or `patchgrid feeds load --from ...`)",
			"max_feed_age", humanAge(maxAge), "stale", strings.Join(stale, ", "))
	}
}

// dataDirState says whether the embedded store's data directory holds
// anything: read commands refuse a missing or empty one instead of
// creating it (a mistyped --data-dir) and then failing on missing tables.
func dataDirState(dir string) (exists, empty bool, err error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return false, true, nil
	}
	if err != nil {
		return false, false, err
	}
	return true, len(entries) == 0, nil
}

// readCommands read a store that other commands fill: on a missing or
// empty data directory they stop with the command that fills it, and the
// ones that judge exposure warn about stale feeds (true).
var readCommands = map[string]bool{
	"match": true, "explain": true, "export": true, "serve": true, "report": true,
	"sql": false, "refresh": false, "feeds status": false,
	"audit verify": false, "audit export": false, "audit head": false, "exception list": false,
}

const fillHint = "'patchgrid run' fills it (or 'patchgrid feeds load', 'patchgrid ingest' and 'patchgrid match --fleet')"

// checkDataDir refuses, for read commands on the embedded store, a data
// directory that does not exist or is empty (chDB would create it and
// every query would then fail on a missing table).
func (f *storeFlags) checkDataDir() error {
	if _, ok := readCommands[f.cmd]; !ok || f.backend != "chdb" {
		return nil
	}
	exists, empty, err := dataDirState(f.dataDir)
	switch {
	case err != nil:
		return fmt.Errorf("data directory %s: %w", f.dataDir, err)
	case !exists:
		return fmt.Errorf("no patchgrid data: data directory %s does not exist (check --data-dir or $PATCHGRID_DATA_DIR); %s", f.dataDir, fillHint)
	case empty:
		return fmt.Errorf("no patchgrid data: data directory %s is empty; %s", f.dataDir, fillHint)
	}
	return nil
}

// warnStale warns, for the commands that judge exposure, when the loaded
// feeds are older than --max-feed-age.
func (f *storeFlags) warnStale(ctx context.Context, st store.Store) {
	if f.env == nil || !readCommands[f.cmd] {
		return
	}
	warnStaleFeeds(ctx, f.env.logger(nil), st, f.env.global.maxFeedAge, time.Now())
}
