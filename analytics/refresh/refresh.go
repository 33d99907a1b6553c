// Package refresh keeps what analytics reads at fleet scale up to date:
// the materialized exposure history (host segments and exposures) and the
// snapshot tables behind the KPI and risk views. A match job writes
// findings per inventory; a refresh turns them into per-host history and
// precomputes the KPIs, so dashboards, the API and exports read a few
// precomputed rows. Tables and views: schemas/migrations/0005_snapshots.sql.
package refresh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// Mode selects what Refresh rewrites.
type Mode string

const (
	// Full rewrites the segments and exposures of every host.
	Full Mode = "full"
	// Incremental rewrites only hosts with scans received since the
	// previous refresh or with newly matched inventories, and, on every
	// host, advisories whose current record is new to exposure history.
	Incremental Mode = "incremental"
)

// Snapshots are the views of schemas/migrations/0005_snapshots.sql that a
// refresh copies from X_live into X_snapshot, in this order (finding_risk
// and host_risk read exposure_risk, the KPIs kpi_exposures; none reads
// another snapshot).
var Snapshots = []string{
	"kpi_mttr", "kpi_time_to_patch", "kpi_sla_compliance", "kpi_patch_coverage", "kpi_open_exposure",
	"kpi_remediation_rate", "kpi_exposure_window", "kpi_daily_trend", "finding_risk", "host_risk",
}

// Job brings exposure history, the KPI tables and the risk tables up
// to date with the scans and match results in Store.
type Job struct {
	Store store.Store
	// Log receives one line per step and per run. Default: slog.Default().
	Log *slog.Logger
}

// Stats is what one refresh did.
type Stats struct {
	RefreshID  string
	Mode       Mode
	Started    time.Time
	Finished   time.Time
	Watermark  time.Time // greatest scans.received_at seen
	Hosts      uint64    // hosts whose segments and exposures were rewritten
	Advisories uint64    // advisories rewritten on every other host
	Exposures  uint64    // exposure rows written, deletions included
}

// Run runs one refresh. It is idempotent, and a failed one leaves the
// previous tables readable: exposures change row by row under a version,
// and each snapshot table is replaced whole (ALTER ... REPLACE PARTITION) from a
// staging copy. Two refreshes must not run at once on one store.
func (r *Job) Run(ctx context.Context, mode Mode) (Stats, error) {
	if mode != Full && mode != Incremental {
		return Stats{}, fmt.Errorf("refresh: unknown mode %q (want full or incremental)", mode)
	}
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	now := time.Now().UTC()
	st := Stats{RefreshID: newRefreshID(now), Mode: mode, Started: now.Truncate(time.Second)}
	err := r.run(ctx, &st, log)
	st.Finished = time.Now().UTC().Truncate(time.Second)
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	// Recorded even when it failed; a failed run's watermark is not used.
	if rerr := r.Store.Insert(ctx, "refresh_runs", []string{"refresh_id", "mode", "started_at", "finished_at", "watermark", "hosts", "advisories", "exposures", "error"},
		[][]any{{st.RefreshID, string(mode), st.Started, st.Finished, st.Watermark, st.Hosts, st.Advisories, st.Exposures, errText}}); rerr != nil && err == nil {
		err = fmt.Errorf("refresh %s: recording the run: %w", st.RefreshID, rerr)
	}
	if err != nil {
		log.Error("refresh failed", "refresh", st.RefreshID, "mode", mode, "err", err)
		return st, err
	}
	log.Info("refresh", "refresh", st.RefreshID, "mode", mode, "hosts", st.Hosts, "advisories", st.Advisories,
		"exposure_rows", st.Exposures, "took", time.Since(now).Round(time.Millisecond))
	return st, nil
}

