package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchgrid/patchgrid/scanner/inventory"
	"github.com/patchgrid/patchgrid/scanner/publish"
	schema "github.com/patchgrid/patchgrid/schemas/inventory"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// scanState is what --state-file remembers between runs.
type scanState struct {
	HostID        string    `json:"host_id"`
	InventoryHash string    `json:"inventory_hash"`
	FullScanID    string    `json:"full_scan_id"`
	FullScanAt    time.Time `json:"full_scan_at"`
}

func runScan(ctx context.Context, env *cliEnv, args []string) int {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	kf := addKafkaFlags(fs, env)
	var (
		paths       stringList
		root        = fs.String("root", "/", "filesystem root whose package databases are read")
		sbomFile    = fs.String("sbom", "", "read packages from this SBOM (CycloneDX/SPDX JSON or XML, .gz ok) instead of the root")
		hostID      = fs.String("host-id", "", "host id (default: the root's machine-id; sbom:<file> for --sbom)")
		owner       = fs.String("owner", "", "owning team")
		ring        = fs.String("ring", "", "deployment ring: test, pilot, prod")
		criticality = fs.Uint("criticality", 0, "asset criticality 1 (low) .. 4 (critical), 0 unknown")
		internet    = fs.Bool("internet-facing", false, "the host is reachable from the internet")
		tags        = fs.String("tags", "", "comma-separated tags")
		window      = fs.String("maintenance-window", "", `maintenance window, e.g. "Sun 02:00-04:00 UTC"`)
		brokers     = fs.String("kafka-brokers", "127.0.0.1:9092", "comma-separated Kafka brokers")
		topic       = fs.String("topic", publish.DefaultTopic, "Kafka topic for scans")
		partitions  = fs.Int("create-topic-partitions", 0, "create the topic with this many partitions if missing (0: expect it to exist)")
		dryRun      = fs.Bool("dry-run", false, "print the scan as JSON instead of publishing it")
		stateFile   = fs.String("state-file", "", "remembers the last inventory hash: an unchanged inventory is sent as a small heartbeat")
		fullEvery   = fs.Duration("full-every", 24*time.Hour, "with --state-file, send the full list at least this often")
		osName      = fs.String("os", "", "OS release the packages come from, e.g. Debian:12, Ubuntu:22.04, Alpine:v3.18, rhel:9 (case-insensitive); overrides the root's os-release, an SBOM's metadata and an os-release beside an inventory file")
	)
	fs.Var(&paths, "path", "directory searched for language lockfiles (repeatable)")
	rf := addReportFlags(fs, env) // --report, inventory files, --dry-run-format: scanreport.go
	if code, ok := parseFlags(env, fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "patchgrid scan: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	if *criticality > schema.MaxCriticality {
		fmt.Fprintf(env.stderr, "patchgrid scan: --criticality %d out of range 0..%d\n", *criticality, schema.MaxCriticality)
		return exitUsage
	}
	if err := rf.check(*sbomFile, *dryRun); err != nil {
		fmt.Fprintf(env.stderr, "patchgrid scan: %v\n", err)
		return exitUsage
	}
	meta := schema.Meta{Owner: *owner, Ring: *ring, Criticality: uint8(*criticality), InternetFacing: *internet, MaintenanceWindow: *window}
	for _, t := range strings.Split(*tags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			meta.Tags = append(meta.Tags, t)
		}
	}

	cfg := inventory.Config{Root: *root, Paths: paths, SBOM: *sbomFile, HostID: *hostID, OS: *osName, Meta: meta}
	s, err := rf.collect(ctx, cfg)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid scan: %v\n", err)
		return exitFailure
	}
	if rf.report {
		return rf.runReport(ctx, env, s, cfg)
	}
	full := s
	var prev scanState
	if *stateFile != "" {
		if prev, err = readState(*stateFile); err != nil {
			fmt.Fprintf(env.stderr, "patchgrid scan: %v (sending a full scan)\n", err)
		}
		if prev.HostID == s.HostID && prev.InventoryHash == s.InventoryHash && s.ScannedAt.Sub(prev.FullScanAt) < *fullEvery {
			hb := *s
			hb.Heartbeat, hb.Packages = true, nil
			s = &hb
		}
	}
	msg, err := schema.Encode(s)
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid scan: %v\n", err)
		return exitFailure
	}
	kind := "full scan"
	if s.Heartbeat {
		kind = "heartbeat"
	}
	summary := fmt.Sprintf("%s of host %s: %d packages (%d in inventory %s), %d warnings, %d bytes encoded",
		kind, s.HostID, len(s.Packages), len(full.Packages), s.InventoryHash[:12], len(s.Warnings), len(msg))

	if *dryRun {
		if err := rf.writeDryRun(env.stdout, s); err != nil {
			fmt.Fprintf(env.stderr, "patchgrid scan: %v\n", err)
			return exitFailure
		}
		env.logger(nil).Info("dry run", "scan", summary)
		return exitOK
	}

	brokerList := splitList(*brokers)
	kconn, err := kf.config()
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid scan: %v\n", err)
		return exitUsage
	}
	if *partitions > 0 {
		if err := publish.EnsureTopicWith(ctx, kconn, brokerList, *topic, *partitions); err != nil {
			fmt.Fprintf(env.stderr, "patchgrid scan: %v\n", err)
			return exitFailure
		}
	}
	p, err := publish.New(publish.Config{Brokers: brokerList, Topic: *topic, Conn: kconn})
	if err != nil {
		fmt.Fprintf(env.stderr, "patchgrid scan: %v\n", err)
		return exitUsage
	}
	pubErr := p.PublishEncoded(ctx, []byte(s.HostID), msg)
	if err := p.Close(); err != nil && pubErr == nil {
		pubErr = err
	}
	if pubErr != nil {
		fmt.Fprintf(env.stderr, "patchgrid scan: %v\n", pubErr)
		return exitFailure
	}
	if *stateFile != "" && !s.Heartbeat {
		st := scanState{HostID: s.HostID, InventoryHash: s.InventoryHash, FullScanID: s.ScanID, FullScanAt: s.ScannedAt}
		if err := writeState(*stateFile, st); err != nil {
			// The scan went out; only the next heartbeat is lost.
			fmt.Fprintf(env.stderr, "patchgrid scan: published, but %v\n", err)
		}
	}
	env.logger(nil).Info("published", "scan", summary, "topic", *topic)
	return exitOK
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func readState(path string) (scanState, error) {
	var st scanState
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read state file: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return scanState{}, fmt.Errorf("state file %s: %w", path, err)
	}
	return st, nil
}

// writeState replaces the state file atomically, so a crash never leaves a
// half-written file that would stop heartbeats.
func writeState(path string, st scanState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".patchgrid-state-*")
	if err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	return nil
}
