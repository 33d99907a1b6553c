package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/kafkaconn"
	"github.com/patchgrid/patchgrid/schemas/store"
)

// stepIngestE2E: simulator → real Kafka → real consumer → ClickHouse server,
// beside the ceiling: the same rows, read back, inserted into the same
// server in the same run with store.Insert in the consumer's batch size.
func stepIngestE2E(ctx context.Context, cfg Config, log *slog.Logger, out *StepOutput) error {
	dbE2E, dbCeil := "pgbench_"+cfg.RunID+"_e2e", "pgbench_"+cfg.RunID+"_ceiling"
	topic := "pgbench." + cfg.RunID + ".scans"
	brokers := []string{cfg.Kafka}
	open := func(db string) (store.Store, error) {
		st, err := store.Open(ctx, store.Config{Backend: "clickhouse", Addr: cfg.ClickHouse, Database: db})
		if err != nil {
			return nil, err
		}
		if _, err := schemas.Migrate(ctx, st, quiet(log)); err != nil {
			st.Close()
			return nil, err
		}
		return st, nil
	}
	st, err := open(dbE2E)
	if err != nil {
		return err
	}
	defer func() {
		// Our own databases and topics only; best effort, on a fresh context.
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, db := range []string{dbE2E, dbCeil} {
			if err := st.Exec(cctx, "DROP DATABASE IF EXISTS "+db); err != nil {
				log.Warn("drop database", "db", db, "err", err)
			}
		}
		st.Close()
		if err := deleteTopics(cfg.Kafka, topic, topic+".dlq"); err != nil {
			log.Warn("delete topics", "err", err)
		}
	}()
	if v, err := st.ServerVersion(ctx); err == nil {
		out.Info["server_version"] = v.Text
	}
	for _, t := range []struct {
		name string
		n    int
	}{{topic, 4}, {topic + ".dlq", 1}} {
		if err := publish.EnsureTopic(ctx, brokers, t.name, t.n); err != nil {
			return err
		}
	}
	in, err := loadFleetInputs(ctx, cfg, false, log)
	if err != nil {
		return err
	}
	fleet, err := newFleet(in, cfg.E2EHosts, cfg.Days, log)
	if err != nil {
		return err
	}
	prod, err := publish.New(producerConfig(brokers, topic))
	if err != nil {
		return err
	}
	stopProf, err := startCPUProfile(log, "publish")
	if err != nil {
		return err
	}
	pids := map[string]int{"kafka": servicePID(cfg.RunDir, "kafka"), "clickhouse": servicePID(cfg.RunDir, "clickhouse")}
	cpu := newCPUMeter(pids)
	t0 := time.Now()
	sum, err := fleet.Run(ctx, simulate.PublishSink{P: prod}, simulate.RunOptions{ProgressInterval: -1})
	if cerr := prod.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	pubD := time.Since(t0)
	stopProf()
	cpu.phase(out.Info, "publish")
	log.Info("published", "messages", sum.Messages, "bytes", sum.Bytes, "took", pubD.Round(time.Millisecond))

	if stopProf, err = startCPUProfile(log, "consume"); err != nil {
		return err
	}
	t0 = time.Now()
	ist, err := ingest(ctx, st, brokers, topic, log)
	stopProf()
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	ingD := time.Since(t0)
	cpu.phase(out.Info, "consume")
	rows := ist.ScanRows + ist.PackageRows
	e2eRate := float64(rows) / ingD.Seconds()
	log.Info("consumed", "messages", ist.Consumed, "rows", rows, "took", ingD.Round(time.Millisecond))
	out.Info["messages"], out.Info["message_bytes"], out.Info["scan_rows"], out.Info["package_rows"], out.Info["dead_lettered"] =
		sum.Messages, sum.Bytes, ist.ScanRows, ist.PackageRows, ist.DeadLettered
	out.Info["publish_s"], out.Info["consume_s"] = pubD.Seconds(), ingD.Seconds()

	// What reading the topic alone costs: the floor under the consumer's
	// time that no work on decoding or inserting can remove.
	fetchD, fetchBytes, err := drainTopic(ctx, brokers, topic, sum.Messages)
	if err != nil {
		return fmt.Errorf("kafka fetch floor: %w", err)
	}
	cpu.phase(out.Info, "fetch_floor")
	out.Info["fetch_floor_s"] = fetchD.Seconds()
	log.Info("kafka fetch floor", "messages", sum.Messages, "bytes", fetchBytes, "took", fetchD.Round(time.Millisecond))

	ceil, err := open(dbCeil)
	if err != nil {
		return err
	}
	defer ceil.Close()
	var insD time.Duration
	var inserted int64
	for _, table := range []string{"scans", "inventory_packages"} {
		d, n, err := copyTable(ctx, st, ceil, table, 100000)
		if err != nil {
			return err
		}
		insD += d
		inserted += n
	}
	cpu.phase(out.Info, "ceiling")
	ceilRate := float64(inserted) / insD.Seconds()
	log.Info("ceiling inserted", "rows", inserted, "took", insD.Round(time.Millisecond))
	out.Info["ceiling_rows"] = inserted

	chRSS := peakRSSMB(servicePID(cfg.RunDir, "clickhouse"))
	kRSS := peakRSSMB(servicePID(cfg.RunDir, "kafka"))
	out.Metrics = append(out.Metrics,
		ratio(Metric{Name: "end-to-end ingest (consumer, Kafka → ClickHouse)", Value: e2eRate, Unit: "rows/s", Better: "higher",
			Note: fmt.Sprintf("%d hosts × %d days, %d messages, %.0f msgs/s", cfg.E2EHosts, cfg.Days, ist.Consumed, float64(ist.Consumed)/ingD.Seconds())},
			"ceiling: store.Insert of the same rows into the same server", ceilRate),
		ratio(Metric{Name: "end-to-end ingest incl. publish", Value: float64(rows) / (pubD + ingD).Seconds(), Unit: "rows/s", Better: "higher",
			Note: fmt.Sprintf("simulate+publish %.1fs, consume %.1fs", pubD.Seconds(), ingD.Seconds())},
			"ceiling: store.Insert of the same rows into the same server", ceilRate),
		// Host scans per second (one message is one host's scan or
		// heartbeat), beside the rate at which the topic can be read at all.
		ratio(Metric{Name: "end-to-end ingest, host scans/s", Value: float64(ist.Consumed) / ingD.Seconds(), Unit: "hosts/s", Better: "higher",
			Note: fmt.Sprintf("%d endpoints × %d days: %d scans and heartbeats consumed in %.1fs", cfg.E2EHosts, cfg.Days, ist.Consumed, ingD.Seconds())},
			"floor: Kafka fetch of the same messages, messages/s", float64(sum.Messages)/fetchD.Seconds()),
		Metric{Name: "Kafka fetch floor (kafka-go group reader, messages discarded)", Value: float64(rows) / fetchD.Seconds(), Unit: "rows/s", Better: "higher",
			Note: fmt.Sprintf("reading the %d messages (%.0f MB) alone took %.2fs of the consumer's %.2fs", sum.Messages, float64(fetchBytes)/1e6, fetchD.Seconds(), ingD.Seconds())},
		Metric{Name: "ClickHouse server peak RSS (VmHWM, whole server lifetime)", Value: chRSS, Unit: "MB", Better: "lower"},
		Metric{Name: "Kafka broker peak RSS (VmHWM, whole broker lifetime)", Value: kRSS, Unit: "MB", Better: "lower"},
	)
	return nil
}

