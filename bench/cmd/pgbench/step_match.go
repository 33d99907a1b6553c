package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/analytics/kpi"
	"github.com/patchgrid/patchgrid/analytics/match"
	"github.com/patchgrid/patchgrid/analytics/refresh"
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
	hwm := &phaseHWM{}
	hwm.mark("feeds")
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
	hwm.mark("day 0 ingest")
	out.Info["day0_ingest_s"], out.Info["day0_package_rows"], out.Info["day0_scan_rows"] = ingestS, ist.PackageRows, ist.ScanRows
	log.Info("day 0 ingested", "scan_rows", ist.ScanRows, "package_rows", ist.PackageRows, "took", time.Since(t0).Round(time.Millisecond))

	job := &match.Job{Store: st, Log: quiet(log)}
	t0 = time.Now()
	full, err := job.Run(ctx, match.Full)
	if err != nil {
		return fmt.Errorf("full match: %w", err)
	}
	fullD := time.Since(t0)
	hwm.mark("full match")
	log.Info("full match", "endpoints", n, "took", fullD.Round(time.Millisecond), "versions", full.Versions, "inventories", full.Inventories,
		"findings", full.VersionFindings, "steps", stepTimes(full.Steps))
	out.Metrics = append(out.Metrics,
		Metric{Name: "full_match_s", Value: fullD.Seconds(), Unit: "s", Better: "lower",
			Note: "compared with the peer in the summary"},
		Metric{Name: "full_match_hosts_per_s", Value: float64(n) / fullD.Seconds(), Unit: "hosts/s", Better: "higher"},
	)
	// The job stores findings per distinct inventory (41 inventories for
	// 10,000 hosts on day 0); per-host findings are fanned out when read.
	// A scanner like OSV-Scanner produces per-host findings, so the
	// comparable figure includes reading every host's findings once:
	// match.ReadHostFindings streams each host's latest scan with its
	// inventory's findings (read once per inventory, delivered to the hosts
	// that have it by reference, not copied per host), and the probe counts
	// each host's exposing findings from its kernel states.
	log.Info("reading every host's findings")
	t0 = time.Now()
	rd, exposed, err := readHostFindings(ctx, st, log)
	if err != nil {
		return fmt.Errorf("host fan-out: %w", err)
	}
	fanD := time.Since(t0)
	hwm.mark("host findings read")
	log.Info("host findings read", "hosts", rd.Hosts, "host_findings", rd.HostFindings, "inventory_findings", rd.InventoryFindings,
		"took", fanD.Round(time.Millisecond), "host_findings_per_s", round(float64(rd.HostFindings)/fanD.Seconds(), 0))
	out.Info["host_findings"], out.Info["host_findings_exposed"], out.Info["host_findings_inventory_rows"], out.Info["host_findings_read_s"] =
		rd.HostFindings, exposed, rd.InventoryFindings, fanD.Seconds()
	out.Metrics = append(out.Metrics, ratio(Metric{Name: "full match + every host's findings delivered (inventory rows shared by reference), hosts/s", Value: float64(n) / (fullD + fanD).Seconds(), Unit: "hosts/s", Better: "higher",
		Note: fmt.Sprintf("match.ReadHostFindings: %d hosts' latest scans, each handed its inventory's findings (%d host findings in all, not copied per host) and its kernel states, in %.1fs; %d finding rows of %d inventories read once each",
			rd.Hosts, rd.HostFindings, fanD.Seconds(), rd.InventoryFindings, rd.Inventories)},
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
	hwm.mark("later days ingest, incremental match")
	log.Info("incremental match", "took", incD.Round(time.Millisecond), "inventories", inc.Inventories, "versions", inc.Versions,
		"advisories", inc.Advisories, "steps", stepTimes(inc.Steps))
	out.Info["inc_versions"], out.Info["inc_inventories"], out.Info["inc_version_findings"], out.Info["inc_advisories"] =
		inc.Versions, inc.Inventories, inc.VersionFindings, inc.Advisories
	out.Info["inc_steps"], out.Info["full_steps"] = stepTimes(inc.Steps), stepTimes(full.Steps)
	// The ceiling: recomputing everything the incremental run kept up to
	// date, a full match of the same store after the same days.
	t0 = time.Now()
	again, err := job.Run(ctx, match.Full)
	if err != nil {
		return fmt.Errorf("full match after the later days: %w", err)
	}
	againD := time.Since(t0)
	log.Info("full match after the later days", "took", againD.Round(time.Millisecond), "inventories", again.Inventories, "steps", stepTimes(again.Steps))
	out.Info["full_after_days_s"], out.Info["full_after_days_inventories"] = againD.Seconds(), again.Inventories
	out.Metrics = append(out.Metrics,
		ratio(Metric{Name: "incremental_match_s", Value: incD.Seconds(), Unit: "s", Better: "lower",
			Note: fmt.Sprintf("after %d more day(s) of scans: %d new inventories, %d new versions, %d new advisory records; the full match of day 0 took %.2fs",
				cfg.Days-1, inc.Inventories, inc.Versions, inc.Advisories, fullD.Seconds())},
			"ceiling: full match of the same store after the same days", againD.Seconds()))
	peak := peakRSSMB(os.Getpid())
	out.Metrics = append(out.Metrics, ratio(Metric{Name: "step peak RSS (fleet build, ingest, matches, host findings read)", Value: peak, Unit: "MB", Better: "lower",
		Note: "VmHWM of the step's process, chDB in process; " + hwm.String()}, "goal: 2 GB", 2048))
	return nil
}

// ensureFixture builds the export fleet store unless an earlier step did.
// It is smaller than the matching fleets: every host carries about 5,000
// findings (host-b's kernel packages alone 4,034), and exports read them
// all. A full refresh after matching fills finding_risk, what exports read.
func ensureFixture(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	dir := fixtureDir(cfg)
	out.Info["fleet_endpoints"] = cfg.ExportHosts
	if _, err := os.Stat(dir + ".complete"); err == nil {
		return nil
	}
	log.Info("building the export fleet", "endpoints", cfg.ExportHosts)
	scratch := StepOutput{Info: map[string]any{}}
	os.Remove(dir + ".complete")
	if err := buildFleet(ctx, cfg, cfg.ExportHosts, dir, log, &scratch); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("build the export fleet: %w", err)
	}
	st, err := openCHDB(ctx, cfg, dir, log)
	if err != nil {
		return err
	}
	_, err = (&refresh.Job{Store: st, Log: quiet(log)}).Run(ctx, refresh.Full)
	st.Close()
	if err != nil {
		return fmt.Errorf("refresh the export fleet: %w", err)
	}
	return os.WriteFile(dir+".complete", nil, 0o644)
}

