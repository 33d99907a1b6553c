// Package match matches the fleet's package versions against advisories,
// in ClickHouse (Job) and, as a reference with the same semantics, in Go
// (Reference). It also answers the questions built on the results: which
// hosts were exposed at a date (ExposedAt) and why a host is or is not
// exposed (Explain).
//
// The tables and views it writes are documented in
// schemas/migrations/0003_matching.sql.
package match

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
)

// Mode selects what a Job run recomputes.
type Mode string

const (
	// Full matches every stored version against every current advisory
	// record and fans out to every inventory.
	Full Mode = "full"
	// Incremental matches only what no earlier run did: versions not yet
	// matched (new scans) against all current records, and new or modified
	// advisory records against the versions of their (ecosystem, package)
	// pairs; then fans out new inventories fully and the new records'
	// findings to the inventories done before.
	Incremental Mode = "incremental"
)

// Job runs fleet matching against one store.
type Job struct {
	Store store.Store
	// Log receives one line per run. Default: slog.Default().
	Log *slog.Logger
	// Now stamps matched_at. Default: time.Now.
	Now func() time.Time
	// ProgressEvery is the interval of progress lines (the step running,
	// steps done of all, ETA) while a run lasts longer. Default
	// progress.DefaultEvery; negative: none.
	ProgressEvery time.Duration
}

// Stats is what one run did.
type Stats struct {
	RunID           string
	Mode            Mode
	Started         time.Time
	Finished        time.Time
	Versions        uint64 // distinct versions matched against all records
	Advisories      uint64 // advisory records (re)matched
	Inventories     uint64 // inventories fanned out in full
	VersionFindings uint64 // match_version_findings rows this run wrote
	// Steps is how long each statement took, in run order: where a run's
	// time goes (the benchmark reports it).
	Steps []StepTime
}

// StepTime is one statement of a run and how long it took.
type StepTime struct {
	Name string
	Took time.Duration
}

// Run runs one matching job. Running it again with nothing new changes
// nothing; a run that fails leaves the previous results in force and its
// unfinished work for the next run.
func (j *Job) Run(ctx context.Context, mode Mode) (Stats, error) {
	if mode != Full && mode != Incremental {
		return Stats{}, fmt.Errorf("match: unknown mode %q (want full or incremental)", mode)
	}
	now := time.Now
	if j.Now != nil {
		now = j.Now
	}
	log := j.Log
	if log == nil {
		log = slog.Default()
	}
	st := Stats{RunID: newRunID(), Mode: mode, Started: now().UTC().Truncate(time.Second)}
	err := j.run(ctx, &st, log)
	st.Finished = now().UTC().Truncate(time.Second)
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	// Record the run even when it failed: match_runs is what operators read.
	// Insert, not Exec of INSERT ... VALUES: the 2018 server waits for a
	// data block after an INSERT sent as a statement.
	if rerr := j.Store.Insert(ctx, "match_runs", runColumns, [][]any{{st.RunID, string(st.Mode), st.Started, st.Finished,
		st.Versions, st.Advisories, st.Inventories, st.VersionFindings, errText}}); rerr != nil && err == nil {
		err = fmt.Errorf("match: recording run %s: %w", st.RunID, rerr)
	}
	if err != nil {
		log.Error("match run failed", "run", st.RunID, "mode", mode, "err", err)
		return st, err
	}
	log.Info("match run", "run", st.RunID, "mode", mode, "versions", st.Versions, "advisories", st.Advisories,
		"inventories", st.Inventories, "version_findings", st.VersionFindings, "took", st.Finished.Sub(st.Started))
	return st, nil
}

type step struct {
	name string
	sql  string
	args []any
	// skip, when set, is asked once the pending work is counted: a step
	// with nothing to do is not run (its statement would still read the
	// tables it joins).
	skip func(*Stats) bool
}

func noVersions(st *Stats) bool    { return st.Versions == 0 }
func noAdvisories(st *Stats) bool  { return st.Advisories == 0 }
func noInventories(st *Stats) bool { return st.Inventories == 0 }

