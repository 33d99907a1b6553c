package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/analytics/risk"
	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// stepMatch builds a fleet of cfg.Arg endpoints on chDB (simulator → the
// real producer → in-process Kafka → the real consumer) and times a full
// match of day 0, then an incremental match after the following days.
// Matching runs on chDB only: the 2018 server cannot run the analytics
// migrations (inequality JOINs, views), see schemas.RequireAnalytics.
func stepMatch(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	n, err := strconv.Atoi(cfg.Arg)
	if err != nil {
		return fmt.Errorf("endpoints %q: %w", cfg.Arg, err)
	}
	dir := fmt.Sprintf("%s/fleet-%d", cfg.Work, n)
	defer os.RemoveAll(dir)
	return buildFleet(ctx, cfg, n, dir, log, out)
}

func buildFleet(ctx context.Context, cfg Config, n int, dir string, log *slog.Logger, out *StepOutput) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	st, err := openCHDB(ctx, cfg, dir, log)
	if err != nil {
		return err
	}
	defer st.Close()
	out.Info["backend"] = "chdb (the ClickHouse 18.16 server cannot run the analytics views)"

	t0 := time.Now()
	records, err := loadFeeds(ctx, st, benchFeedLocations(cfg), log)
	if err != nil {
		return err
	}
	out.Info["feed_records"], out.Info["feed_load_s"] = records, time.Since(t0).Seconds()
	log.Info("feeds loaded", "records", records, "took", time.Since(t0).Round(time.Millisecond))

	in, err := loadFleetInputs(ctx, cfg, false, log)
	if err != nil {
		return err
	}
	fleet, err := newFleet(in, n, cfg.Days, log)
	if err != nil {
		return err
	}
	topic, brokers, cleanup, err := fleetKafka(ctx, cfg, fmt.Sprintf("fleet%d", n), log)
	if err != nil {
		return err
	}
	defer cleanup()
	out.Info["kafka"] = brokers[0]
	prod, err := publish.New(producerConfig(brokers, topic))
	if err != nil {
		return err
	}
	defer prod.Close()

	sink := &pausingSink{next: simulate.PublishSink{P: prod}, pauseAt: int64(n), paused: make(chan struct{}), resume: make(chan struct{})}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type runResult struct {
		sum simulate.Summary
		err error
	}
	done := make(chan runResult, 1)
	t0 = time.Now()
	go func() {
		sum, err := fleet.Run(rctx, sink, simulate.RunOptions{ProgressInterval: -1})
		done <- runResult{sum, err}
	}()
	var finished *runResult
	select {
	case <-sink.paused:
	case r := <-done:
		finished = &r
		if r.err != nil {
			return fmt.Errorf("simulate: %w", r.err)
		}
	}
	log.Info("day 0 published", "endpoints", n, "took", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	ist, err := ingest(ctx, st, brokers, topic, log)
	if err != nil {
		return fmt.Errorf("ingest day 0: %w", err)
	}
	ingestS := time.Since(t0).Seconds()
	out.Info["day0_ingest_s"], out.Info["day0_package_rows"], out.Info["day0_scan_rows"] = ingestS, ist.PackageRows, ist.ScanRows
	log.Info("day 0 ingested", "scan_rows", ist.ScanRows, "package_rows", ist.PackageRows, "took", time.Since(t0).Round(time.Millisecond))

	job := &match.Job{Store: st, Log: quiet(log)}
	t0 = time.Now()
	full, err := job.Run(ctx, match.Full)
	if err != nil {
		return fmt.Errorf("full match: %w", err)
	}
	fullD := time.Since(t0)
	log.Info("full match", "endpoints", n, "took", fullD.Round(time.Millisecond), "versions", full.Versions, "inventories", full.Inventories, "findings", full.VersionFindings)
	out.Metrics = append(out.Metrics,
		Metric{Name: "full_match_s", Value: fullD.Seconds(), Unit: "s", Better: "lower",
			Note: "compared with the peer in the summary"},
		Metric{Name: "full_match_hosts_per_s", Value: float64(n) / fullD.Seconds(), Unit: "hosts/s", Better: "higher"},
	)
	// The job stores findings per distinct inventory (41 inventories for
	// 10,000 hosts on day 0); per-host findings are fanned out when read
	// (the host_findings view). A scanner like OSV-Scanner produces per-host
	// findings, so the comparable figure includes one pass of that fan-out.
	t0 = time.Now()
	hostFindings, err := countHostFindings(ctx, st)
	if err != nil {
		return fmt.Errorf("host fan-out: %w", err)
	}
	fanD := time.Since(t0)
	log.Info("host fan-out", "host_findings", hostFindings, "took", fanD.Round(time.Millisecond))
	out.Info["host_findings"] = hostFindings
	out.Metrics = append(out.Metrics, ratio(Metric{Name: "full_match_with_fanout_hosts_per_s", Value: float64(n) / (fullD + fanD).Seconds(), Unit: "hosts/s", Better: "higher",
		Note: fmt.Sprintf("full match + counting all %d host findings (%.1fs)", hostFindings, fanD.Seconds())},
		"ceiling: full match alone, hosts/s", float64(n)/fullD.Seconds()))
	out.Info["full_versions"], out.Info["full_advisories"], out.Info["full_inventories"], out.Info["full_version_findings"] =
		full.Versions, full.Advisories, full.Inventories, full.VersionFindings

	if finished == nil {
		close(sink.resume)
		r := <-done
		if r.err != nil {
			return fmt.Errorf("simulate: %w", r.err)
		}
		out.Info["messages"], out.Info["full_scans"], out.Info["heartbeats"], out.Info["package_sets"] =
			r.sum.Messages, r.sum.FullScans, r.sum.Heartbeats, r.sum.PackageSets
	}
	t0 = time.Now()
	ist2, err := ingest(ctx, st, brokers, topic, log)
	if err != nil {
		return fmt.Errorf("ingest days 1..: %w", err)
	}
	log.Info("later days ingested", "scan_rows", ist2.ScanRows, "package_rows", ist2.PackageRows, "took", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	inc, err := job.Run(ctx, match.Incremental)
	if err != nil {
		return fmt.Errorf("incremental match: %w", err)
	}
	incD := time.Since(t0)
	log.Info("incremental match", "took", incD.Round(time.Millisecond), "inventories", inc.Inventories, "versions", inc.Versions)
	out.Info["inc_versions"], out.Info["inc_inventories"], out.Info["inc_version_findings"] = inc.Versions, inc.Inventories, inc.VersionFindings
	out.Metrics = append(out.Metrics, ratio(Metric{Name: "incremental_match_s", Value: incD.Seconds(), Unit: "s", Better: "lower",
		Note: fmt.Sprintf("after %d more day(s) of scans", cfg.Days-1)}, "ceiling: full match of day 0 on the same store", fullD.Seconds()))
	return nil
}

// ensureFixture builds the KPI/export fleet store unless an earlier step
// did. It is smaller than the matching fleets: every host carries about
// 5,000 findings (host-b's kernel packages alone 4,034), and KPIs and
// exports read them all.
func ensureFixture(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	dir := fixtureDir(cfg)
	out.Info["fleet_endpoints"] = cfg.KPIHosts
	if _, err := os.Stat(dir + ".complete"); err == nil {
		return nil
	}
	log.Info("building the KPI/export fleet", "endpoints", cfg.KPIHosts)
	scratch := StepOutput{Info: map[string]any{}}
	os.Remove(dir + ".complete")
	if err := buildFleet(ctx, cfg, cfg.KPIHosts, dir, log, &scratch); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("build the KPI/export fleet: %w", err)
	}
	return os.WriteFile(dir+".complete", nil, 0o644)
}

