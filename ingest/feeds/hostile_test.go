package feeds

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed/feedtest"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// Hostile inputs, built without spending CPU: a gzip stream may hold many
// members, and a reader returns their concatenation, so one compressed MiB
// of zeros repeated gives a 1 MB file that inflates to 1 GB.

var zerosMiB = func() []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	w.Write(make([]byte, 1<<20))
	w.Close()
	return b.Bytes()
}()

// gzipMembers writes one gzip member per part, then reps members of a MiB
// of zeros, then the tail parts.
func gzipMembers(t testing.TB, head []byte, reps int, tail []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	member := func(p []byte) {
		w := gzip.NewWriter(&out)
		w.Write(p)
		w.Close()
	}
	if head != nil {
		member(head)
	}
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(make([]byte, 1<<20))
	w.Close()
	for range reps {
		out.Write(z.Bytes())
	}
	if tail != nil {
		member(tail)
	}
	return out.Bytes()
}

// writeBombs writes the decompression bombs of this file into dir, each
// about 1 MB on disk, and returns their paths.
func writeBombs(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out[name] = p
	}
	// 1 GiB of zeros in a .json.gz.
	write("bomb.json.gz", gzipMembers(t, nil, 1024, nil))
	// One 500 MiB tar member (under MaxDocument, so the stream budget is
	// what refuses it): header, the zeros, then the end-of-archive blocks.
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	tw.WriteHeader(&tar.Header{Name: "vulns/x.json", Mode: 0o644, Size: 500 << 20, Typeflag: tar.TypeReg})
	write("bomb.tar.gz", gzipMembers(t, hdr.Bytes()[:512], 500, make([]byte, 1024)))
	// A zip whose 1000 members each inflate 1 MiB (1 KiB each compressed):
	// every header is honest, only the total is hostile.
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	for i := range 1000 {
		w, _ := zw.CreateRaw(&zip.FileHeader{Name: fmt.Sprintf("m%04d.json", i), Method: zip.Deflate,
			CRC32: crc32Zeros, CompressedSize64: uint64(len(zerosMiB)), UncompressedSize64: 1 << 20})
		w.Write(zerosMiB)
	}
	zw.Close()
	write("many.zip", zb.Bytes())
	// A zip with one member declaring 200 MiB from 200 KiB of deflate.
	var one bytes.Buffer
	fw, _ := flate.NewWriter(&one, flate.BestSpeed)
	zeros := make([]byte, 1<<20)
	for range 200 {
		fw.Write(zeros)
	}
	fw.Close()
	var zb2 bytes.Buffer
	zw = zip.NewWriter(&zb2)
	w, _ := zw.CreateRaw(&zip.FileHeader{Name: "big.json", Method: zip.Deflate, CompressedSize64: uint64(one.Len()), UncompressedSize64: 200 << 20})
	w.Write(one.Bytes())
	zw.Close()
	write("one.zip", zb2.Bytes())
	return out
}

var crc32Zeros = crc32.ChecksumIEEE(make([]byte, 1<<20))

// TestBombsRejected: every bomb is refused with ErrInputLimit naming the
// file, and the limits are what refuse it (not a later parse error).
func TestBombsRejected(t *testing.T) {
	dir := t.TempDir()
	for name, p := range writeBombs(t, dir) {
		t.Run(name, func(t *testing.T) {
			var rejected []error
			err := walkLocation(context.Background(), p, Limits{}, func(d document) error {
				return nil
			}, func(n string, err error) {
				if !strings.HasPrefix(n, p) {
					t.Errorf("rejection names %q, want %q", n, p)
				}
				rejected = append(rejected, err)
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(rejected) != 1 || !errors.Is(rejected[0], ErrInputLimit) {
				t.Fatalf("rejections %v, want one ErrInputLimit", rejected)
			}
		})
	}
	// Honest archives within the limits still load: the same zip under a
	// budget that allows it.
	n := 0
	err := walkLocation(context.Background(), filepath.Join(dir, "many.zip"), Limits{MaxRatio: 2000}, func(d document) error {
		n++
		return nil
	}, func(n string, err error) { t.Errorf("rejected %s: %v", n, err) })
	if err != nil || n != 1000 {
		t.Fatalf("many.zip under a larger ratio: %d documents, %v", n, err)
	}
}

// TestBombMemory measures the peak RSS (VmHWM) of a child process that
// walks each 1 MB bomb under the default limits: the bomb cost
// 1.2 GB before it was refused; the bound is 100 MB.
func TestBombMemory(t *testing.T) {
	if os.Getenv("PATCHGRID_BOMB_CHILD") != "" {
		bombChild()
		return
	}
	if testing.Short() {
		t.Skip("starts a child process per bomb")
	}
	dir := t.TempDir()
	for name, p := range writeBombs(t, dir) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBombMemory$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PATCHGRID_BOMB_CHILD="+p, "GOGC=100")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: child: %v\n%s", name, err, out)
		}
		var hwm int64 = -1
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmHWM_kB="); ok {
				hwm, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		st, _ := os.Stat(p)
		t.Logf("%s (%d bytes): peak RSS %d MB", name, st.Size(), hwm>>10)
		if hwm < 0 || hwm > 100<<10 {
			t.Errorf("%s: peak RSS %d kB, want <= 100 MB\n%s", name, hwm, out)
		}
	}
}

