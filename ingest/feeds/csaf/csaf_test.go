package csaf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/patchgrid/patchgrid/ingest/feeds/feed"
	"github.com/patchgrid/patchgrid/ingest/feeds/feed/feedtest"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func parse(t *testing.T, rel string) feed.Advisory {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.SharedData(t), "advisories", rel))
	if err != nil {
		t.Fatal(err)
	}
	a, probs, err := Parse(data, filepath.Base(rel))
	if err != nil || len(probs) > 0 {
		t.Fatalf("%s: %v %v", rel, err, probs)
	}
	return a
}

// RHSA-2025:23414 fixes bind for RHEL 6 ELS only: every range is on that
// stream, keyed by the source RPM (bind, which bind-libs comes from), so
// a RHEL 9 host's bind-libs 32:9.16.23-24.el9_5 can never match it.
func TestBindELSStreamOnly(t *testing.T) {
	a := parse(t, "redhat-csaf/rhsa-2025_23414.json")
	feedtest.Key(t, &a)
	if a.ID != "RHSA-2025:23414" || a.Source != SourceAdvisory || a.Severity != "high" {
		t.Errorf("%s %s %s", a.ID, a.Source, a.Severity)
	}
	if len(a.Ranges) != 1 {
		t.Fatalf("ranges %+v", a.Ranges)
	}
	r := a.Ranges[0]
	if r.Ecosystem != "Red Hat:rhel_els:6" || r.Package != "bind" || r.Fixed != "32:9.8.2-0.68.rc1.el6_10.17" || r.Status != feed.StatusAffected || r.FixPublished.IsZero() {
		t.Errorf("range %+v", r)
	}
	if !feedtest.Affected(t, &a, "Red Hat:rhel_els:6", "bind", "32:9.8.2-0.68.rc1.el6_10.16") {
		t.Error("the ELS stream's older bind is not affected")
	}
	for _, eco := range []string{"Red Hat:enterprise_linux:9", "Red Hat:enterprise_linux:6"} {
		for _, pkg := range []string{"bind", "bind-libs"} {
			if feedtest.Affected(t, &a, eco, pkg, "32:9.16.23-24.el9_5") {
				t.Errorf("%s %s matched", eco, pkg)
			}
		}
	}
}

func TestGolden(t *testing.T) {
	// Telnet for three RHEL 7.6 streams (AUS, E4S, TUS): one range each.
	a := parse(t, "redhat-csaf/rhsa-2022_0011.claircore.json")
	feedtest.Golden(t, "rhsa-2022_0011", a)
	if len(a.Ranges) != 3 || a.Ranges[0].Ecosystem != "Red Hat:rhel_aus:7.6" || a.Ranges[0].Package != "telnet" || a.Ranges[0].Fixed != "1:0.17-65.el7_6" {
		t.Errorf("%+v", a.Ranges)
	}
	feedtest.Key(t, &a)
}

func TestStreamsAndModules(t *testing.T) {
	// sudo for RHEL 8/9 mainline and EUS streams.
	a := parse(t, "redhat-csaf/rhsa-2024_0811.json")
	feedtest.Key(t, &a)
	seen := map[string]string{}
	for _, r := range a.Ranges {
		seen[r.Ecosystem+" "+r.Package] = r.Fixed
	}
	for k, want := range map[string]string{
		"Red Hat:enterprise_linux:9 sudo": "0:1.9.5p2-10.el9_3",
		"Red Hat:rhel_eus:9.2 sudo":       "",
		"Red Hat:enterprise_linux:8 sudo": "",
	} {
		got, ok := seen[k]
		if !ok || want != "" && got != want {
			t.Errorf("%s: fixed %q (present %v), want %q; all %v", k, got, ok, want, seen)
		}
	}
	// Module builds: ruby source RPM with the module release.
	m := parse(t, "redhat-csaf/rhsa-2023_3821.json")
	feedtest.Key(t, &m)
	found := false
	for _, r := range m.Ranges {
		if r.Ecosystem == "Red Hat:enterprise_linux:8" && r.Package == "ruby" {
			found = true
			if r.Fixed != "0:2.7.8-139.module+el8.8.0+18745+f1bef313" {
				t.Errorf("ruby fixed %q", r.Fixed)
			}
		}
	}
	if !found {
		t.Errorf("no ruby range: %+v", m.Ranges)
	}
}

func TestVEX(t *testing.T) {
	a := parse(t, "redhat-vex/cve-2023-4154.json")
	if a.Source != SourceVEX || a.ID != "CVE-2023-4154" || len(a.Ranges) == 0 {
		t.Fatalf("%+v", a)
	}
	for _, r := range a.Ranges {
		if r.Status != feed.StatusNotAffected {
			t.Errorf("%+v", r)
		}
	}
	c := parse(t, "redhat-vex/cve-2023-38545.json")
	feedtest.Key(t, &c)
	if !feedtest.Affected(t, &c, "Red Hat:rhel_eus:9.0", "curl", "0:7.76.1-14.el9_0.8") || feedtest.Affected(t, &c, "Red Hat:rhel_eus:9.0", "curl", "0:7.76.1-14.el9_0.9") {
		t.Error("curl EUS 9.0 boundary")
	}
	if c.CVSS.Score == 0 || c.Severity == "unknown" {
		t.Errorf("cvss %+v severity %s", c.CVSS, c.Severity)
	}
}

func TestEcosystem(t *testing.T) {
	for cpe, want := range map[string]string{
		"cpe:/o:redhat:enterprise_linux:9::baseos":    "Red Hat:enterprise_linux:9",
		"cpe:/a:redhat:enterprise_linux:9::appstream": "Red Hat:enterprise_linux:9",
		"cpe:/o:redhat:rhel_els:6":                    "Red Hat:rhel_els:6",
		"cpe:/a:redhat:rhel_eus:9.2::appstream":       "Red Hat:rhel_eus:9.2",
		"cpe:/a:redhat:openshift:4.16::el9":           "Red Hat:openshift:4.16:el9",
		"cpe:/a:othervendor:x:1":                      "",
	} {
		if got, _ := ecosystem(cpe); got != want {
			t.Errorf("ecosystem(%q) = %q, want %q", cpe, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"document":{"category":"csaf_vex","tracking":{"id":"CVE-1"}},"product_tree":{"branches":[{"category":"vendor","branches":[{"category":"product_name","product":{"product_id":"S","product_identification_helper":{"cpe":"cpe:/o:redhat:enterprise_linux:9"}}},{"category":"product_version","product":{"product_id":"p-0:1-1.el9.x86_64","name":"p-0:1-1.el9.x86_64"}}]}],"relationships":[{"full_product_name":{"product_id":"S:p"},"product_reference":"p-0:1-1.el9.x86_64","relates_to_product_reference":"S"}]},"vulnerabilities":[{"cve":"CVE-1","product_status":{"fixed":["S:p"]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, _, err := Parse(data, "fuzz"); err == nil {
			_ = feed.Key(&a, feedtest.Lookup)
		}
	})
}
