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
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/progress"
	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/store/membudget"
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
// refresh copies whole from X_live into X_snapshot, in this order, after
// the per-host base rows behind kpi_exposures and finding_risk
// (0026_incremental_snapshots.sql) and the group tables (groupTables):
// host_risk reads exposure_risk, the KPIs kpi_exposures or the groups; no
// snapshot reads another.
var Snapshots = []string{
	"kpi_mttr", "kpi_time_to_patch", "kpi_sla_compliance", "kpi_patch_coverage", "kpi_open_exposure",
	"kpi_remediation_rate", "kpi_exposure_window", "kpi_daily_trend", "host_risk",
	// Compliance posture (0019_posture.sql): reads finding_risk, and
	// finding_exceptions for the exceptions in force.
	"compliance_posture", "compliance_posture_trend",
	// Deployment KPIs (0015_deploy_kpis.sql): outcomes, action states and
	// kpi_exposures; no snapshot.
	"kpi_deploy_failures", "kpi_deploy_stage_success", "kpi_deploy_test_pass", "kpi_deploy_time_to_verify",
	"kpi_deploy_still_exposed", "kpi_deploy_regressions", "kpi_deploy_plans",
}

// Job brings exposure history, the KPI tables and the risk tables up
// to date with the scans and match results in Store.
type Job struct {
	Store store.Store
	// Log receives one line per step and per run. Default: slog.Default().
	Log *slog.Logger
	// Memory is what one of its segment, exposure and per-host snapshot
	// statements may use (each works on one shard of hosts). Default:
	// membudget's.
	Memory membudget.Budget
	// FleetMemory is what one copy of a fleet-wide KPI snapshot may use
	// (those aggregate every exposure at once, so they are not sharded).
	// Zero: Memory, as a shard (see fleetMemory).
	FleetMemory membudget.Budget
	// HostsPerShard bounds the hosts one segment or exposure statement
	// works on. Default hostsPerShard.
	HostsPerShard uint64
	// SnapshotHostsPerShard bounds the hosts one copy of a per-host
	// snapshot (perHostSnapshots) or one write of base rows (baseRows)
	// works on. Default snapshotHostsPerShard.
	SnapshotHostsPerShard uint64
	// ProgressEvery is the interval of progress lines (hosts or tables
	// done, per second, ETA) during a phase that lasts longer. Default
	// progress.DefaultEvery; negative: none.
	ProgressEvery time.Duration
	// DeferSnapshots writes exposures and the tables kpi_exposures and
	// finding_risk read, and leaves the group tables (groupTables) and the
	// KPI snapshot tables (Snapshots) as they were: for a caller that
	// refreshes again before anything reads them (`patchgrid run`, whose
	// automation stage plans from finding_risk and then refreshes after
	// its rescans; its first refresh's snapshots were a fifth of the run,
	// read by no one). The run is recorded with refresh_runs.snapshots =
	// 0, so that the KPIs' "now" stays that of the refresh that wrote
	// them.
	DeferSnapshots bool
}

// Stats is what one refresh did.
type Stats struct {
	RefreshID string
	Mode      Mode
	Started   time.Time
	Finished  time.Time
	Watermark time.Time // greatest scans.received_at seen
	Hosts     uint64    // hosts whose segments were recomputed
	// Resegmented are the hosts (of Hosts) whose segments were recomputed
	// from all their scans: every host in a full refresh; in an
	// incremental one, those sqlResegment finds. The others' latest
	// segment was continued with their new scans.
	Resegmented uint64
	Advisories  uint64 // advisories recomputed on every other host
	// ExposedHosts are the hosts whose exposures were recomputed: in an
	// incremental refresh, those whose segments changed other than by
	// rescans of their latest inventory, or that ran a newly matched
	// inventory.
	ExposedHosts uint64
	Exposures    uint64 // exposure_spans rows written, deletions included
	Segments     uint64 // host_segments rows written, deletions included
	// RewrittenHosts are the hosts whose exposure_base and
	// finding_risk_base rows were rewritten: every host in a full refresh
	// (and in the first refresh that writes them); in an incremental one,
	// those whose exposures, latest inventory, attributes, staleness,
	// end-of-life exposure or exceptions changed, or that are exposed to
	// an advisory that changed.
	RewrittenHosts uint64
	// Unchanged are the snapshots (of Snapshots) the refresh left as they
	// were, their inputs unchanged since they were written
	// (baseOnlySnapshots).
	Unchanged []string
	// version orders the rows this refresh wrote (refresh_runs.version).
	version uint64
	// Steps is the time of each phase and of each snapshot table, in
	// order (also logged in one line at the end). Not in the audit
	// record: it is a measurement, not what the refresh decided.
	Steps []StepTime `json:"-"`
}