// cpuMeter reads the CPU time (user+system) of this process and of the
// services per phase, so a figure can be explained by who was busy: on a
// 2-core machine the broker and the server compete with the consumer.
type cpuMeter struct {
	pids map[string]int
	last map[string]float64
}

func newCPUMeter(pids map[string]int) *cpuMeter {
	m := &cpuMeter{pids: pids}
	m.last = m.read()
	return m
}

func (m *cpuMeter) read() map[string]float64 {
	now := map[string]float64{"pgbench": selfCPUSeconds()}
	for name, pid := range m.pids {
		now[name] = procCPUSeconds(pid)
	}
	return now
}

// phase records the CPU seconds each process used since the last call as
// info["<phase>_cpu_s_<process>"].
func (m *cpuMeter) phase(info map[string]any, phase string) {
	now := m.read()
	for name, v := range now {
		info[phase+"_cpu_s_"+name] = math.Round((v-m.last[name])*100) / 100
	}
	m.last = now
}

func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// procCPUSeconds is utime+stime of a process from /proc/PID/stat, in
// seconds (USER_HZ is 100 on Linux); 0 when unknown.
func procCPUSeconds(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64) // field 14
	st, _ := strconv.ParseFloat(f[12], 64) // field 15
	return (ut + st) / 100
}

