package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// services starts the test servers through scripts/services.sh (run from
// the repo root) and remembers which ones it started, so that only those
// are stopped: a server someone else brought up stays up.
type services struct {
	log     *slog.Logger
	runDir  string
	started []string
}

var serviceAddrs = map[string]string{"clickhouse": "127.0.0.1:19000", "kafka": "127.0.0.1:19092"}

func (s *services) ensure(ctx context.Context, name string) (addr string, startedByUs bool, err error) {
	addr = serviceAddrs[name]
	if exec.CommandContext(ctx, "bash", "scripts/services.sh", "status", name).Run() == nil {
		s.log.Info("service already up; it will be left running", "service", name, "pid", servicePID(s.runDir, name))
		return addr, false, nil
	}
	// A server whose recorded process is alive is someone else's even when
	// its status probe failed (a slow answer on a loaded machine): `up`
	// waits for it and this run must not stop it afterwards (a run did,
	// under load, and took the shared broker down).
	before := servicePID(s.runDir, name)
	preexisting := before > 0 && syscall.Kill(before, 0) == nil
	s.log.Info("starting service", "service", name, "already_running_pid", before)
	cmd := exec.CommandContext(ctx, "bash", "scripts/services.sh", "up", name)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// Recorded before checking the result: a half-started server is ours
	// to stop too.
	if !preexisting {
		s.started = append(s.started, name)
	}
	if err := cmd.Run(); err != nil {
		return "", !preexisting, fmt.Errorf("services.sh up %s: %w", name, err)
	}
	return addr, !preexisting, nil
}

// stopStarted stops what ensure started, by the PID file services.sh wrote
// for it. It runs with its own context: the run's may be cancelled.
func (s *services) stopStarted() {
	for i := len(s.started) - 1; i >= 0; i-- {
		name := s.started[i]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		s.log.Info("stopping service this run started", "service", name, "pid", servicePID(s.runDir, name))
		cmd := exec.CommandContext(ctx, "bash", "scripts/services.sh", "down", name)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			s.log.Error("stopping service failed", "service", name, "err", err)
		}
		cancel()
	}
}

// servicePID reads the PID services.sh recorded (0 when none).
func servicePID(runDir, name string) int {
	b, err := os.ReadFile(filepath.Join(runDir, name, name+".pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// peakRSSMB is a running process's high-water RSS (VmHWM) in MB.
func peakRSSMB(pid int) float64 { return procStatusMB(pid, "VmHWM:") }

// currentRSSMB is a running process's RSS (VmRSS) in MB.
func currentRSSMB(pid int) float64 { return procStatusMB(pid, "VmRSS:") }

func procStatusMB(pid int, field string) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

func cacheDir() string {
	if d := os.Getenv("PATCHGRID_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "patchgrid")
}

func runDir() string {
	if d := os.Getenv("PATCHGRID_RUN_DIR"); d != "" {
		return d
	}
	return filepath.Join(cacheDir(), "run")
}

func chdbLib() string {
	if p := os.Getenv("PATCHGRID_CHDB_LIB"); p != "" {
		return p
	}
	return filepath.Join(cacheDir(), "chdb", "lib", "libchdb.so")
}

// installOSVScanner builds the peer once (bench/scripts/install-osv-scanner.sh)
// and returns its path.
func installOSVScanner(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", "bench/scripts/install-osv-scanner.sh")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("bench/scripts/install-osv-scanner.sh: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// cleanupRun drops what this run's steps create on the shared servers when
// a killed step could not: databases pgbench_<run>_* and topics
// pgbench.<run>.*. Steps that end normally have removed them already.
func cleanupRun(cfg Config, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if cfg.ClickHouse != "" {
		st, err := store.Open(ctx, store.Config{Backend: "clickhouse", Addr: cfg.ClickHouse, Database: "default"})
		if err != nil {
			log.Warn("cleanup: open ClickHouse", "err", err)
		} else {
			for _, db := range []string{"pgbench_" + cfg.RunID + "_e2e", "pgbench_" + cfg.RunID + "_ceiling"} {
				if err := st.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
					log.Warn("cleanup: drop database", "db", db, "err", err)
				}
			}
			st.Close()
		}
	}
	if cfg.Kafka != "" {
		conn, err := kafka.DialContext(ctx, "tcp", cfg.Kafka)
		if err != nil {
			log.Warn("cleanup: dial Kafka", "err", err)
			return
		}
		parts, err := conn.ReadPartitions()
		conn.Close()
		if err != nil {
			log.Warn("cleanup: list topics", "err", err)
			return
		}
		seen := map[string]bool{}
		var ours []string
		for _, p := range parts {
			if strings.HasPrefix(p.Topic, "pgbench."+cfg.RunID+".") && !seen[p.Topic] {
				seen[p.Topic] = true
				ours = append(ours, p.Topic)
			}
		}
		if len(ours) > 0 {
			log.Info("cleanup: deleting topics a failed step left", "topics", ours)
			if err := deleteTopics(cfg.Kafka, ours...); err != nil {
				log.Warn("cleanup: delete topics", "err", err)
			}
		}
	}
}