// StepTime is how long one phase or one snapshot table of a refresh took.
type StepTime struct {
	Name string
	Took time.Duration
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
	if rerr := r.Store.Insert(ctx, "refresh_runs", []string{"refresh_id", "mode", "started_at", "finished_at", "watermark", "hosts", "advisories", "exposures", "error",
		"exposed_hosts", "segments", "layout", "rewritten_hosts", "version", "snapshots"},
		[][]any{{st.RefreshID, string(st.Mode), st.Started, st.Finished, st.Watermark, st.Hosts, st.Advisories, st.Exposures, errText,
			st.ExposedHosts, st.Segments, uint8(3), st.RewrittenHosts, st.version, !r.DeferSnapshots}}); rerr != nil && err == nil {
		err = fmt.Errorf("refresh %s: recording the run: %w", st.RefreshID, rerr)
	}
	if err != nil {
		log.Error("refresh failed", "refresh", st.RefreshID, "mode", mode, "err", err)
		return st, err
	}
	log.Info("refresh", "refresh", st.RefreshID, "mode", st.Mode, "hosts", st.Hosts, "resegmented", st.Resegmented, "advisories", st.Advisories,
		"exposed_hosts", st.ExposedHosts, "exposure_rows", st.Exposures, "segment_rows", st.Segments, "rewritten_hosts", st.RewrittenHosts,
		"unchanged_snapshots", len(st.Unchanged), "took", time.Since(now).Round(time.Millisecond))
	log.Info("refresh steps", stepAttrs(st.Steps)...)
	return st, nil
}

// stepAttrs makes one log line's attributes of the steps' times: which
// phase or snapshot dominates a slow refresh, without Debug logging.
func stepAttrs(steps []StepTime) []any {
	out := make([]any, 0, 2*len(steps))
	for _, s := range steps {
		out = append(out, s.Name, s.Took.Round(10*time.Millisecond))
	}
	return out
}

// timed appends the time since t0 to st.Steps under name.
func (st *Stats) timed(name string, t0 time.Time) {
	st.Steps = append(st.Steps, StepTime{Name: name, Took: time.Since(t0)})
}

