package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium is the path of a headless-capable Chromium (PATCHGRID_CHROMIUM,
// else chromium on PATH) and of pdftoppm, for tests that render reports;
// scripts/install-chromium.sh installs both.
func Chromium(t testing.TB) (chromium, pdftoppm string) {
	t.Helper()
	chromium = os.Getenv("PATCHGRID_CHROMIUM")
	if chromium == "" {
		chromium, _ = exec.LookPath("chromium")
	}
	pdftoppm, _ = exec.LookPath("pdftoppm")
	if chromium == "" || pdftoppm == "" {
		missing(t, "no chromium or pdftoppm: run scripts/install-chromium.sh (make deps does)")
	}
	return chromium, pdftoppm
}