func bombChild() {
	p := os.Getenv("PATCHGRID_BOMB_CHILD")
	rejected := 0
	_ = walkLocation(context.Background(), p, Limits{}, func(document) error { return nil },
		func(string, error) { rejected++ })
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			fmt.Printf("VmHWM_kB=%s\n", strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	if rejected != 1 {
		fmt.Println("not rejected")
		os.Exit(1)
	}
}

// laughs is a ~500-byte OSV YAML whose aliases expand to 9^9 scalars.
func laughs() string {
	var b strings.Builder
	b.WriteString("id: PYSEC-0000-1\nmodified: 2024-01-01T00:00:00Z\nd0: &d0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 8; i++ {
		p := fmt.Sprintf("*d%d", i-1)
		fmt.Fprintf(&b, "d%d: &d%d [%s%s]\n", i, i, strings.Repeat(p+", ", 8), p)
	}
	b.WriteString("database_specific: {x: *d8}\n")
	return b.String()
}

// A load of a tree holding a good record, a malformed record, a YAML bomb,
// a decompression bomb and a broken secdb loads the good record, skips the
// malformed one with a warning, and returns a *RejectedError naming the
// other three. Against the real ClickHouse server.
func TestLoadHostileClickHouse(t *testing.T) {
	st := testenv.ServerStore(t)
	ctx := context.Background()
	if _, err := schemas.Migrate(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeOSV(t, dir, "a.json", "2024-01-01T00:00:00Z", "1.0-1", "")
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"id":"","modified":"x"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "laughs.yaml"), []byte(laughs()), 0o644)
	os.WriteFile(filepath.Join(dir, "bomb.json.gz"), gzipMembers(t, nil, 1024, nil), 0o644)
	os.WriteFile(filepath.Join(dir, "secdb.yaml"), []byte("distroversion: v3.18\nreponame: main\npackages: [[[\n"), 0o644)
	l := &Loader{Store: st, Lookup: feedtest.Lookup, Log: slog.New(slog.DiscardHandler)}
	sums, err := l.Load(ctx, dir)
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("Load = %v, want a *RejectedError", err)
	}
	var names []string
	for _, in := range rej.Inputs {
		names = append(names, filepath.Base(in.Name))
	}
	if strings.Join(names, ",") != "bomb.json.gz,laughs.yaml,secdb.yaml" {
		t.Errorf("rejected %v, want bomb.json.gz, laughs.yaml, secdb.yaml\n%v", names, err)
	}
	for _, s := range sums {
		if s.Source == "osv" && (s.Loaded != 1 || s.Skipped != 2) {
			t.Errorf("osv summary %+v, want 1 loaded and 2 skipped (bad.json, laughs.yaml)", s)
		}
	}
	if got := currentFixed(t, st, "TEST-A"); len(got) != 1 {
		t.Errorf("TEST-A not loaded beside the rejected inputs: %v", got)
	}

	// A location that is one file yielding nothing is rejected whole.
	for _, name := range []string{"bad.json", "laughs.yaml"} {
		if _, err := l.Load(ctx, filepath.Join(dir, name)); !errors.As(err, &rej) || len(rej.Inputs) != 1 {
			t.Errorf("Load(%s) = %v, want it rejected", name, err)
		}
	}
}