func (r *Job) run(ctx context.Context, st *Stats, log *slog.Logger) error {
	id := st.RefreshID
	// The version orders rewrites of one row: nanoseconds, so two
	// refreshes in one second still order.
	version := uint64(time.Now().UnixNano())
	st.version = version
	var prev time.Time
	if st.Mode == Incremental {
		// Exposure rows of refreshes before exposure_spans (0018) are
		// gone: the first refresh after it starts over.
		var runs uint64
		if err := queryOne(ctx, r.Store, sqlLayoutRuns, nil, &runs); err != nil {
			return fmt.Errorf("refresh %s: previous runs: %w", id, err)
		}
		if runs == 0 {
			log.Info("refresh: no previous refresh of exposure spans; refreshing in full", "refresh", id)
			st.Mode = Full
		} else if err := queryOne(ctx, r.Store, sqlPreviousWatermark, nil, &prev); err != nil {
			return fmt.Errorf("refresh %s: previous watermark: %w", id, err)
		}
	}
	if err := queryOne(ctx, r.Store, sqlWatermark, nil, &st.Watermark); err != nil {
		return fmt.Errorf("refresh %s: watermark: %w", id, err)
	}
	eng, err := r.engineSettings(ctx, id)
	if err != nil {
		return err
	}
	t0 := time.Now()
	var steps []refreshStep
	if st.Mode == Full {
		steps = append(steps,
			refreshStep{"snapshot hosts", sqlPendingHostsAll, []any{id}, 0},
			refreshStep{"snapshot inventories", sqlPendingInventoriesAll, []any{id}, 0},
			refreshStep{"snapshot advisories", sqlPendingAdvisoriesAll, []any{id}, 0})
	} else {
		steps = append(steps,
			refreshStep{"snapshot inventories", sqlPendingInventoriesNew, []any{id}, 0},
			refreshStep{"snapshot hosts", sqlPendingHostsNew, []any{id, prev.Add(-rescanMargin), id}, 0},
			refreshStep{"snapshot advisories", sqlPendingAdvisoriesNew, []any{id}, 0})
	}
	if err := r.exec(ctx, id, log, nil, steps...); err != nil {
		return err
	}
	if err := queryOne(ctx, r.Store, sqlCountPending, []any{id, id}, &st.Hosts, &st.Advisories); err != nil {
		return fmt.Errorf("refresh %s: counting pending work: %w", id, err)
	}
	st.timed("pending", t0)
	t0 = time.Now()
	// This refresh's staging tables: the pending hosts' segments as
	// recomputed, and the hosts whose exposures are recomputed.
	suffix := stagingSuffix(id)
	tables := strings.NewReplacer("{segments}", "refresh_segments__"+suffix, "{expose}", "refresh_expose__"+suffix,
		"{exposing}", "refresh_exposing__"+suffix, "{rewrite}", "refresh_rewrite__"+suffix,
		"{hosts}", "refresh_hosts__"+suffix, "{advisories}", "refresh_advisories__"+suffix,
		"{xexposures}", "refresh_xexposures__"+suffix, "{xfindings}", "refresh_xfindings__"+suffix,
		"{latest}", "refresh_latest__"+suffix, "{resegment}", "refresh_resegment__"+suffix)
	staging := []string{"refresh_segments__" + suffix, "refresh_expose__" + suffix, "refresh_exposing__" + suffix,
		"refresh_rewrite__" + suffix, "refresh_hosts__" + suffix, "refresh_advisories__" + suffix,
		"refresh_xexposures__" + suffix, "refresh_xfindings__" + suffix, "refresh_latest__" + suffix, "refresh_resegment__" + suffix}
	defer func() {
		for _, t := range staging {
			if err := r.Store.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+t); err != nil {
				log.Warn("refresh: dropping a staging table", "refresh", id, "table", t, "err", err)
			}
		}
	}()
	if err := r.exec(ctx, id, log, nil,
		refreshStep{"create staging tables", tables.Replace("CREATE TABLE {segments} ENGINE = MergeTree ORDER BY (host_id, seg_idx) EMPTY AS SELECT * FROM host_segments"), nil, 0},
		refreshStep{"create staging tables", tables.Replace("CREATE TABLE {expose} (host_id String) ENGINE = MergeTree ORDER BY host_id"), nil, 0},
		refreshStep{"create staging tables", tables.Replace("CREATE TABLE {exposing} (state_key UInt64, advisory_key UInt64) ENGINE = MergeTree ORDER BY state_key"), nil, 0},
		refreshStep{"create staging tables", tables.Replace("CREATE TABLE {rewrite} (host_id String) ENGINE = MergeTree ORDER BY host_id"), nil, 0},
		refreshStep{"create staging tables", tables.Replace("CREATE TABLE {hosts} AS host_facts"), nil, 0},
		refreshStep{"create staging tables", tables.Replace("CREATE TABLE {advisories} AS advisory_facts"), nil, 0},
		refreshStep{"create staging tables", tables.Replace("CREATE TABLE {xexposures} AS exposure_exceptions_snapshot"), nil, 0},
		refreshStep{"create staging tables", tables.Replace("CREATE TABLE {xfindings} AS finding_exceptions_snapshot"), nil, 0},
		refreshStep{"create staging tables", tables.Replace("CREATE TABLE {latest} ENGINE = MergeTree ORDER BY host_id EMPTY AS SELECT * FROM host_segments"), nil, 0},
		refreshStep{"create staging tables", tables.Replace("CREATE TABLE {resegment} (host_id String) ENGINE = MergeTree ORDER BY host_id"), nil, 0},
	); err != nil {
		return err
	}
	// Segmenting holds every scan, and exposing every (host, advisory), of
	// the hosts it works on in memory: a shard of hosts at a time keeps
	// that bounded. Shards are ranges of host_id, so that each reads only
	// its hosts' granules of scans (ordered by host_id) rather than every
	// scan once per shard.
	perShard := r.HostsPerShard
	if perShard == 0 {
		perShard = hostsPerShard
	}
	if steps, st.Resegmented, err = r.segmentSteps(ctx, id, st.Mode, tables, prev, perShard, st.Hosts, log); err != nil {
		return err
	}
	if st.Mode == Full {
		steps = append(steps, refreshStep{"hosts to expose", tables.Replace(sqlExposeAll), []any{id}, 0})
	} else {
		steps = append(steps, refreshStep{"hosts to expose", tables.Replace(sqlExposeChanged), []any{id, id}, 0})
	}
	steps = append(steps, refreshStep{"write segments", tables.Replace(sqlWriteSegments) + eng.noMerge, []any{version, id}, 0})
	if err := r.exec(ctx, id, log, r.meter(log, "refresh segments", "hosts", st.Hosts), steps...); err != nil {
		return err
	}
	if err := queryOne(ctx, r.Store, tables.Replace("SELECT count() FROM {expose}"), nil, &st.ExposedHosts); err != nil {
		return fmt.Errorf("refresh %s: counting hosts to expose: %w", id, err)
	}
	st.timed("segments", t0)
	t0 = time.Now()
	shards := max(1, (st.ExposedHosts+perShard-1)/perShard)
	// Shards are ranges of host_id, so that each reads only its hosts'
	// granules of exposure_spans and host_segments (ordered by host_id)
	// rather than scanning every stored exposure once per shard.
	bounds, err := r.shardBounds(ctx, id, tables.Replace("{expose}"), nil, shards, st.ExposedHosts)
	if err != nil {
		return err
	}
	// What the hosts' states expose is worked out once for every shard.
	exposed := tables.Replace("host_id IN (SELECT host_id FROM {expose})")
	steps = append(steps[:0], refreshStep{"states to expose",
		tables.Replace("INSERT INTO {exposing} (state_key, advisory_key)\n") + fmt.Sprintf(sqlExposing, exposed, "1"), nil, 0})
	for i := range shards {
		cond := shardCond(exposed, bounds, int(i))
		steps = append(steps, refreshStep{fmt.Sprintf("expose hosts, shard %d of %d", i+1, shards),
			fmt.Sprintf(sqlSpans, cond, tables.Replace(fmt.Sprintf(sqlShardExposing, cond)), cond) + eng.noMerge, []any{version}, shardSize(st.ExposedHosts, shards, i)})
	}
	if st.Mode == Incremental {
		hosts := tables.Replace("host_id NOT IN (SELECT host_id FROM {expose})")
		advisories := "(source, advisory_id) IN (SELECT source, advisory_id FROM refresh_pending_advisories WHERE refresh_id = ?)"
		steps = append(steps, refreshStep{"expose advisories", fmt.Sprintf(sqlSpans, hosts, fmt.Sprintf(sqlExposing, hosts, advisories), hosts+" AND "+advisories) + eng.noMerge,
			[]any{version, id, id}, 0})
	}
	steps = append(steps,
		refreshStep{"mark inventories", sqlDoneInventories, []any{st.Started, id}, 0},
		refreshStep{"mark advisories", sqlDoneAdvisories, []any{st.Started, id}, 0},
		refreshStep{"record first loads", sqlAdvisoryKnown, nil, 0},
	)
	if err := r.exec(ctx, id, log, r.meter(log, "refresh exposures", "hosts", st.ExposedHosts), steps...); err != nil {
		return err
	}
	if err := queryOne(ctx, r.Store, "SELECT (SELECT count() FROM exposure_spans WHERE version = ?), (SELECT count() FROM host_segments WHERE version = ?)",
		[]any{version, version}, &st.Exposures, &st.Segments); err != nil {
		return fmt.Errorf("refresh %s: counting rows written: %w", id, err)
	}
	st.timed("exposures", t0)
	t0 = time.Now()
	if err := r.baseRows(ctx, st, tables, version, eng, log); err != nil {
		return err
	}
	st.timed("base_rows", t0)
	if r.DeferSnapshots {
		log.Info("refresh: KPI snapshots left for the next refresh", "refresh", id)
		return r.dropPending(ctx, id)
	}
	// The per-host snapshots are copied a range of hosts at a time (as
	// exposures are): each copy holds only its hosts' rows in its joins and
	// sorts, whatever the size of the fleet.
	var hosts uint64
	if err := queryOne(ctx, r.Store, "SELECT count() FROM "+snapshotHosts, nil, &hosts); err != nil {
		return fmt.Errorf("refresh %s: counting the fleet's hosts: %w", id, err)
	}
	perSnapshot := r.snapshotHostsPerShard()
	shards = max(1, (hosts+perSnapshot-1)/perSnapshot)
	if bounds, err = r.shardBounds(ctx, id, snapshotHosts, nil, shards, hosts); err != nil {
		return err
	}
	byHost := func(q string) []string {
		out := make([]string, len(bounds)+1)
		for i := range out {
			out[i] = fmt.Sprintf(q, shardCond("1", bounds, i))
		}
		return out
	}
	if err := r.groups(ctx, st, version, eng, byHost, log); err != nil {
		return err
	}
	unchanged, inputs, err := r.snapshotInputs(ctx, id)
	if err != nil {
		return err
	}
	m := r.meter(log, "refresh snapshots", "tables", uint64(len(Snapshots)))
	defer m.Stop()
	for _, name := range Snapshots {
		if unchanged[name] {
			st.Unchanged = append(st.Unchanged, name)
			m.Add(1)
			continue
		}
		where := ""
		if perHostSnapshots[name] {
			where = " WHERE %s"
		}
		q := "SELECT * FROM " + name + "_live" + where + " SETTINGS " + snapshotBlocks
		qs, budget := []string{q}, r.fleetMemory()
		if perHostSnapshots[name] {
			qs, budget = byHost(q), r.Memory
		}
		t0 = time.Now()
		if err := r.replace(ctx, id, name+"_snapshot", qs, budget, log, m); err != nil {
			return err
		}
		st.timed(name, t0)
		if fp, ok := inputs[name]; ok {
			// After the swap: a row that is missing (the process died
			// between the two) only makes the next refresh copy again.
			if err := r.Store.Insert(ctx, "snapshot_inputs", []string{"snapshot", "fp", "refresh_id", "written_at"},
				[][]any{{name, fp, id, time.Now().UTC()}}); err != nil {
				return fmt.Errorf("refresh %s: recording the inputs of %s_snapshot: %w", id, name, err)
			}
		}
	}
	if len(st.Unchanged) > 0 {
		log.Debug("refresh: snapshots whose inputs did not change, left as they were", "refresh", id, "snapshots", st.Unchanged)
	}
	return r.dropPending(ctx, id)
}

