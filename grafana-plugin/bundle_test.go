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

// needNode skips (or, with CI=true, fails) when the frontend tools are
// missing.
func needNode(t *testing.T, what string) {
	t.Helper()
	for _, tool := range []string{"node", "npm", "flock"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := tool + " not found: " + what
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s (CI=true: a missing tool fails the test)", msg)
			}
			t.Skip(msg)
		}
	}
}

// TestSchemas checks plugin.json and the shipped dashboards against the
// schema types Grafana publishes on npm (schemacheck.sh; the first run
// installs them, about 180 MB, into $PATCHGRID_CACHE/grafana-plugin-schema),
// and that the check fails on files that break the schema.
func TestSchemas(t *testing.T) {
	needNode(t, "plugin.json and the dashboards are not checked against Grafana's schemas")
	run := func(dir string) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "schemacheck.sh", dir)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		err := cmd.Run()
		return log.String(), err
	}
	if log, err := run("."); err != nil || !bytes.Contains([]byte(log), []byte("schemacheck: ok")) {
		t.Fatalf("schemacheck.sh: %v\n%s", err, log)
	}

	// A copy with one mistake per file must fail, naming each.
	bad := t.TempDir()
	os.MkdirAll(filepath.Join(bad, "src", "dashboards"), 0o755)
	mutate := func(src, dst, from, to string) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(from)) {
			t.Fatalf("%s has no %s", src, from)
		}
		os.WriteFile(dst, bytes.Replace(b, []byte(from), []byte(to), 1), 0o644)
	}
	mutate("src/plugin.json", filepath.Join(bad, "src", "plugin.json"), `"type": "datasource"`, `"type": "datasrc"`)
	mutate("src/dashboards/overview.json", filepath.Join(bad, "src", "dashboards", "overview.json"), `"gridPos"`, `"gridPoss"`)
	mutate("src/dashboards/compliance.json", filepath.Join(bad, "src", "dashboards", "compliance.json"), `"type": "query"`, `"type": "qurey"`)
	log, err := run(bad)
	if err == nil {
		t.Fatalf("schemacheck.sh passed broken files:\n%s", log)
	}
	for _, want := range []string{"plugin.ts", "gridPoss", "qurey"} {
		if !bytes.Contains([]byte(log), []byte(want)) {
			t.Errorf("the failure does not name %q:\n%s", want, log)
		}
	}
}