// startCPUProfile writes a CPU profile of one phase of this step to
// $PGBENCH_PROFILE_DIR/e2e-<phase>.cpu.pprof when that variable is set, so
// the phases can be profiled without changing what is measured otherwise.
// The returned stop is never nil.
func startCPUProfile(log *slog.Logger, phase string) (stop func(), err error) {
	dir := os.Getenv("PGBENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}, nil
	}
	path := filepath.Join(dir, "e2e-"+phase+".cpu.pprof")
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile of %s: %w", phase, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Warn("cpu profile", "path", path, "err", err)
		}
		log.Info("cpu profile written", "phase", phase, "path", path)
	}, nil
}

// copyTable reads every row of table from src and inserts them into dst in
// batches, returning only the time spent in Insert.
func copyTable(ctx context.Context, src, dst store.Store, table string, batch int) (time.Duration, int64, error) {
	rows, err := src.Query(ctx, "SELECT * FROM "+table)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	cols := rows.Columns()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	var spent time.Duration
	var n int64
	buf := make([][]any, 0, batch)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		t0 := time.Now()
		err := dst.Insert(ctx, table, names, buf)
		spent += time.Since(t0)
		n += int64(len(buf))
		buf = buf[:0]
		return err
	}
	for rows.Next() {
		ptrs := make([]any, len(cols))
		for i, c := range cols {
			p, err := newScanTarget(c.Type)
			if err != nil {
				return 0, 0, fmt.Errorf("%s.%s: %w", table, c.Name, err)
			}
			ptrs[i] = p
		}
		if err := rows.Scan(ptrs...); err != nil {
			return 0, 0, fmt.Errorf("read %s: %w", table, err)
		}
		row := make([]any, len(cols))
		for i, p := range ptrs {
			row[i] = deref(p)
		}
		buf = append(buf, row)
		if len(buf) == batch {
			if err := flush(); err != nil {
				return 0, 0, fmt.Errorf("insert %s: %w", table, err)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", table, err)
	}
	if err := flush(); err != nil {
		return 0, 0, fmt.Errorf("insert %s: %w", table, err)
	}
	return spent, n, nil
}

func newScanTarget(typ string) (any, error) {
	switch {
	case typ == "String":
		return new(string), nil
	case typ == "Array(String)":
		return new([]string), nil
	case strings.HasPrefix(typ, "DateTime"):
		return new(time.Time), nil
	case typ == "UInt8":
		return new(uint8), nil
	case typ == "UInt16":
		return new(uint16), nil
	case typ == "UInt32":
		return new(uint32), nil
	case typ == "UInt64":
		return new(uint64), nil
	}
	return nil, fmt.Errorf("column type %s not handled by the ceiling copy", typ)
}

func deref(p any) any {
	switch v := p.(type) {
	case *string:
		return *v
	case *[]string:
		if *v == nil {
			return []string{}
		}
		return *v
	case *time.Time:
		return *v
	case *uint8:
		return *v
	case *uint16:
		return *v
	case *uint32:
		return *v
	case *uint64:
		return *v
	}
	return nil
}

// drainTopic reads n messages of topic as a new consumer group, with the
// consumer's reader settings, and discards them: the time Kafka transfer and
// kafka-go's parsing alone take. Nothing is committed.
func drainTopic(ctx context.Context, brokers []string, topic string, n int64) (time.Duration, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, GroupID: "pgbench-fetch-floor", Topic: topic,
		// The consumer's dialer (its reads buffered as the consumer's are)
		// and settings in drain mode (ingest/consumer.Config).
		Dialer:   kafkaconn.Conn{DialTimeout: 10 * time.Second}.Dialer("pgbench-fetch-floor"),
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 50 * time.Millisecond, StartOffset: kafka.FirstOffset,
	})
	var bytes int64
	for i := int64(0); i < n; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			r.Close()
			return 0, 0, fmt.Errorf("message %d of %d from %s: %w", i+1, n, topic, err)
		}
		bytes += int64(len(m.Value))
	}
	if err := r.Close(); err != nil {
		return 0, 0, fmt.Errorf("close reader of %s: %w", topic, err)
	}
	return time.Since(t0), bytes, nil
}

// deleteTopics removes this run's topics through the controller.
func deleteTopics(addr string, topics ...string) error {
	conn, err := kafka.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		return err
	}
	cc, err := kafka.Dial("tcp", net.JoinHostPort(ctrl.Host, strconv.Itoa(ctrl.Port)))
	if err != nil {
		return err
	}
	defer cc.Close()
	return cc.DeleteTopics(topics...)
}
