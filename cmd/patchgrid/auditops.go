package main

import (
	"context"
	"fmt"

	"github.com/patchgrid/patchgrid/analytics/refresh"
	"github.com/patchgrid/patchgrid/ingest/feeds"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// The operations that change what every figure is computed from — feed
// loads and refreshes — are recorded in the audit trail wherever they run
// (feeds load, refresh, match --fleet, run), so the trail shows which
// advisory data and which refresh a report's numbers came from.

// recordFeedLoads appends one feed.load entry per source and location
// loaded, its summary as the state after (a load that failed is recorded
// with its error: it may have written part of the source).
func recordFeedLoads(ctx context.Context, st store.Store, env *cliEnv, sums []feeds.Summary) error {
	for _, s := range sums {
		detail := fmt.Sprintf("%s: %d records: %d new, %d updated, %d unchanged, %d skipped, %d withdrawn",
			s.Location, s.Records, s.Loaded, s.Updated, s.Unchanged, s.Skipped, s.Withdrawn)
		if s.Err != "" {
			detail += "; failed: " + s.Err
		}
		if err := recordDecision(ctx, st, env, "feed.load", "feed:"+s.Source, nil, s, detail); err != nil {
			return err
		}
	}
	return nil
}

// recordRefresh appends the refresh entry of one refresh run.
func recordRefresh(ctx context.Context, st store.Store, env *cliEnv, rs refresh.Stats) error {
	return recordDecision(ctx, st, env, "refresh", "refresh:"+rs.RefreshID, nil, rs,
		fmt.Sprintf("%s refresh: %d hosts, %d advisories, %d exposure rows", rs.Mode, rs.Hosts, rs.Advisories, rs.Exposures))
}
