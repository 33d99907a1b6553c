package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/analytics/localreport"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func reportCLI(t *testing.T, stdin string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), &cliEnv{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return env[k] },
	}, args)
	return code, out.String(), errOut.String()
}

// TestScanReportCLI runs `scan --report` on the shared Debian 12 host
// inventory against an empty store (feeds are loaded on first use), then
// checks that `scan --dry-run | patchgrid match` gives the same findings.
func TestScanReportCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 6,036 records")
	}
	data := testenv.SharedData(t)
	st := testenv.CHDBStore(t)
	cfg := testenv.CHDBConfig(t) // the CLI opens the same engine directory
	db := testenv.DatabaseName(t)
	t.Cleanup(func() { st.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db) })
	env := map[string]string{"PATCHGRID_DATA_DIR": cfg.DataDir, "PATCHGRID_CHDB_LIB": cfg.CHDBLib, "PATCHGRID_CLICKHOUSE_DB": db}
	status := filepath.Join(data, "inventories/dpkg/debian12-bookworm-host-b.status")
	zip := filepath.Join(data, "advisories/debian12-changelog-derived-osv.zip")
	inv := []string{"scan", "--dpkg-status", status, "--os", "debian:12", "--host-id", "host-b"}

	code, out, errOut := reportCLI(t, "", env, append(inv, "--report", "--format", "json", "--feeds", zip)...)
	if code != exitOK || !strings.Contains(errOut, "no advisories; loading") {
		t.Fatalf("first report: exit %d\n%s", code, errOut)
	}
	var r localreport.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Summary.Findings != 5369 || r.Summary.PackagesAffected != 107 || r.Target.HostID != "host-b" || r.Target.OS != "Debian:12" {
		t.Fatalf("summary %+v target %+v", r.Summary, r.Target)
	}
	var local []string
	for _, f := range r.Findings {
		local = append(local, f.Package.Name+" "+f.Match.AdvisoryID)
	}
	slices.Sort(local)

	// The dry run, piped to match: the same pairs.
	code, lines, errOut := reportCLI(t, "", env, append(inv, "--dry-run")...)
	if code != exitOK || strings.Count(lines, "\n") != 745 {
		t.Fatalf("dry run: exit %d, %d lines\n%s", code, strings.Count(lines, "\n"), errOut)
	}
	code, out, errOut = reportCLI(t, lines, env, "match")
	if code != exitOK {
		t.Fatalf("match: exit %d\n%s", code, errOut)
	}
	var piped []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var ml matchLine
		if err := json.Unmarshal([]byte(l), &ml); err != nil || ml.Error != "" || ml.Input == nil {
			t.Fatalf("match line %q: %v", l, err)
		}
		for _, m := range ml.Matches {
			piped = append(piped, ml.Input.Name+" "+m.AdvisoryID)
		}
	}
	slices.Sort(piped)
	if !slices.Equal(local, piped) {
		t.Errorf("scan --report (%d) and scan --dry-run | match (%d) disagree", len(local), len(piped))
	}

	// The store has advisories now: no second load. --fail-on gates.
	code, out, errOut = reportCLI(t, "", env, append(inv, "--report", "--fail-on", "any")...)
	if code != exitFindings || strings.Contains(errOut, "loading") || !strings.Contains(out, "5369 findings of 2381 advisories") {
		t.Errorf("--fail-on any: exit %d\n%s\n%s", code, errOut, out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colours written to a non-terminal")
	}

	// An ignore file: a live entry hides, an expired one warns.
	ign := filepath.Join(t.TempDir(), "ignore.yaml")
	if err := os.WriteFile(ign, []byte(`ignore:
  - id: CVE-2023-52425
    package: libexpat1
    expires: 2999-01-01
    reason: test
  - id: DEBIAN-CVE-2018-13410
    expires: 2001-01-01
    reason: long gone
`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = reportCLI(t, "", env, append(inv, "--report", "--format", "json", "--ignore-file", ign)...)
	if code != exitOK || !strings.Contains(errOut, "DEBIAN-CVE-2018-13410 expired on 2001-01-01") {
		t.Fatalf("ignore file: exit %d\n%s", code, errOut)
	}
	r = localreport.Report{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Summary.Ignored != 1 || r.Summary.Findings != 5368 || r.Ignored[0].Package.Name != "libexpat1" {
		t.Errorf("ignore file: %+v", r.Summary)
	}

	// One machine format through the CLI; analytics/localreport tests them all.
	out = filepath.Join(t.TempDir(), "report.sarif")
	code, _, errOut = reportCLI(t, "", env, append(inv, "--report", "--format", "sarif", "--output", out)...)
	if b, err := os.ReadFile(out); code != exitOK || err != nil || !json.Valid(b) || !bytes.Contains(b, []byte(`"ruleId": "DEBIAN-CVE-2018-13410"`)) {
		t.Errorf("--format sarif --output: exit %d, %v\n%s", code, err, errOut)
	}
}

func TestScanReportUsage(t *testing.T) {
	status := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(status, []byte("Package: a\nStatus: install ok installed\nVersion: 1\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--report", "--dry-run"}, exitUsage, "exclude each other"},
		{[]string{"--report", "--format", "xml"}, exitUsage, "invalid --format"},
		{[]string{"--report", "--fail-on", "severe"}, exitUsage, "invalid --fail-on"},
		{[]string{"--sbom", "x.json", "--dpkg-status", status}, exitUsage, "exclude each other"},
		{[]string{"--dry-run", "--dry-run-format", "yaml"}, exitUsage, "dry-run-format"},
		{[]string{"--dry-run", "--dpkg-status", status}, exitFailure, "give --os"},
		{[]string{"--dry-run", "--dpkg-status", status, "--os", "Windows:11"}, exitFailure, "Windows:11"},
		{[]string{"--dry-run", "--dpkg-status", status + ".missing", "--os", "Debian:12"}, exitFailure, "status.missing"},
	} {
		code, _, errOut := reportCLI(t, "", nil, append([]string{"scan"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d %q; want %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
	code, out, errOut := reportCLI(t, "", nil, "scan", "--dry-run", "--dpkg-status", status, "--os", "Debian:12")
	if code != exitOK || strings.TrimSpace(out) != `{"ecosystem":"Debian:12","name":"a","version":"1","source_name":"a","source_version":"1","purl":"pkg:deb/debian/a@1?distro=debian-12","location":"`+status+`"}` {
		t.Errorf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestUseColor(t *testing.T) {
	if useColor(&cliEnv{stdout: &bytes.Buffer{}, getenv: func(string) string { return "" }}) {
		t.Error("colour on a buffer")
	}
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no terminal")
	}
	defer tty.Close()
	if !useColor(&cliEnv{stdout: tty, getenv: func(string) string { return "" }}) {
		t.Error("no colour on a terminal")
	}
	if useColor(&cliEnv{stdout: tty, getenv: func(k string) string { return map[string]string{"NO_COLOR": "1"}[k] }}) {
		t.Error("colour despite NO_COLOR")
	}
}
