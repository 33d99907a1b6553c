// Package grafanaplugin holds only the test of the plugin's frontend bundle:
// the backend is ./pkg, the frontend's sources ./src, its build ./bundle.sh.
package grafanaplugin

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestFrontendBundle builds dist/module.js the way `make grafana-plugin`
// does (bundle.sh, into a temporary directory) and so also runs its check,
// bundle/check.js: the file must be one anonymous AMD define() over modules
// Grafana provides whose exports hold a working DataSourcePlugin with a
// config and a query editor. The first run installs the pinned esbuild
// (about 12 MB) into $PATCHGRID_CACHE/grafana-plugin-bundle.
//
// Without node or npm the test skips, and fails when CI=true.
func TestFrontendBundle(t *testing.T) {
	for _, tool := range []string{"node", "npm", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := tool + " not found: the frontend bundle (dist/module.js) is neither built nor checked"
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s (CI=true: a missing tool fails the test)", msg)
			}
			t.Skip(msg)
		}
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "bundle.sh", out)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		t.Fatalf("bash bundle.sh %s: %v\n%s", out, err, log.Bytes())
	}
	t.Logf("%s", bytes.TrimSpace(log.Bytes()))

	js, err := os.ReadFile(filepath.Join(out, "module.js"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(js, []byte("define([")) {
		t.Errorf("module.js does not start with an anonymous define([...]): %.80q", js)
	}
	if !bytes.Contains(log.Bytes(), []byte("bundle check: ok")) {
		t.Errorf("bundle.sh passed without reporting its check")
	}
	if _, err := os.Stat(filepath.Join(out, "module.js.map")); err != nil {
		t.Errorf("no source map: %v", err)
	}
}