// segmentSteps are a refresh's steps that stage the segments of its n
// pending hosts, and how many of them are segmented from all their scans:
// every one in a full refresh. An incremental one finds the hosts whose
// stored segments may have missed a scan (sqlResegment) and segments only
// those from all their scans, perShard hosts at a time; every other
// host's latest segment is continued with the scans after it
// (sqlStageTail), tailShardFactor times as many hosts at a time. A day of
// rescans then reads each host's new scans, not its whole history: at
// 100,000 hosts × 90 days, 100,000 scans, not 9M.
func (r *Job) segmentSteps(ctx context.Context, id string, mode Mode, tables *strings.Replacer, prev time.Time, perShard, n uint64, log *slog.Logger) (steps []refreshStep, full uint64, err error) {
	find := []refreshStep{{"hosts to resegment", tables.Replace(sqlResegmentAll), []any{id}, 0}}
	if mode == Incremental {
		since := prev.Add(-rescanMargin)
		find = []refreshStep{
			{"latest segments", tables.Replace(sqlStageLatest), []any{id}, 0},
			{"hosts to resegment", tables.Replace(sqlResegment), []any{id, since, since}, 0},
		}
	}
	if err := r.exec(ctx, id, log, nil, find...); err != nil {
		return nil, 0, err
	}
	if err := queryOne(ctx, r.Store, tables.Replace("SELECT count() FROM {resegment}"), nil, &full); err != nil {
		return nil, 0, fmt.Errorf("refresh %s: counting hosts to resegment: %w", id, err)
	}
	resegment := tables.Replace("host_id IN (SELECT host_id FROM {resegment})")
	if steps, err = r.shardSteps(ctx, id, "segment hosts", tables.Replace("{resegment}"), resegment, full, perShard,
		func(cond string) string { return tables.Replace(fmt.Sprintf(sqlStageSegments, cond)) }); err != nil {
		return nil, 0, err
	}
	tail, err := r.shardSteps(ctx, id, "continue segments",
		tables.Replace("(SELECT host_id FROM {latest} WHERE host_id NOT IN (SELECT host_id FROM {resegment}))"), "1",
		n-min(full, n), tailShardFactor*perShard,
		func(cond string) string { return tables.Replace(fmt.Sprintf(sqlStageTail, cond)) })
	if err != nil {
		return nil, 0, err
	}
	return append(steps, tail...), full, nil
}