// stepKPI times every KPI (kpi.Run) against the exposure history they all
// read: the ceiling is a bare count over exposure_history.
func stepKPI(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	if err := ensureFixture(ctx, cfg, log, out); err != nil {
		return err
	}
	st, err := openCHDB(ctx, cfg, fixtureDir(cfg), log)
	if err != nil {
		return err
	}
	defer st.Close()
	base := make([]time.Duration, 0, cfg.Reps)
	for range cfg.Reps {
		t0 := time.Now()
		rows, err := st.Query(ctx, "SELECT count() FROM exposure_history")
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
		base = append(base, time.Since(t0))
	}
	baseP50 := ms(percentile(base, 0.5))
	out.Info["exposure_history_count_p50_ms"] = baseP50
	for _, k := range kpi.All() {
		lat := make([]time.Duration, 0, cfg.Reps)
		var rowsN int
		for range cfg.Reps {
			t0 := time.Now()
			t, err := kpi.Run(ctx, st, k.Name, kpi.Query{Dimension: "ring"})
			if err != nil {
				return fmt.Errorf("kpi %s: %w", k.Name, err)
			}
			lat = append(lat, time.Since(t0))
			rowsN = len(t.Rows)
		}
		p50, p95 := ms(percentile(lat, 0.5)), ms(percentile(lat, 0.95))
		log.Info("kpi", "name", k.Name, "p50_ms", round(p50, 1), "p95_ms", round(p95, 1), "rows", rowsN)
		ref := "ceiling: SELECT count() FROM exposure_history, p50"
		out.Metrics = append(out.Metrics,
			ratio(Metric{Name: k.Name + " p50", Value: p50, Unit: "ms", Better: "lower", Note: fmt.Sprintf("%d rows, by ring", rowsN)}, ref, baseP50),
			ratio(Metric{Name: k.Name + " p95", Value: p95, Unit: "ms", Better: "lower"}, ref, baseP50))
	}
	return nil
}