func (j *Job) run(ctx context.Context, st *Stats, log *slog.Logger) error {
	id, at := st.RunID, st.Started
	var steps []step
	if st.Mode == Full {
		steps = []step{
			{"snapshot inventories", sqlPendingInventoriesAll, []any{id}, nil},
			{"snapshot versions", sqlPendingVersionsAll, []any{id}, nil},
			{"snapshot advisories", sqlPendingAdvisoriesAll, []any{id}, nil},
			{"match pending versions", fmt.Sprintf(matchVersions, versionsPending, rangesAll, advisoriesAll), []any{at, id, id}, noVersions},
			{"fan out pending inventories", fmt.Sprintf(fanOut, inventoriesPending, findingsOfPendingInventories, advisoriesAll), []any{at, id, id, id}, noInventories},
		}
	} else {
		// Incremental: each statement reads only the ranges, advisories and
		// findings its pending rows name (on the tables' primary keys), so a
		// day's few new inventories and versions cost little whatever the
		// size of the feeds.
		steps = []step{
			{"snapshot inventories", sqlPendingInventoriesNew, []any{id}, nil},
			{"snapshot versions", sqlPendingVersionsNew, []any{id, id}, nil},
			{"snapshot advisories", sqlPendingAdvisoriesNew, []any{id}, nil},
			{"match pending versions", fmt.Sprintf(matchVersions, versionsPending, rangesOfPendingVersions, advisoriesOfPendingVersions),
				[]any{at, id, id, id, id, id, id, id, id}, noVersions},
			{"match pending advisories", fmt.Sprintf(matchVersions, versionsOfPendingPairs, rangesPending, advisoriesPending),
				[]any{at, id, id, id, id, id}, noAdvisories},
			{"fan out pending inventories", fmt.Sprintf(fanOut, inventoriesPending, findingsOfPendingInventories, advisoriesOfPendingInventories),
				[]any{at, id, id, id, id}, noInventories},
			{"fan out pending advisories", fmt.Sprintf(fanOut, inventoriesNotPending, findingsOfPendingAdvisories, advisoriesPending),
				[]any{at, id, id, id, id}, noAdvisories},
		}
	}
	// The findings statements write whole blocks whose duplicates every
	// reader already collapses (FINAL, or GROUP BY): rows of earlier runs
	// repeat them anyway. Merging each block on insert
	// (optimize_on_insert, a third of a fan-out's CPU) buys nothing.
	// Engines without the setting (the 18.16 server) do not merge on insert.
	var noMerge uint64
	if err := queryUint(ctx, j.Store, &noMerge, sqlHasOptimizeOnInsert); err != nil {
		return fmt.Errorf("match run %s: reading settings: %w", id, err)
	}
	if noMerge > 0 {
		for i := range steps {
			if strings.HasPrefix(steps[i].sql, "INSERT INTO match_version_findings") || strings.HasPrefix(steps[i].sql, "INSERT INTO match_inventory_findings") {
				steps[i].sql += settingsNoInsertMerge
			}
		}
	}
	steps = append(steps,
		step{"mark versions", sqlDoneVersions, []any{at, id}, noVersions},
		step{"mark advisories", sqlDoneAdvisories, []any{at, id}, noAdvisories},
		step{"mark inventories", sqlDoneInventories, []any{at, id}, noInventories},
	)
	// One statement each: the engine reports no rows while one runs, so
	// the lines count steps and name the one running.
	m := progress.Start(progress.Config{Log: log, Stage: "match", Unit: "steps", Total: int64(len(steps)), Every: j.ProgressEvery})
	defer m.Stop()
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if i > 2 && s.skip != nil && s.skip(st) {
			m.Add(1)
			continue
		}
		m.Step(s.name)
		t0 := time.Now()
		if err := j.Store.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("match run %s: %s: %w", id, s.name, err)
		}
		st.Steps = append(st.Steps, StepTime{s.name, time.Since(t0)})
		m.Add(1)
		if i == 2 {
			t0 := time.Now()
			if err := j.countPending(ctx, st); err != nil {
				return err
			}
			st.Steps = append(st.Steps, StepTime{"count pending", time.Since(t0)})
		}
	}
	t0 := time.Now()
	if err := queryUint(ctx, j.Store, &st.VersionFindings, sqlCountVersionFindings, id); err != nil {
		return fmt.Errorf("match run %s: counting findings: %w", id, err)
	}
	st.Steps = append(st.Steps, StepTime{"count findings", time.Since(t0)})
	t0 = time.Now()
	for _, q := range sqlDropPending {
		if err := j.Store.Exec(ctx, q, id); err != nil {
			return fmt.Errorf("match run %s: dropping pending rows: %w", id, err)
		}
	}
	st.Steps = append(st.Steps, StepTime{"drop pending", time.Since(t0)})
	return nil
}

func (j *Job) countPending(ctx context.Context, st *Stats) error {
	rows, err := j.Store.Query(ctx, sqlCountPending, st.RunID, st.RunID, st.RunID)
	if err != nil {
		return fmt.Errorf("match run %s: counting pending work: %w", st.RunID, err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&st.Versions, &st.Advisories, &st.Inventories); err != nil {
			return fmt.Errorf("match run %s: counting pending work: %w", st.RunID, err)
		}
	}
	return rows.Err()
}

func queryUint(ctx context.Context, s store.Store, dst *uint64, q string, args ...any) error {
	rows, err := s.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(dst); err != nil {
			return err
		}
	}
	return rows.Err()
}

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
