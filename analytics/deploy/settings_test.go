package deploy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/analytics/policy"
)

// The policy's deployment section: values, defaults, and bad input named
// by file, line and field.
func TestPolicyDeploymentSettings(t *testing.T) {
	p := mustPolicy(t, fixturePolicy)
	if p.Deployment.Window() != 26*time.Hour || p.Deployment.Attempts() != 2 {
		t.Errorf("fixture: %s, %d", p.Deployment.Window(), p.Deployment.Attempts())
	}
	if !strings.Contains(p.Canonical(), `"verification_window": "26h0m0s"`) {
		t.Errorf("canonical form lacks the window: %s", p.Canonical())
	}
	d, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	if d.Deployment.Window() != policy.DefaultVerificationWindow || d.Deployment.Attempts() != policy.DefaultMaxAttempts ||
		strings.Contains(d.Canonical(), "deployment") {
		t.Errorf("default policy: %s, %d, canonical %s", d.Deployment.Window(), d.Deployment.Attempts(), d.Canonical())
	}
	base := "sla:\n  days: {critical: 15, high: 30, medium: 90, low: 180}\n"
	for _, c := range []struct{ yaml, field string }{
		{base + "deployment: {max_attempts: 0}\n", "deployment.max_attempts"},
		{base + "deployment: {max_attempts: many}\n", "deployment.max_attempts"},
		{base + "deployment: {verification_window: 0s}\n", "deployment.verification_window"},
		{base + "deployment: {verification_window: soon}\n", "deployment.verification_window"},
		{base + "deployment: {retries: 3}\n", "deployment.retries"},
	} {
		_, err := policy.Parse("bad.yaml", []byte(c.yaml))
		var perr *policy.Error
		if !errors.As(err, &perr) || perr.Field != c.field || perr.Line != 3 || !errors.Is(err, policy.ErrInvalid) {
			t.Errorf("%q: %v; want an error at bad.yaml:3 field %s", c.yaml, err, c.field)
		}
	}
}
