package refresh

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// groupTables are the tables of groups of exposures that follow
// exposure_base host by host (schemas/migrations/0032_group_tables.sql,
// 0033_risk_groups.sql, 0034_duration_groups.sql):
// name (the step's, and the row's in snapshot_inputs), table and the view
// it holds the rows of. The KPI snapshots read them (through
// name_snapshot), so a refresh writes them first.
var groupTables = []struct{ name, table, live string }{
	{exposureGroups, "exposure_groups_base", "exposure_groups_live"},
	{reopenedGroups, "reopened_groups_base", "reopened_groups_live"},
	{riskGroups, "risk_groups_base", "risk_groups_live"},
	{durationGroups, "duration_groups_base", "duration_groups_live"},
}

// groups brings the group tables up to date with exposure_base. A host's
// groups are computed from its exposure_base rows alone, so only the
// hosts with rows written since a table was last brought up to date can
// have other groups: their groups are computed again, a shard of them at
// a time, and only those that changed or are gone are written. A full
// refresh, a table never written, or one whose definitions changed since
// (sqlGroupInputs' fingerprint) is written whole, byHost(q) giving the
// statements of q's shards of the fleet. A refresh that stops midway
// leaves the recorded version as it was: the next one computes the same
// hosts' groups again.
func (r *Job) groups(ctx context.Context, st *Stats, version uint64, eng engine, byHost func(q string) []string, log *slog.Logger) error {
	id := st.RefreshID
	m := r.meter(log, "refresh groups", "tables", uint64(len(groupTables)))
	defer m.Stop()
	// The hosts to regroup since a version, found once for the tables
	// up to date with the same one (usually both).
	hostSets := map[uint64]string{}
	defer func() {
		for _, t := range hostSets {
			if err := r.Store.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+t); err != nil {
				log.Warn("refresh: dropping a staging table", "refresh", id, "table", t, "err", err)
			}
		}
	}()
	for _, g := range groupTables {
		t0 := time.Now()
		var fp, stored, since uint64
		var key string
		if err := queryOne(ctx, r.Store, sqlGroupInputs, []any{g.live, g.table, g.name, g.table}, &fp, &stored, &since, &key); err != nil {
			return fmt.Errorf("refresh %s: %s: reading what it was last computed from: %w", id, g.table, err)
		}
		if key == "" {
			// No row: the table is missing. Never taken as up to date.
			return fmt.Errorf("refresh %s: no table %s (are migrations 0032 to 0034 applied?)", id, g.table)
		}
		if st.Mode == Full || stored == 0 || stored != fp {
			q := fmt.Sprintf("SELECT *, %d AS version, toUInt8(0) AS deleted FROM %s WHERE %%s SETTINGS %s%s", version, g.live, snapshotBlocks, eng.noMerge)
			if err := r.replace(ctx, id, g.table, byHost(q), r.Memory, log, m); err != nil {
				return err
			}
		} else {
			m.Step(g.table)
			hosts, ok := hostSets[since]
			if !ok {
				hosts = fmt.Sprintf("refresh_regroup__%s_%d", stagingSuffix(id), len(hostSets))
				hostSets[since] = hosts
				if err := r.exec(ctx, id, log, nil,
					refreshStep{"hosts to regroup", "CREATE TABLE " + hosts + " (host_id String) ENGINE = MergeTree ORDER BY host_id", nil, 0},
					refreshStep{"hosts to regroup", fmt.Sprintf(sqlRegroupHosts, hosts), []any{since}, 0},
				); err != nil {
					return err
				}
			}
			if err := r.regroup(ctx, id, g.table, g.live, key, hosts, version, eng, log); err != nil {
				return err
			}
			m.Add(1)
		}
		// After the table is up to date: a row that is missing (the
		// process died between the two) only makes the next refresh
		// compute the same hosts' groups again.
		if err := r.Store.Insert(ctx, "snapshot_inputs", []string{"snapshot", "fp", "refresh_id", "written_at", "version"},
			[][]any{{g.name, fp, id, time.Now().UTC(), version}}); err != nil {
			return fmt.Errorf("refresh %s: recording what %s was computed from: %w", id, g.table, err)
		}
		st.timed(g.name, t0)
	}
	return nil
}

// regroup writes to table the groups (view live's rows) that changed
// among those of the hosts in the table hosts, under version, and those
// gone deleted; key is the table's sorting key. It works a shard of
// hosts at a time (regroupShardDivisor), each step of a shard restricted
// to its range of host_id: the comparisons hold the shard's staged groups
// and stored groups in memory, and a host can have hundreds of groups
// (risk_groups: about 200), so a day of scans' 7,000 hosts at once went
// over the 1.5 GiB statement budget at 100,000 hosts.
func (r *Job) regroup(ctx context.Context, id, table, live, key, hosts string, version uint64, eng engine, log *slog.Logger) error {
	var n uint64
	if err := queryOne(ctx, r.Store, "SELECT count() FROM "+hosts, nil, &n); err != nil {
		return fmt.Errorf("refresh %s: %s: counting hosts to regroup: %w", id, table, err)
	}
	if n == 0 {
		return nil
	}
	staged := "refresh_groups__" + stagingSuffix(id) + "_" + table
	defer func() {
		if err := r.Store.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+staged); err != nil {
			log.Warn("refresh: dropping a staging table", "refresh", id, "table", staged, "err", err)
		}
	}()
	perShard := max(1, r.snapshotHostsPerShard()/regroupShardDivisor)
	shards := (n + perShard - 1) / perShard
	bounds, err := r.shardBounds(ctx, id, hosts, nil, shards, n)
	if err != nil {
		return err
	}
	steps := []refreshStep{{table + ": staging table", "CREATE TABLE " + staged + " ENGINE = MergeTree ORDER BY host_id EMPTY AS SELECT * FROM " + live, nil, 0}}
	for i := range shards {
		cond := shardCond("host_id IN (SELECT host_id FROM "+hosts+")", bounds, int(i))
		name := fmt.Sprintf("%s: hosts shard %d of %d", table, i+1, shards)
		steps = append(steps,
			refreshStep{name + ", groups", "INSERT INTO " + staged + " SELECT * FROM " + live + " WHERE " + cond + " SETTINGS " + snapshotBlocks, nil, 0},
			refreshStep{name + ", groups changed", fmt.Sprintf(sqlGroupsChanged, table, cond, staged) + eng.noMergeClause(), []any{version}, 0},
			refreshStep{name + ", groups gone", fmt.Sprintf(sqlGroupsGone, table, cond, staged, key) + eng.noMergeClause(), []any{version}, 0},
			refreshStep{name + ", done", "TRUNCATE TABLE " + staged, nil, 0})
	}
	return r.exec(ctx, id, log, nil, steps...)
}

// regroupShardDivisor makes a regroup's shards that many times smaller
// than those of the snapshots (snapshotHostsPerShard): 1,000 hosts by
// default, whose risk groups (about 200,000) the comparisons hold in a
// few hundred MB.
const regroupShardDivisor = 10
