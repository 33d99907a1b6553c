package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	schema "github.com/patchgrid/patchgrid/schemas/inventory"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func scanCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), &cliEnv{
		stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return env[k] },
	}, append([]string{"scan"}, args...))
	return code, out.String(), errOut.String()
}

// fakeDebianRoot is a filesystem root whose dpkg database is the shared real
// Debian 12 inventory.
func fakeDebianRoot(t *testing.T) string {
	t.Helper()
	status, err := os.ReadFile(filepath.Join(testenv.SharedData(t), "inventories/dpkg/debian12-bookworm-host-b.status"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for rel, content := range map[string]string{
		"etc/os-release":      "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
		"etc/machine-id":      "b1946ac92492d2347c6235b4d2611184\n",
		"etc/hostname":        "bookworm-b\n",
		"var/lib/dpkg/status": string(status),
	} {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestScanDryRun(t *testing.T) {
	root := fakeDebianRoot(t)
	code, out, errOut := scanCLI(t, map[string]string{"PATCHGRID_OWNER": "team-web"},
		"--dry-run", "--dry-run-format", "scan", "--root", root, "--ring", "prod", "--criticality", "3", "--internet-facing", "--tags", "pci, web")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var s schema.Scan
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Packages) != 745 || s.HostID != "b1946ac92492d2347c6235b4d2611184" || s.OS.Ecosystem != "Debian:12" || s.Heartbeat {
		t.Fatalf("%d packages, host %q, OS %+v", len(s.Packages), s.HostID, s.OS)
	}
	want := schema.Meta{Owner: "team-web", Ring: "prod", Criticality: 3, InternetFacing: true, Tags: []string{"pci", "web"}}
	if s.Meta.Owner != want.Owner || s.Meta.Ring != want.Ring || s.Meta.Criticality != 3 || !s.Meta.InternetFacing || strings.Join(s.Meta.Tags, "|") != "pci|web" {
		t.Errorf("meta %+v", s.Meta)
	}
	if !strings.Contains(errOut, "745 packages") || !strings.Contains(errOut, "bytes encoded") {
		t.Errorf("stderr %q", errOut)
	}
}

func TestScanUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--criticality", "7"}, {"--nope"}, {"extra"}} {
		if code, _, _ := scanCLI(t, nil, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, errOut := scanCLI(t, nil, "--dry-run", "--root", t.TempDir()); code != exitFailure || !strings.Contains(errOut, "machine-id") {
		t.Errorf("root without machine-id: exit %d %q", code, errOut)
	}
}

// TestScanPublishesThenHeartbeats publishes to an in-process broker: the
// first run sends the full list, the second (nothing changed) a heartbeat
// with the same inventory hash.
func TestScanPublishesThenHeartbeats(t *testing.T) {
	root := fakeDebianRoot(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := strings.Join(c.ListenAddrs(), ",")
	state := filepath.Join(t.TempDir(), "state.json")
	args := []string{"--root", root, "--kafka-brokers", brokers, "--topic", "scans", "--create-topic-partitions", "3", "--state-file", state}
	for i := range 2 {
		if code, _, errOut := scanCLI(t, nil, args...); code != exitOK {
			t.Fatalf("run %d: exit %d: %s", i, code, errOut)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("scans"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*schema.Scan
	for len(got) < 2 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d messages", len(got))
		}
		fs.EachRecord(func(r *kgo.Record) {
			s, err := schema.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		})
	}
	full, hb := got[0], got[1]
	if full.Heartbeat || len(full.Packages) != 745 || !hb.Heartbeat || len(hb.Packages) != 0 || hb.InventoryHash != full.InventoryHash || hb.ScanID == full.ScanID {
		t.Fatalf("full: heartbeat=%v %d packages; second: heartbeat=%v %d packages, hashes %s %s",
			full.Heartbeat, len(full.Packages), hb.Heartbeat, len(hb.Packages), full.InventoryHash, hb.InventoryHash)
	}
	st, err := readState(state)
	if err != nil || st.FullScanID != full.ScanID || st.InventoryHash != full.InventoryHash {
		t.Fatalf("state %+v %v", st, err)
	}
}

// TestScanOSFlagAndPartialInventory: --os gives a root without os-release
// its release (case-insensitive); a dpkg status the reader cannot finish is
// exit 1 naming the file, with nothing printed or published.
func TestScanOSFlagAndPartialInventory(t *testing.T) {
	root := fakeDebianRoot(t)
	if err := os.Remove(filepath.Join(root, "etc/os-release")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := scanCLI(t, nil, "--dry-run", "--dry-run-format", "scan", "--root", root, "--os", "debian:12")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var s schema.Scan
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.OS.Ecosystem != "Debian:12" || len(s.Packages) != 745 || s.Packages[0].Ecosystem != "Debian:12" {
		t.Errorf("--os debian:12: OS %+v, %d packages, first %+v", s.OS, len(s.Packages), s.Packages[0])
	}
	if code, _, errOut := scanCLI(t, nil, "--dry-run", "--root", root, "--os", "plan9:4"); code == exitOK || !strings.Contains(errOut, "plan9:4") {
		t.Errorf("bad --os: exit %d, %s", code, errOut)
	}

	status := filepath.Join(root, "var/lib/dpkg/status")
	b, err := os.ReadFile(status)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b[len(b)/2:], []byte("\nDescription: ")) + len(b)/2 + len("\nDescription: ")
	long := append(append(append([]byte{}, b[:i]...), bytes.Repeat([]byte("x"), 5<<20)...), b[i:]...)
	if err := os.WriteFile(status, long, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = scanCLI(t, nil, "--dry-run", "--root", root, "--os", "Debian:12")
	if code != exitFailure || out != "" || !strings.Contains(errOut, "/var/lib/dpkg/status") {
		t.Errorf("partial dpkg status: exit %d, %d bytes out, stderr %s", code, len(out), errOut)
	}
}
