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

// TestTypecheckOldest checks the frontend against the oldest Grafana
// plugin.json claims (grafanaDependency; @grafana/data, runtime and ui of
// typecheck-oldest/package-lock.json) with tsc: an API the oldest Grafana
// lacks fails here, not in a user's Grafana. The packages, about 600 MB,
// are installed once into $PATCHGRID_CACHE/grafana-plugin-ts-oldest
// (`make test` does it before the tests, through npm-ci.sh, again only when
// the lock changes); with them the check takes seconds. A copy of the
// sources with one type error must fail, naming the file.
func TestTypecheckOldest(t *testing.T) {
	needNode(t, "the frontend is not checked against the oldest Grafana it claims")
	run := func(dir string) (string, error) {
		// Long enough for the first install on a slow network.
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "typecheck.sh", "oldest", dir)
		var log bytes.Buffer
		cmd.Stdout, cmd.Stderr = &log, &log
		err := cmd.Run()
		return log.String(), err
	}
	if log, err := run("."); err != nil || !bytes.Contains([]byte(log), []byte("typecheck (oldest): ok")) {
		t.Fatalf("typecheck.sh oldest: %v\n%s", err, log)
	}

	bad := t.TempDir()
	if err := os.CopyFS(filepath.Join(bad, "src"), os.DirFS("src")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ name, add string }{
		{"tsconfig.json", ""},
		{filepath.Join("src", "types.ts"), "\nexport const typecheckProbe: number = 'not a number';\n"},
	} {
		b, err := os.ReadFile(f.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bad, f.name), append(b, f.add...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	log, err := run(bad)
	if err == nil || !bytes.Contains([]byte(log), []byte("src/types.ts(")) || !bytes.Contains([]byte(log), []byte("TS2322")) {
		t.Fatalf("typecheck.sh passed a type error, or did not name it: %v\n%s", err, log)
	}
}
