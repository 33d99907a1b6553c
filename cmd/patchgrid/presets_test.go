package main

import (
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestPolicyPresetsCLI(t *testing.T) {
	env := chdbCLIEnv(t, testenv.CHDBStore(t))
	code, out, errOut := runCLI(t, "", env, "policy", "presets")
	if code != exitOK {
		t.Fatalf("policy presets: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, s := range []string{
		"cisa-bod-22-01  kev", "https://www.cisa.gov/news-events/directives/bod-22-01-reducing-significant-risk-known-exploited-vulnerabilities",
		"pci-dss-6.3.3", "30/30/90/90/90/30", "PCI DSS v4.0, requirement 6.3.3",
		"internal-sla", "15/30/90/180/365/90",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("policy presets lacks %q:\n%s", s, out)
		}
	}
	code, out, _ = runCLI(t, "", env, "policy", "presets", "--show", "cisa-bod-22-01")
	if code != exitOK || !strings.Contains(out, "# Source: https://www.cisa.gov/") || !strings.Contains(out, "scope: kev") {
		t.Errorf("--show cisa-bod-22-01: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "", env, "policy", "presets", "--show", "sox"); code != exitUsage || !strings.Contains(errOut, "pci-dss-6.3.3") {
		t.Errorf("--show of an unknown framework: exit %d, %s", code, errOut)
	}
}