// stepExport times risk.Export of every finding in two formats; the
// ceiling is the same query's cursor walked without formatting.
func stepExport(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	if err := ensureFixture(ctx, cfg, log, out); err != nil {
		return err
	}
	st, err := openCHDB(ctx, cfg, fixtureDir(cfg), log)
	if err != nil {
		return err
	}
	defer st.Close()
	t0 := time.Now()
	rows, err := risk.Findings(ctx, st, risk.Filter{}, nil)
	if err != nil {
		return err
	}
	var n int64
	for rows.Next() {
		n++
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return err
	}
	cursor := float64(n) / time.Since(t0).Seconds()
	out.Info["finding_rows"] = n
	for _, format := range []string{"arrow", "csv", "json"} {
		var w countingWriter
		t0 := time.Now()
		written, err := risk.Export(ctx, st, risk.Filter{}, format, &w, 0)
		if err != nil {
			return fmt.Errorf("export %s: %w", format, err)
		}
		d := time.Since(t0)
		log.Info("export", "format", format, "rows", written, "bytes", w.n, "took", d.Round(time.Millisecond))
		out.Metrics = append(out.Metrics, ratio(Metric{Name: "export " + format, Value: float64(written) / d.Seconds(), Unit: "rows/s", Better: "higher",
			Note: fmt.Sprintf("%d rows, %d bytes", written, w.n)}, "ceiling: the same query's cursor, no formatting", cursor))
	}
	return nil
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countingWriter)(nil)

// countHostFindings counts the fleet's per-host findings: one pass of the
// fan-out every host-level read (KPIs, exports, the API) goes through.
// A benchmark probe, not product SQL: it only counts the view's rows.
func countHostFindings(ctx context.Context, st store.Store) (uint64, error) {
	rows, err := st.Query(ctx, "SELECT count() FROM host_findings")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n uint64
	for rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, err
		}
	}
	return n, rows.Err()
}