// buildKPIFleet builds the KPI fleet in dir: cfg.KPIBase endpoints over
// cfg.KPIDays days through the real pipeline (simulator, producer, Kafka,
// consumer, chDB), then replicated in the store to cfg.KPIHosts endpoints.
// Simulating and ingesting 9M scans would take most of an hour here; a
// replica is a new host_id whose scans are its original's shifted by a
// per-replica offset of up to 12 hours (cityHash64 of host and replica),
// so exposure windows and SLA clocks differ between replicas as they do
// between real hosts, while the inventories stay those the pipeline
// ingested. Then a full match and a full refresh, both timed.
func buildKPIFleet(ctx context.Context, cfg Config, st store.Store, log *slog.Logger, out *StepOutput) error {
	if err := matchKPIFleet(ctx, cfg, st, log, out); err != nil {
		return err
	}
	return refreshKPIFleet(ctx, cfg, st, log, out)
}

// matchKPIFleet is buildKPIFleet up to its full match: the fleet ingested,
// replicated and matched, not yet refreshed.
func matchKPIFleet(ctx context.Context, cfg Config, st store.Store, log *slog.Logger, out *StepOutput) error {
	t0 := time.Now()
	records, err := loadFeeds(ctx, st, benchFeedLocations(cfg), log)
	if err != nil {
		return err
	}
	out.Info["feed_records"] = records
	in, err := loadFleetInputs(ctx, cfg, false, log)
	if err != nil {
		return err
	}
	fleet, err := newFleet(in, cfg.KPIBase, cfg.KPIDays, log)
	if err != nil {
		return err
	}
	topic, brokers, cleanup, err := fleetKafka(ctx, cfg, "kpi", log)
	if err != nil {
		return err
	}
	defer cleanup()
	prod, err := publish.New(producerConfig(brokers, topic))
	if err != nil {
		return err
	}
	sum, err := fleet.Run(ctx, simulate.PublishSink{P: prod}, simulate.RunOptions{ProgressInterval: -1})
	if cerr := prod.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	ist, err := ingest(ctx, st, brokers, topic, log)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	out.Info["base_messages"], out.Info["base_full_scans"], out.Info["base_scan_rows"], out.Info["base_package_rows"] =
		sum.Messages, sum.FullScans, ist.ScanRows, ist.PackageRows
	log.Info("KPI base fleet ingested", "endpoints", cfg.KPIBase, "days", cfg.KPIDays, "scan_rows", ist.ScanRows,
		"took", time.Since(t0).Round(time.Second))
	replicas := max(1, cfg.KPIHosts/cfg.KPIBase)
	if replicas > 1 {
		if err := st.Exec(ctx, replicateScans, replicas); err != nil {
			return fmt.Errorf("replicate the KPI fleet: %w", err)
		}
	}
	var hosts, scans uint64
	if err := queryCount(ctx, st, "SELECT uniqExact(host_id), count() FROM scans", &hosts, &scans); err != nil {
		return err
	}
	out.Info["fleet_endpoints"], out.Info["fleet_scans"] = hosts, scans
	log.Info("KPI fleet", "endpoints", hosts, "scans", scans)

	t0 = time.Now()
	if _, err := (&match.Job{Store: st, Log: quiet(log)}).Run(ctx, match.Full); err != nil {
		return fmt.Errorf("full match: %w", err)
	}
	out.Info["full_match_s"] = time.Since(t0).Seconds()
	log.Info("KPI fleet matched", "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// refreshKPIFleet times the full refresh of a matched KPI fleet and its
// peak RSS (chDB in process: the engine's memory is in it). Its progress
// lines are shown, with the process's RSS beside them every
// rssSampleEvery, so a refresh that hits the memory cap shows the phase it
// was in (issue 16).
func refreshKPIFleet(ctx context.Context, cfg Config, st store.Store, log *slog.Logger, out *StepOutput) error {
	var hosts uint64
	if err := queryCount(ctx, st, "SELECT uniqExact(host_id) FROM scans", &hosts); err != nil {
		return err
	}
	releaseRetained(ctx, st, log)
	resetPeakRSS(log)
	stop := sampleRSS(log, "full refresh")
	t0 := time.Now()
	rs, err := (&refresh.Job{Store: st, Log: log}).Run(ctx, refresh.Full)
	fullD := time.Since(t0)
	stop()
	if err != nil {
		return fmt.Errorf("full refresh: %w", err)
	}
	peak := peakRSSMB(os.Getpid())
	log.Info("KPI fleet refreshed", "exposure_rows", rs.Exposures, "refresh", fullD.Round(time.Second), "peak_rss_mb", int(peak))
	out.Info["exposure_rows"], out.Info["full_refresh_steps"] = rs.Exposures, refreshSteps(rs.Steps)
	out.Metrics = append(out.Metrics,
		ratio(Metric{Name: "full refresh (exposure history + KPI and risk tables)", Value: fullD.Seconds(), Unit: "s", Better: "lower",
			Note: fmt.Sprintf("%d hosts × %d days, %d exposure rows (%.0f rows/s)", hosts, cfg.KPIDays, rs.Exposures, float64(rs.Exposures)/fullD.Seconds())},
			"ceiling: the goal, 120 s", fullRefreshGoalS),
		ratio(Metric{Name: "full refresh peak RSS", Value: peak, Unit: "MB", Better: "lower",
			Note: "VmHWM over the full refresh alone (chDB in process)"}, "ceiling: the goal, 2 GB", fullRefreshGoalMB))
	return nil
}

// Goals of issue 16 for the full refresh of the 100,000 × 90-day fleet.
const (
	fullRefreshGoalS  = 120
	fullRefreshGoalMB = 2048
)

// rssSampleEvery is the interval of sampleRSS's lines.
const rssSampleEvery = 10 * time.Second

// sampleRSS logs the process's RSS and peak every rssSampleEvery until the
// returned stop is called.
func sampleRSS(log *slog.Logger, stage string) (stop func()) {
	pid := os.Getpid()
	return every(rssSampleEvery, func() bool {
		log.Info(stage+" memory", "rss_mb", int(currentRSSMB(pid)), "peak_rss_mb", int(peakRSSMB(pid)))
		return true
	})
}

// refreshSteps is a refresh's phase times in seconds, in order.
func refreshSteps(steps []refresh.StepTime) string {
	return joinTimes(len(steps), func(i int) (string, time.Duration) { return steps[i].Name, steps[i].Took }, 1)
}

// replicateScans copies every scan to ? - 1 replica hosts (see
// buildKPIFleet). A bench fixture, not product SQL.
const replicateScans = `INSERT INTO scans (host_id, scan_id, scanned_at, received_at, hostname, os_id, os_version, os_pretty,
    os_ecosystem, kernel_running, kernels_installed, inventory_hash, heartbeat, package_count, owner, ring, criticality,
    internet_facing, tags, maintenance_window, warnings, schema_version)
SELECT concat(host_id, '-r', toString(r)), concat(scan_id, '-r', toString(r)),
    scanned_at + toIntervalSecond(cityHash64(host_id, r) % 43200), received_at, concat(hostname, '-r', toString(r)),
    os_id, os_version, os_pretty, os_ecosystem, kernel_running, kernels_installed, inventory_hash, heartbeat, package_count,
    owner, ring, criticality, internet_facing, tags, maintenance_window, warnings, schema_version
FROM scans ARRAY JOIN range(1, ?) AS r`

func queryCount(ctx context.Context, st store.Store, q string, dst ...any) error {
	rows, err := st.Query(ctx, q)
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

// stepKPI builds the KPI fleet (cfg.KPIHosts endpoints × cfg.KPIDays days)
// and times every KPI as dashboards read it (kpi.Run, by ring), against
// the goal of 100 ms at p95, and beside the same KPI computed from the
// exposure history when read (its _live view) once.
func stepKPI(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	dir := cfg.Work + "/kpi-fleet"
	defer os.RemoveAll(dir)
	st, err := openCHDB(ctx, cfg, dir, log)
	if err != nil {
		return err
	}
	defer st.Close()
	out.Info["backend"] = "chdb"
	if err := buildKPIFleet(ctx, cfg, st, log, out); err != nil {
		return err
	}
	// Incremental refreshes after one more day of scans (issue 16).
	if err := measureRefreshDays(ctx, st, log, out); err != nil {
		return err
	}
	const goalMS = 100.0
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
		out.Metrics = append(out.Metrics,
			ratio(Metric{Name: k.Name + " p95", Value: p95, Unit: "ms", Better: "lower",
				Note: fmt.Sprintf("%d reps, p50 %.1f ms, %d rows (by ring)", cfg.Reps, p50, rowsN)}, "ceiling: the goal, 100 ms", goalMS))
	}
	// The same KPI computed when read, from the materialized exposure
	// history (what the refresh copies into the table dashboards read).
	t0 := time.Now()
	rows, err := st.Query(ctx, "SELECT * FROM kpi_mttr_live WHERE dimension = 'ring'")
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
	live := ms(time.Since(t0))
	var mttr float64
	for _, m := range out.Metrics {
		if m.Name == "mttr p95" {
			mttr = m.Value
		}
	}
	out.Metrics = append(out.Metrics, ratio(Metric{Name: "mttr p95 vs computing it when read", Value: mttr, Unit: "ms", Better: "lower"},
		"peer: kpi_mttr_live (same definition, computed when read), one run", live))
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

// readHostFindings reads every host's findings through
// match.ReadHostFindings and counts, per host, those that expose it: all of
// its inventory's findings but the installed kernel images it is not
// running, which needs the host's kernel state of each kernel image. The
// other findings are the inventory's rows, delivered to every host by
// reference and not copied per host.
func readHostFindings(ctx context.Context, st store.Store, log *slog.Logger) (match.ReadStats, uint64, error) {
	var exposed uint64
	rd, err := match.ReadHostFindings(ctx, st, match.ReadConfig{Log: log}, func(h *match.Host, inv *match.InventoryFindings) error {
		n := len(inv.Findings)
		for _, i := range inv.Kernel {
			if inv.Findings[i].KernelState(h.KernelRunning) == "not_running" {
				n--
			}
		}
		exposed += uint64(n)
		return nil
	})
	return rd, exposed, err
}

// stepTimes lists a match run's statements with their seconds.
func stepTimes(steps []match.StepTime) string {
	return joinTimes(len(steps), func(i int) (string, time.Duration) { return steps[i].Name, steps[i].Took }, 3)
}

// joinTimes lists n named durations ("name 1.234s; ..."), in seconds with
// prec decimals.
func joinTimes(n int, at func(i int) (string, time.Duration), prec int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString("; ")
		}
		name, took := at(i)
		fmt.Fprintf(&b, "%s %.*fs", name, prec, took.Seconds())
	}
	return b.String()
}

// phaseHWM records the process's peak RSS as each phase ends: which phase
// set the step's peak.
type phaseHWM struct{ b strings.Builder }

func (p *phaseHWM) mark(phase string) {
	if p.b.Len() > 0 {
		p.b.WriteString(", ")
	}
	fmt.Fprintf(&p.b, "%.0f MB after %s", peakRSSMB(os.Getpid()), phase)
}

func (p *phaseHWM) String() string { return "peak " + p.b.String() }