func (r *Job) run(ctx context.Context, st *Stats, log *slog.Logger) error {
	id := st.RefreshID
	// The version orders rewrites of one row: nanoseconds, so two
	// refreshes in one second still order.
	version := uint64(time.Now().UnixNano())
	var prev time.Time
	if st.Mode == Incremental {
		if err := queryOne(ctx, r.Store, sqlPreviousWatermark, nil, &prev); err != nil {
			return fmt.Errorf("refresh %s: previous watermark: %w", id, err)
		}
	}
	if err := queryOne(ctx, r.Store, sqlWatermark, nil, &st.Watermark); err != nil {
		return fmt.Errorf("refresh %s: watermark: %w", id, err)
	}
	var steps []refreshStep
	if st.Mode == Full {
		steps = append(steps,
			refreshStep{"snapshot hosts", sqlPendingHostsAll, []any{id}},
			refreshStep{"snapshot inventories", sqlPendingInventoriesAll, []any{id}},
			refreshStep{"snapshot advisories", sqlPendingAdvisoriesAll, []any{id}})
	} else {
		steps = append(steps,
			refreshStep{"snapshot inventories", sqlPendingInventoriesNew, []any{id}},
			refreshStep{"snapshot hosts", sqlPendingHostsNew, []any{id, prev.Add(-rescanMargin), id}},
			refreshStep{"snapshot advisories", sqlPendingAdvisoriesNew, []any{id}})
	}
	if err := r.exec(ctx, id, log, steps...); err != nil {
		return err
	}
	if err := queryOne(ctx, r.Store, sqlCountPending, []any{id, id}, &st.Hosts, &st.Advisories); err != nil {
		return fmt.Errorf("refresh %s: counting pending work: %w", id, err)
	}
	before, err := countExposureRows(ctx, r.Store, version)
	if err != nil {
		return fmt.Errorf("refresh %s: %w", id, err)
	}
	// Segmenting holds every scan, and exposing every (host, advisory), of
	// the hosts it works on in memory: a shard of hosts at a time keeps
	// that bounded.
	shards := max(1, (st.Hosts+hostsPerShard-1)/hostsPerShard)
	steps = steps[:0]
	for i := range shards {
		steps = append(steps, refreshStep{fmt.Sprintf("segment hosts, shard %d of %d", i+1, shards), sqlSegments, []any{version, id, shards, i}})
	}
	steps = append(steps, refreshStep{"delete stale segments", sqlDeleteStaleSegments, []any{version, version, id}})
	for i := range shards {
		steps = append(steps, refreshStep{fmt.Sprintf("expose hosts, shard %d of %d", i+1, shards), fmt.Sprintf(sqlExposures,
			"host_id IN (SELECT host_id FROM refresh_pending_hosts WHERE refresh_id = ?) AND cityHash64(host_id) % ? = ?", "1"),
			[]any{version, id, shards, i, id, shards, i, id, shards, i}})
	}
	if st.Mode == Incremental {
		steps = append(steps, refreshStep{"expose advisories", fmt.Sprintf(sqlExposures,
			"host_id NOT IN (SELECT host_id FROM refresh_pending_hosts WHERE refresh_id = ?)",
			"(source, advisory_id) IN (SELECT source, advisory_id FROM refresh_pending_advisories WHERE refresh_id = ?)"),
			[]any{version, id, id, id, id}})
	}
	steps = append(steps,
		refreshStep{"delete stale exposures", sqlDeleteStale, []any{version, version, id, id}},
		refreshStep{"mark inventories", sqlDoneInventories, []any{st.Started, id}},
		refreshStep{"mark advisories", sqlDoneAdvisories, []any{st.Started, id}},
		refreshStep{"record first loads", sqlAdvisoryKnown, nil},
	)
	if err := r.exec(ctx, id, log, steps...); err != nil {
		return err
	}
	after, err := countExposureRows(ctx, r.Store, version)
	if err != nil {
		return fmt.Errorf("refresh %s: %w", id, err)
	}
	st.Exposures = after - before
	// exposure_facts leaves out dims (kpi_exposures rebuilds them).
	if err := r.replace(ctx, id, "exposure_facts", "SELECT * EXCEPT (dims) FROM kpi_exposures_live", log); err != nil {
		return err
	}
	// Current ClickHouse reorders inner joins by estimated size, and for
	// finding_risk it picks the fan-out of every host's inventory findings
	// as a hash table (GBs at 10,000 hosts) over the open exposures it
	// should stream against. Servers that do not reorder lack the setting.
	var reorders uint64
	if err := queryOne(ctx, r.Store, "SELECT count() FROM system.settings WHERE name = 'query_plan_optimize_join_order_limit'", nil, &reorders); err != nil {
		return fmt.Errorf("refresh %s: reading settings: %w", id, err)
	}
	for _, name := range Snapshots {
		q := "SELECT * FROM " + name + "_live"
		if name == "finding_risk" && reorders > 0 {
			q += " SETTINGS query_plan_optimize_join_order_limit = 0"
		}
		if err := r.replace(ctx, id, name+"_snapshot", q, log); err != nil {
			return err
		}
	}
	for _, q := range sqlDropPending {
		if err := r.Store.Exec(ctx, q, id); err != nil {
			return fmt.Errorf("refresh %s: dropping pending rows: %w", id, err)
		}
	}
	return nil
}

