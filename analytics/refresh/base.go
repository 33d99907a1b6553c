package refresh

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// baseRows brings the tables behind kpi_exposures and finding_risk
// (schemas/migrations/0026_incremental_snapshots.sql) up to date:
// host_facts, advisory_facts and the exception snapshots whole (a row per
// host, advisory or covered row), exposure_base and finding_risk_base
// only for the hosts where what their rows hold changed: their exposures,
// latest inventory, attributes, end-of-life exposure or exceptions, or an
// advisory they are exposed to. A full refresh, the first one to write
// these tables, and one after a refresh that stopped midway rewrite every
// host's rows
// through a staging copy swapped in whole; an incremental one writes the
// changed hosts' rows under version and then marks those of their rows
// it did not write again deleted, so that a reader sees each row's old
// or new state, as with exposure_spans.
func (r *Job) baseRows(ctx context.Context, st *Stats, tables *strings.Replacer, version uint64, eng engine, log *slog.Logger) error {
	id := st.RefreshID
	var last, facts, approved uint64
	if err := queryOne(ctx, r.Store, sqlBaseState, nil, &last, &facts, &approved); err != nil {
		return fmt.Errorf("refresh %s: previous runs: %w", id, err)
	}
	all := st.Mode == Full || last == 0 || facts > last
	if all && st.Mode != Full {
		log.Info("refresh: rewriting every host's base rows", "refresh", id, "reason",
			"no refresh wrote them, or one after the last that did stopped before it finished")
	}
	steps := []refreshStep{
		{"host facts", tables.Replace("INSERT INTO {hosts} ") + sqlHostFacts, []any{time.Now().UTC().Truncate(time.Second), version}, 0},
		{"advisory facts", tables.Replace("INSERT INTO {advisories} ") + sqlAdvisoryFacts, nil, 0},
	}
	// Exceptions in force are approved ones: without any, the views'
	// chains (1 to 3 s at `make run` size) would find no row, and the
	// staging tables stay as created, empty.
	if approved > 0 {
		steps = append(steps,
			refreshStep{"exceptions in force", tables.Replace("INSERT INTO {xexposures} SELECT * FROM exposure_exceptions"), nil, 0},
			refreshStep{"exceptions in force", tables.Replace("INSERT INTO {xfindings} SELECT * FROM finding_exception_best"), nil, 0})
	}
	if all {
		steps = append(steps, refreshStep{"hosts to rewrite", tables.Replace(sqlRewriteAll), nil, 0})
	} else {
		steps = append(steps, refreshStep{"hosts to rewrite", tables.Replace(sqlRewriteChanged), []any{last}, 0})
	}
	if err := r.exec(ctx, id, log, nil, steps...); err != nil {
		return err
	}
	if err := queryOne(ctx, r.Store, tables.Replace("SELECT count() FROM {rewrite}"), nil, &st.RewrittenHosts); err != nil {
		return fmt.Errorf("refresh %s: counting hosts to rewrite: %w", id, err)
	}
	// The whole tables first: the next refresh compares with them all, and
	// finding_risk_base's rows take the exceptions in force from
	// finding_exceptions_snapshot. Then exposure_base before
	// finding_risk_base, whose rows are read from it (finding_base_live).
	m := r.meter(log, "refresh base rows", "tables", 6)
	defer m.Stop()
	for _, t := range []struct{ table, from string }{
		{"host_facts", tables.Replace("SELECT * FROM {hosts}")},
		{"advisory_facts", tables.Replace("SELECT * FROM {advisories}")},
		{"exposure_exceptions_snapshot", tables.Replace("SELECT * FROM {xexposures}")},
		{"finding_exceptions_snapshot", tables.Replace("SELECT * FROM {xfindings}")},
	} {
		if err := r.replace(ctx, id, t.table, []string{t.from}, r.Memory, log, m); err != nil {
			return err
		}
	}
	if st.RewrittenHosts == 0 {
		m.Add(2)
		return nil
	}
	perShard := r.snapshotHostsPerShard()
	shards := max(1, (st.RewrittenHosts+perShard-1)/perShard)
	bounds, err := r.shardBounds(ctx, id, tables.Replace("{rewrite}"), nil, shards, st.RewrittenHosts)
	if err != nil {
		return err
	}
	rewrite := tables.Replace("host_id IN (SELECT host_id FROM {rewrite})")
	findingSettings := snapshotBlocks + eng.noMerge
	if eng.reorders {
		findingSettings += ", query_plan_optimize_join_order_limit = 0"
	}
	for _, b := range []struct {
		table, sql, settings, gone string
	}{
		{"exposure_base", sqlExposureBase, snapshotBlocks + eng.noMerge, sqlExposureBaseGone},
		{"finding_risk_base", sqlFindingBase, findingSettings, sqlFindingBaseGone},
	} {
		// The version is bound into the text: replace runs its
		// statements without arguments.
		sel := strings.Replace(b.sql, "?", fmt.Sprint(version), 1) + " SETTINGS " + b.settings
		qs := make([]string, shards)
		for i := range qs {
			qs[i] = fmt.Sprintf(sel, shardCond(rewrite, bounds, i))
		}
		if all {
			if err := r.replace(ctx, id, b.table, qs, r.Memory, log, m); err != nil {
				return err
			}
			continue
		}
		m.Step(b.table)
		for i, q := range qs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(qs) > 1 {
				m.Step(fmt.Sprintf("%s, hosts shard %d of %d", b.table, i+1, len(qs)))
			}
			if err := r.Store.Exec(ctx, r.Memory.Apply("INSERT INTO "+b.table+" "+q)); err != nil {
				return fmt.Errorf("refresh %s: %s, shard %d of %d: %w", id, b.table, i+1, len(qs), err)
			}
		}
		if err := r.Store.Exec(ctx, r.Memory.Apply(tables.Replace(b.gone))+eng.noMerge, version, version); err != nil {
			return fmt.Errorf("refresh %s: %s, rows gone: %w", id, b.table, err)
		}
		m.Add(1)
	}
	return nil
}
