package feeds

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/patchgrid/patchgrid/ingest/feeds/epss"
)

// FuzzParseDocument: format detection and every parser behind it, on any
// member name and content: an error or a result, never a panic or hang.
func FuzzParseDocument(f *testing.F) {
	seeds := []struct{ name, data string }{
		{"a.json", `{"id":"GHSA-1","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}]}]}`},
		{"PYSEC-1.yaml", "id: PYSEC-1\nmodified: 2024-01-01T00:00:00Z\naffected:\n- package: {ecosystem: PyPI, name: x}\n  ranges: [{type: ECOSYSTEM, events: [{introduced: '0'}, {fixed: '1.0'}]}]\n"},
		{"v3.18/main.yaml", "distroversion: v3.18\nreponame: main\npackages:\n- pkg:\n    name: openssl\n    secfixes:\n      3.1.0-r1: [CVE-2023-1]\n"},
		{"DSA-list.txt", "[01 Jan 2024] DSA-1-1 openssl - security update\n\t{CVE-2024-1}\n\t[bookworm] - openssl 3.0.1-1\n"},
		{"kev.json", `{"catalogVersion":"1","count":1,"vulnerabilities":[{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10","dueDate":"2021-12-24"}]}`},
		{"epss.csv", "#model_version:v2025.03.14,score_date:2026-01-02T12:55:00Z\ncve,epss,percentile\nCVE-2021-44228,0.9,1.0\n"},
		{"x.json", `{"document":{"tracking":{"id":"RHSA-1"}},"product_tree":{},"vulnerabilities":[]}`},
		{"vuln/npm/1.json", `{"id":1,"module_name":"x","vulnerable_versions":"<1.0.0","patched_versions":">=1.0.0"}`},
	}
	for _, s := range seeds {
		f.Add(s.name, []byte(s.data))
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		d := document{name: name, inner: name, data: data}
		_, _ = parseDocument(d, func(epss.Score) error { return nil })
	})
}

// FuzzWalkArchive: any bytes as a .zip, .tar.gz or .gz file are walked
// under small limits with at most that many bytes decompressed and no
// panic.
func FuzzWalkArchive(f *testing.F) {
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	w, _ := zw.Create("a.json")
	w.Write([]byte(`{"id":"X-1"}`))
	w, _ = zw.Create("b.jsonl")
	w.Write([]byte("{\"id\":\"X-2\"}\n{\"id\":\"X-3\"}\n"))
	zw.Close()
	f.Add(uint8(0), z.Bytes())
	var tg bytes.Buffer
	gw := gzip.NewWriter(&tg)
	tw := tar.NewWriter(gw)
	tw.WriteHeader(&tar.Header{Name: "./vulns/a.json", Mode: 0o644, Size: 12, Typeflag: tar.TypeReg})
	tw.Write([]byte(`{"id":"X-1"}`))
	tw.Close()
	gw.Close()
	f.Add(uint8(1), tg.Bytes())
	var g bytes.Buffer
	gw = gzip.NewWriter(&g)
	gw.Write([]byte("{\"id\":\"X-1\"}\n"))
	gw.Close()
	f.Add(uint8(2), g.Bytes())
	dir := f.TempDir()
	lim := Limits{MaxDocument: 1 << 20, MaxTotal: 4 << 20, MaxRatio: 50, RatioFloor: 64 << 10}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		name := [...]string{"f.zip", "f.tar.gz", "f.jsonl.gz"}[kind%3]
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var total int64
		err := walkLocation(context.Background(), p, lim, func(d document) error {
			total += int64(len(d.data))
			return nil
		}, func(string, error) {})
		if err != nil {
			t.Fatalf("walk returned %v (only fn errors and cancellation may stop it)", err)
		}
		if total > lim.MaxTotal {
			t.Fatalf("%d bytes of documents from a walk limited to %d", total, lim.MaxTotal)
		}
	})
}
