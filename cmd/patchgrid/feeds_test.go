package main

import (
	"archive/zip"
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// feeds load over HTTP (an OSV all.zip and the KEV catalog from a local
// server), then feeds status, then a second load that downloads nothing
// new (ETag) and writes nothing.
func TestFeedsCLI(t *testing.T) {
	testenv.CHDBStore(t) // keeps the shared chDB directory alive
	cfg := testenv.CHDBConfig(t)
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("DEBIAN-CVE-2024-0001.json")
	w.Write([]byte(`{"id":"DEBIAN-CVE-2024-0001","modified":"2024-05-01T00:00:00Z","upstream":["CVE-2024-0001"],"affected":[{"package":{"ecosystem":"Debian:12","name":"openssl"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"3.0.13-1~deb12u1"}]}]}]}`))
	zw.Close()
	var downloads int
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"1"` {
			rw.WriteHeader(http.StatusNotModified)
			return
		}
		downloads++
		rw.Header().Set("ETag", `"1"`)
		switch r.URL.Path {
		case "/Debian/all.zip":
			rw.Write(zbuf.Bytes())
		case "/kev.json":
			rw.Write([]byte(`{"catalogVersion":"1","count":1,"vulnerabilities":[{"cveID":"CVE-2024-0001","dateAdded":"2024-05-02","dueDate":"2024-05-23","knownRansomwareCampaignUse":"Unknown"}]}`))
		default:
			http.NotFound(rw, r)
		}
	}))
	defer srv.Close()
	env := map[string]string{
		"PATCHGRID_STORE": "chdb", "PATCHGRID_DATA_DIR": cfg.DataDir, "PATCHGRID_CHDB_LIB": cfg.CHDBLib,
		"PATCHGRID_CLICKHOUSE_DB": cfg.Database, "PATCHGRID_CACHE_DIR": t.TempDir(),
	}
	load := func() string {
		t.Helper()
		code, out, errOut := runCLI(t, "", env, "feeds", "load", "--quiet", "--from", srv.URL+"/Debian/all.zip", "--from", srv.URL+"/kev.json")
		if code != exitOK {
			t.Fatalf("feeds load: exit %d\n%s\n%s", code, out, errOut)
		}
		return out
	}
	out := load()
	if !strings.Contains(out, "osv ") || downloads != 2 {
		t.Errorf("first load (%d downloads):\n%s", downloads, out)
	}
	out = load()
	if downloads != 2 {
		t.Errorf("second load downloaded again (%d)", downloads)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		// SOURCE LOCATION RECORDS LOADED UPDATED UNCHANGED ...
		f := strings.Fields(line)
		if len(f) < 6 || f[3] != "0" || f[4] != "0" || f[5] != "1" {
			t.Errorf("second load wrote: %q", line)
		}
	}
	code, out, errOut := runCLI(t, "", env, "feeds", "status")
	if code != exitOK || !strings.Contains(out, "kev") || !strings.Contains(out, "osv") {
		t.Errorf("feeds status: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, _ := runCLI(t, "", env, "feeds", "load"); code != exitUsage {
		t.Errorf("load without --from: exit %d", code)
	}
	if code, _, _ := runCLI(t, "", env, "feeds", "nope"); code != exitUsage {
		t.Errorf("unknown subcommand: exit %d", code)
	}
}
