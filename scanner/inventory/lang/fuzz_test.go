package lang

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// lockfileNames are the file names the extractors claim, one per format.
var lockfileNames = []string{"go.mod", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "bun.lock", "requirements.txt",
	"Pipfile.lock", "poetry.lock", "uv.lock", "pom.xml", "gradle.lockfile", "Cargo.lock", "composer.lock", "Gemfile.lock"}

// FuzzScan: lockfiles come from the scanned machine. Any content under any
// lockfile name yields packages or warnings, never a panic, and every
// package has an ecosystem, a name and a version.
func FuzzScan(f *testing.F) {
	seeds := map[string]string{
		"go.mod":            "module x\n\ngo 1.22\n\nrequire golang.org/x/text v0.3.6\n",
		"package-lock.json": `{"lockfileVersion":3,"packages":{"node_modules/a":{"version":"1.0.0"}}}`,
		"yarn.lock":         "a@^1.0.0:\n  version \"1.0.1\"\n",
		"requirements.txt":  "django==4.2.1\nrequests>=2\n",
		"Cargo.lock":        "[[package]]\nname = \"serde\"\nversion = \"1.0.0\"\n",
		"Gemfile.lock":      "GEM\n  specs:\n    rails (7.0.0)\n",
		"composer.lock":     `{"packages":[{"name":"a/b","version":"1.0.0"}]}`,
		"pnpm-lock.yaml":    "lockfileVersion: '6.0'\npackages:\n  /a@1.0.0:\n    resolution: {integrity: x}\n",
	}
	for i, n := range lockfileNames {
		f.Add(uint8(i), []byte(seeds[n]))
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, lockfileNames[int(which)%len(lockfileNames)]), data, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Scan(context.Background(), dir)
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		for _, p := range res.Packages {
			if p.Ecosystem == "" || p.Name == "" || p.Version == "" {
				t.Fatalf("package without ecosystem, name or version: %+v", p)
			}
		}
	})
}
