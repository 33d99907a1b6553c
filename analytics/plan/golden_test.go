package plan

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (run with -update after checking):\n%s", name, got)
	}
}

// The Ansible inventory of a hand-built plan: waves in order, hostile
// hostnames and versions quoted, and the result is YAML that parses.
func TestAnsibleGolden(t *testing.T) {
	hosts := []AnsibleHost{
		{Wave: 2, Name: "db-1", Packages: []string{"postgresql-15=15.20-0+deb12u1"}, Actions: []string{"AC-2"},
			WindowStart: utc("2026-12-05T06:00:00Z"), WindowEnd: utc("2026-12-05T12:00:00Z")},
		{Wave: 1, Name: "web-1", Packages: []string{"openssl=3.0.15-1~deb12u1", "curl=7.88.1-10+deb12u5"}, Actions: []string{"AC-1", "AC-3"},
			Emergency: true, WindowStart: utc("2026-12-02T12:00:00Z"), WindowEnd: utc("2026-12-02T16:00:00Z")},
		{Wave: 2, Name: "evil: \"x\"\n- y", Packages: []string{"a=1:2.0"}, Actions: []string{"AC-4"},
			WindowStart: utc("2026-12-05T06:00:00Z"), WindowEnd: utc("2026-12-05T12:00:00Z")},
	}
	out := Ansible("PL-20261202T120000Z-00000000", hosts)
	golden(t, "ansible.golden.yaml", out)
	var doc struct {
		All struct {
			Children map[string]struct {
				Hosts map[string]map[string]any `yaml:"hosts"`
			} `yaml:"children"`
		} `yaml:"all"`
	}
	if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("inventory is not YAML: %v", err)
	}
	if len(doc.All.Children["wave_2"].Hosts) != 2 || doc.All.Children["wave_2"].Hosts["evil: \"x\"\n- y"] == nil {
		t.Errorf("parsed inventory: %+v", doc)
	}
	if empty := Ansible("PL-x", nil); yaml.Unmarshal([]byte(empty), &doc) != nil {
		t.Errorf("empty inventory is not YAML:\n%s", empty)
	}
}