// shardSteps makes one step per shard of the n hosts of from (a table or
// subquery with a column host_id), perShard hosts at a time: stmt of the
// condition all restricted to the shard's range of host_id.
func (r *Job) shardSteps(ctx context.Context, id, name, from, all string, n, perShard uint64, stmt func(cond string) string) ([]refreshStep, error) {
	if n == 0 {
		return nil, nil
	}
	shards := (n + perShard - 1) / perShard
	bounds, err := r.shardBounds(ctx, id, from, nil, shards, n)
	if err != nil {
		return nil, err
	}
	steps := make([]refreshStep, 0, shards)
	for i := range shards {
		steps = append(steps, refreshStep{fmt.Sprintf("%s, shard %d of %d", name, i+1, shards),
			stmt(shardCond(all, bounds, int(i))), nil, shardSize(n, shards, i)})
	}
	return steps, nil
}

// snapshotInputs fingerprints the inputs of baseOnlySnapshots: unchanged
// are those whose fingerprint is the one stored when their table was last
// written, inputs every current one, to store once a table is written.
func (r *Job) snapshotInputs(ctx context.Context, id string) (unchanged map[string]bool, inputs map[string]uint64, err error) {
	views := make([]string, len(baseOnlySnapshots))
	for i, name := range baseOnlySnapshots {
		views[i] = "'" + name + "_live'"
	}
	groups := make([]string, len(groupTables))
	for i, g := range groupTables {
		groups[i] = "'" + g.live + "'"
	}
	rows, err := r.Store.Query(ctx, fmt.Sprintf(sqlSnapshotInputs, strings.Join(views, ", "), strings.Join(groups, ", ")))
	if err != nil {
		return nil, nil, fmt.Errorf("refresh %s: fingerprinting the snapshots' inputs: %w", id, err)
	}
	defer rows.Close()
	unchanged, inputs = map[string]bool{}, map[string]uint64{}
	for rows.Next() {
		var name string
		var fp, stored uint64
		if err := rows.Scan(&name, &fp, &stored); err != nil {
			return nil, nil, fmt.Errorf("refresh %s: fingerprinting the snapshots' inputs: %w", id, err)
		}
		inputs[name] = fp
		unchanged[name] = fp == stored
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("refresh %s: fingerprinting the snapshots' inputs: %w", id, err)
	}
	// A view the store lacks would be copied (and fail there, naming it),
	// never taken as unchanged.
	return unchanged, inputs, nil
}