func (r *Job) exec(ctx context.Context, id string, log *slog.Logger, steps ...refreshStep) error {
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		if err := r.Store.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("refresh %s: %s: %w", id, s.name, err)
		}
		log.Debug("refresh step", "refresh", id, "step", s.name, "took", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// replace recomputes table from query through a staging copy, then swaps
// the copy's contents in with one ALTER: readers see the old rows or the
// new ones, never a half-written table.
func (r *Job) replace(ctx context.Context, id, table, query string, log *slog.Logger) error {
	staging := table + "__" + stagingSuffix(id)
	t0 := time.Now()
	fail := func(err error) error {
		// A leftover staging table holds nothing anyone reads; the
		// next refresh of this id would drop it, so drop it now.
		_ = r.Store.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+staging)
		return fmt.Errorf("refresh %s: %s: %w", id, table, err)
	}
	stmts := []string{
		"DROP TABLE IF EXISTS " + staging,
		"CREATE TABLE " + staging + " AS " + table,
		"INSERT INTO " + staging + " " + query,
	}
	for _, q := range stmts {
		if err := r.Store.Exec(ctx, q); err != nil {
			return fail(err)
		}
	}
	// Current ClickHouse refuses REPLACE PARTITION from a source without
	// parts (allow_replace_partition_from_empty_source, unknown to older
	// servers): an empty result empties the table instead.
	var n uint64
	if err := queryOne(ctx, r.Store, "SELECT count() FROM "+staging, nil, &n); err != nil {
		return fail(err)
	}
	swap := "ALTER TABLE " + table + " REPLACE PARTITION tuple() FROM " + staging
	if n == 0 {
		swap = "TRUNCATE TABLE " + table
	}
	for _, q := range []string{swap, "DROP TABLE " + staging} {
		if err := r.Store.Exec(ctx, q); err != nil {
			return fail(err)
		}
	}
	log.Debug("refresh snapshot", "refresh", id, "table", table, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

type refreshStep struct {
	name string
	sql  string
	args []any
}

// rescanMargin is how far before the previous watermark an incremental
// refresh looks for received scans: received_at is stamped by the consumer
// before its batch is written, so a batch in flight during the previous
// refresh carries times just below that refresh's watermark.
const rescanMargin = time.Hour

// hostsPerShard bounds the hosts one exposure aggregation holds: with
// about 1,600 exposures per host over 90 days of the simulated fleet, 2,500
// hosts are about 4M groups, under a GB.
const hostsPerShard = 2500

func countExposureRows(ctx context.Context, s store.Store, version uint64) (uint64, error) {
	var n uint64
	if err := queryOne(ctx, s, "SELECT count() FROM exposures WHERE version = ?", []any{version}, &n); err != nil {
		return 0, fmt.Errorf("counting exposure rows: %w", err)
	}
	return n, nil
}

func queryOne(ctx context.Context, s store.Store, q string, args []any, dst ...any) error {
	rows, err := s.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return err
		}
	}
	return rows.Err()
}

func newRefreshID(now time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return now.Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// stagingSuffix makes a table-name-safe suffix of a refresh id.
func stagingSuffix(id string) string {
	out := make([]byte, 0, len(id))
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			out = append(out, c)
		}
	}
	return string(out)
}
