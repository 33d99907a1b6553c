package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/patchgrid/patchgrid/analytics/refresh"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// Goals of issue 16 for refreshes after the KPI fleet's full refresh.
const (
	incrementalCeilingS = 10 // one more day of scans for the whole fleet
)

// measureRefreshDays adds a day of scans to the KPI fleet after its full
// refresh and times the incremental refresh that follows, twice: a day of
// pure heartbeats (every host rescans its latest inventory: the goal is 0
// exposure rows written), then a day in which every host rescans and one
// host in ten rolls back to its first inventory (an inventory already
// matched, so matching has nothing new and the refresh alone is timed).
func measureRefreshDays(ctx context.Context, st store.Store, log *slog.Logger, out *StepOutput) error {
	job := &refresh.Job{Store: st, Log: quiet(log)}
	for i, day := range []struct {
		name, key, sql string
	}{
		{"heartbeat day", "heartbeat_day", nextDayScans(false)},
		{"day of scans, 10% changed", "scan_day", nextDayScans(true)},
	} {
		if err := st.Exec(ctx, day.sql, i+1); err != nil {
			return fmt.Errorf("%s: writing scans: %w", day.name, err)
		}
		t0 := time.Now()
		rs, err := job.Run(ctx, refresh.Incremental)
		if err != nil {
			return fmt.Errorf("%s: incremental refresh: %w", day.name, err)
		}
		d := time.Since(t0)
		log.Info("incremental refresh", "day", day.name, "took", d.Round(time.Millisecond), "hosts", rs.Hosts, "resegmented", rs.Resegmented,
			"exposed_hosts", rs.ExposedHosts, "exposure_rows", rs.Exposures, "segment_rows", rs.Segments, "rewritten_hosts", rs.RewrittenHosts)
		note := fmt.Sprintf("%d hosts rescanned (%d segmented anew from all their scans), %d with exposures recomputed, %d with base rows rewritten; %d exposure rows and %d segment rows written; %d of %d snapshot tables unchanged, not copied",
			rs.Hosts, rs.Resegmented, rs.ExposedHosts, rs.RewrittenHosts, rs.Exposures, rs.Segments, len(rs.Unchanged), len(refresh.Snapshots))
		// Which phase or snapshot the time went to, as for the full refresh.
		out.Info[day.key+"_refresh_steps"] = refreshSteps(rs.Steps)
		out.Metrics = append(out.Metrics,
			ratio(Metric{Name: "incremental refresh after a " + day.name, Value: d.Seconds(), Unit: "s", Better: "lower", Note: note},
				"ceiling: the goal, 10 s", incrementalCeilingS))
		if i == 0 {
			out.Metrics = append(out.Metrics, Metric{Name: "exposure rows written by a heartbeat day", Value: float64(rs.Exposures),
				Unit: "rows", Better: "lower", Note: "goal: 0 (an open exposure's last_seen and scan count are read from the host's latest segment)"})
		}
	}
	return nil
}

// nextDayScans is a bench fixture: one scan per host, a day after its
// latest scan, received now, with the latest scan's inventory; with
// changed, hosts whose hash falls in one tenth take their first scan's
// inventory instead. The placeholder makes scan ids unique.
func nextDayScans(changed bool) string {
	inv, heartbeat := "l.inventory_hash", "1"
	if changed {
		inv = "if(cityHash64(l.host_id) % 10 = 0, f.first_inventory, l.inventory_hash)"
		heartbeat = "toUInt8(cityHash64(l.host_id) % 10 != 0)"
	}
	return `INSERT INTO scans (host_id, scan_id, scanned_at, received_at, hostname, os_id, os_version, os_pretty,
    os_ecosystem, kernel_running, kernels_installed, inventory_hash, heartbeat, package_count, owner, ring, criticality,
    internet_facing, tags, maintenance_window, warnings, schema_version)
SELECT l.host_id, concat(l.scan_id, '-next-', toString(?)), l.scanned_at + toIntervalDay(1), now(), l.hostname, l.os_id, l.os_version,
    l.os_pretty, l.os_ecosystem, l.kernel_running, l.kernels_installed, ` + inv + `, ` + heartbeat + `, l.package_count, l.owner, l.ring,
    l.criticality, l.internet_facing, l.tags, l.maintenance_window, l.warnings, l.schema_version
FROM (SELECT * FROM scans FINAL ORDER BY host_id, scanned_at DESC, scan_id DESC LIMIT 1 BY host_id) AS l
INNER JOIN (SELECT host_id, argMin(inventory_hash, scanned_at) AS first_inventory FROM scans GROUP BY host_id) AS f ON f.host_id = l.host_id`
}