// dropPending removes the refresh's lists of pending work.
func (r *Job) dropPending(ctx context.Context, id string) error {
	for _, q := range sqlDropPending {
		if err := r.Store.Exec(ctx, q, id); err != nil {
			return fmt.Errorf("refresh %s: dropping pending rows: %w", id, err)
		}
	}
	return nil
}

// engine is what a refresh asks of the engine beyond ClickHouse 23.8's
// defaults, where the engine knows the setting.
type engine struct {
	// reorders: the engine reorders inner joins by estimated size
	// (query_plan_optimize_join_order_limit), and for finding_base_live it
	// picks the fan-out of every host's inventory findings as a hash table
	// (GBs at 10,000 hosts) over the open exposures it should stream
	// against; the base rows' statement turns it off.
	reorders bool
	// noMerge ends a SETTINGS clause of a write to a ReplacingMergeTree
	// (", optimize_on_insert = 0"; empty where the engine lacks the
	// setting). Each such write holds one row per sorting key (spans and
	// base rows are grouped by it, segments by host and index, a group
	// table's rows are its view's groups or stored rows read FINAL), so
	// merging every inserted block on insert collapses nothing, and it was
	// half the cost of writing the base rows: exposure_base's 15.6M rows at
	// `make run` size copied in 25 s with it and 13 s without,
	// finding_risk_base's 29M in 61 s and 36 s; risk_groups_base's 2.1M
	// groups were written whole in 9.8 s with it and 6.0 s without.
	// Readers read FINAL either way.
	noMerge string
}

// noMergeClause is noMerge as a whole SETTINGS clause, for a statement
// that has none.
func (e engine) noMergeClause() string {
	if e.noMerge == "" {
		return ""
	}
	return " SETTINGS " + strings.TrimPrefix(e.noMerge, ", ")
}

// engineSettings reads which of engine's settings the store's engine knows.
func (r *Job) engineSettings(ctx context.Context, id string) (engine, error) {
	var reorders, merges uint64
	if err := queryOne(ctx, r.Store, sqlEngineSettings, nil, &reorders, &merges); err != nil {
		return engine{}, fmt.Errorf("refresh %s: reading the engine's settings: %w", id, err)
	}
	e := engine{reorders: reorders > 0}
	if merges > 0 {
		e.noMerge = ", optimize_on_insert = 0"
	}
	return e, nil
}

// exec runs steps in order. m, when not nil, shows each step's name and
// counts its units when it is done; exec stops it.
func (r *Job) exec(ctx context.Context, id string, log *slog.Logger, m *progress.Meter, steps ...refreshStep) error {
	if m != nil {
		defer m.Stop()
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if m != nil {
			m.Step(s.name)
		}
		t0 := time.Now()
		q := s.sql
		if strings.HasPrefix(q, "INSERT") {
			q = r.Memory.Apply(q)
		}
		if err := r.Store.Exec(ctx, q, s.args...); err != nil {
			return fmt.Errorf("refresh %s: %s: %w", id, s.name, err)
		}
		if m != nil {
			m.Add(s.units)
		}
		log.Debug("refresh step", "refresh", id, "step", s.name, "took", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// meter starts the progress lines of one phase of the refresh.
func (r *Job) meter(log *slog.Logger, stage, unit string, total uint64) *progress.Meter {
	return progress.Start(progress.Config{Log: log, Stage: stage, Unit: unit, Total: int64(total), Every: r.ProgressEvery})
}

// shardBounds returns the host_id bounds between shards ranges of equal
// size of the n hosts of from (a table or subquery binding args).
func (r *Job) shardBounds(ctx context.Context, id, from string, args []any, shards, n uint64) ([]string, error) {
	var bounds []string
	if err := queryOne(ctx, r.Store, fmt.Sprintf(sqlShardBounds, from), append([]any{shards, shards}, args...), &bounds); err != nil {
		return nil, fmt.Errorf("refresh %s: shard bounds of the hosts of %s: %w", id, from, err)
	}
	if uint64(len(bounds)) != shards-1 {
		return nil, fmt.Errorf("refresh %s: %d shard bounds for %d shards of %d hosts of %s (a concurrent refresh?)", id, len(bounds), shards, n, from)
	}
	return bounds, nil
}

// shardCond restricts the condition all to shard i of the ranges of
// host_id that bounds separate (shard i: from bounds[i-1] to before
// bounds[i]; the first and last are open-ended).
func shardCond(all string, bounds []string, i int) string {
	var b strings.Builder
	b.WriteString(all)
	if i > 0 {
		b.WriteString(" AND host_id >= ")
		store.QuoteString(&b, bounds[i-1])
	}
	if i < len(bounds) {
		b.WriteString(" AND host_id < ")
		store.QuoteString(&b, bounds[i])
	}
	return b.String()
}

// shardSize is how many of n items shard i of shards holds, about (the
// bounds split a sorted list of n, so sizes differ by at most one).
func shardSize(n, shards, i uint64) int64 {
	size := n / shards
	if i < n%shards {
		size++
	}
	return int64(size)
}

// replace recomputes table from the union of queries (each a SELECT, run
// within budget) through a staging copy, then swaps the copy's contents in
// with one ALTER: readers see the old rows or the new ones, never a
// half-written table.
func (r *Job) replace(ctx context.Context, id, table string, queries []string, budget membudget.Budget, log *slog.Logger, m *progress.Meter) error {
	m.Step(table)
	defer m.Add(1)
	staging := table + "__" + stagingSuffix(id)
	t0 := time.Now()
	fail := func(err error) error {
		// A leftover staging table holds nothing anyone reads; the
		// next refresh of this id would drop it, so drop it now.
		_ = r.Store.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+staging)
		return fmt.Errorf("refresh %s: %s: %w", id, table, err)
	}
	for _, q := range []string{"DROP TABLE IF EXISTS " + staging, "CREATE TABLE " + staging + " AS " + table} {
		if err := r.Store.Exec(ctx, q); err != nil {
			return fail(err)
		}
	}
	for i, q := range queries {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if len(queries) > 1 {
			m.Step(fmt.Sprintf("%s, hosts shard %d of %d", table, i+1, len(queries)))
		}
		if err := r.Store.Exec(ctx, budget.Apply("INSERT INTO "+staging+" "+q)); err != nil {
			return fail(fmt.Errorf("shard %d of %d: %w", i+1, len(queries), err))
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
	name  string
	sql   string
	args  []any
	units int64 // units of the phase's progress done by the step
}

// snapshotHostsPerShard is SnapshotHostsPerShard or its default.
func (r *Job) snapshotHostsPerShard() uint64 {
	if r.SnapshotHostsPerShard == 0 {
		return snapshotHostsPerShard
	}
	return r.SnapshotHostsPerShard
}

// fleetMemory is the budget of one copy of a fleet-wide KPI snapshot:
// FleetMemory, or the shard budget (Memory) when it is the zero Budget.
// Those copies aggregate per host group (a few hundred at fleet scale)
// before the breakdowns, and since 0024 the medians hold per-day counts
// and the exact values of a few days, not every distinct duration: at
// 100,000 hosts × 90 days (159M exposures) each copy ran within the default
// 1.5 GiB, the largest kpi_time_to_patch (40 s, 1.1 GB RSS; 0016's medians
// took 179 s at 5.3 GB under 8 GiB) and compliance_posture_trend (44 s,
// 1.1 GB).
func (r *Job) fleetMemory() membudget.Budget {
	if r.FleetMemory == (membudget.Budget{}) {
		return r.Memory
	}
	return r.FleetMemory
}

// snapshotBlocks caps the blocks a snapshot copy squashes before writing a
// part. Base rows are wide (exposure_base's and finding_risk_base's about
// 300 and 400 bytes uncompressed), and the default (about 1M rows or 256
// MiB per block, sorted through a copy) made their copies the refresh's
// peak memory: 2.0 GB for finding_risk's at 2,000 hosts, 1.1 GB with these
// blocks, for the same CPU time.
const snapshotBlocks = "min_insert_block_size_rows = 131072, min_insert_block_size_bytes = 67108864"

// rescanMargin is how far before the previous watermark an incremental
// refresh looks for received scans: received_at is stamped by the consumer
// before its batch is written, so a batch in flight during the previous
// refresh carries times just below that refresh's watermark.
const rescanMargin = time.Hour

// The group tables (groupTables) that snapshots read, written before
// them: exposureGroups, the exposures counted per group of equal SLA and
// window inputs (0030_kpi_sla_groups.sql), which the SLA KPIs, the posture
// and the exposure window read; reopenedGroups, the reopened ones per host
// and last sighting (0031_regression_groups.sql), which
// kpi_deploy_regressions reads; riskGroups, the exposures per group of
// equal risk inputs (0033_risk_groups.sql), which kpi_remediation_rate
// and host_risk read; durationGroups, the exposures per group of equal
// durations to resolution (0034_duration_groups.sql), which
// kpi_time_to_patch and kpi_mttr read.
const (
	exposureGroups = "exposure_groups"
	reopenedGroups = "reopened_groups"
	riskGroups     = "risk_groups"
	durationGroups = "duration_groups"
)

// perHostSnapshots are the Snapshots whose rows are each of one host
// (host_id), and which a refresh copies a range of hosts at a time.
var perHostSnapshots = map[string]bool{"host_risk": true}

// baseOnlySnapshots are the Snapshots computed from exposure_base's rows
// alone, through kpi_exposures or the group tables written from it
// (groupTables): each counts the exposures by columns stored in those
// rows (severity, KEV, EPSS band, stale, accepted, the first-seen and
// resolution times and the durations between them) and by the host's
// attributes, which kpi_exposures reads from host_facts (0036) but which
// change only with a rewrite of the host's rows (sqlRewriteChanged), and
// reads neither the clock, nor an open exposure's window (window_end,
// window_days), nor another table. A refresh copies them only when their
// inputs' fingerprint (sqlSnapshotInputs) changed: when exposure_base was
// written since, or their definitions or the group tables' changed.
// The others read the clock (SLA states, risk, recent remediation, open
// windows, verification) or other tables (hosts, policies, outcomes), and
// are copied by every refresh.
var baseOnlySnapshots = []string{"kpi_mttr", "kpi_time_to_patch", "kpi_open_exposure", "kpi_daily_trend"}

// snapshotHosts are the hosts whose ranges shard the per-host snapshots:
// every host with history. They only balance the shards: the ranges cover
// every host_id (the first and last are open-ended), so a host of a view
// that is not listed here still falls in exactly one.
const snapshotHosts = "(SELECT DISTINCT host_id FROM host_segments)"

// snapshotHostsPerShard bounds the hosts of one copy of a per-host
// snapshot: each copy also builds its joins' other sides (hosts,
// advisories, the findings of the fleet's states) once, so its shards are
// larger than those of exposures.
const snapshotHostsPerShard = 10000

// tailShardFactor is how many times HostsPerShard one statement continues
// the segments of (sqlStageTail): it holds each host's scans since its
// latest segment, a day's few on a daily refresh, where segmenting from
// scratch holds all of them.
const tailShardFactor = 20

// hostsPerShard bounds the hosts one exposure statement works on: its
// aggregation holds every (host, advisory) of the shard (about 1,600 per
// host over 90 days of the simulated fleet) beside the hash table of their
// stored rows, so 1,000 hosts stay within the default memory budget
// (schemas/store/membudget); more shards cost a few fixed reads each.
const hostsPerShard = 1000

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
