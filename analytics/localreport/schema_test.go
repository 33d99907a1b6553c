package localreport

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The published schemas are installed by scripts/install-report-schemas.sh
// (make deps / make test) into $PATCHGRID_CACHE/report-schemas; they are
// never copied into the repo. Missing schemas skip the validation, or fail
// it under CI=true.

func schemaDir(t testing.TB) string {
	t.Helper()
	cache := os.Getenv("PATCHGRID_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache", "patchgrid")
	}
	dir := filepath.Join(cache, "report-schemas")
	if _, err := os.Stat(filepath.Join(dir, "bom-1.6.SNAPSHOT.schema.json")); err != nil {
		msg := "report schemas not installed in " + dir + ": run bash scripts/install-report-schemas.sh (make deps)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// compileSchema compiles the schema at url after registering files (file
// name → the URL other schemas refer to it by).
func compileSchema(t testing.TB, dir, url string, files map[string]string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for name, u := range files {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
		if err := c.AddResource(u, doc); err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatalf("compile %s: %v", url, err)
	}
	return sch
}

// sarifSchema is SARIF 2.1.0 as published (rtm.5, the schema the OASIS
// standard's errata point to).
func sarifSchema(t testing.TB) *jsonschema.Schema {
	dir := schemaDir(t)
	const u = "https://json.schemastore.org/sarif-2.1.0-rtm.5.json"
	return compileSchema(t, dir, u, map[string]string{"sarif-2.1.0-rtm.5.json": u})
}

// cycloneDXSchema is CycloneDX 1.6 with the SPDX licence list and JSF
// schemas it refers to by relative URL.
func cycloneDXSchema(t testing.TB) *jsonschema.Schema {
	dir := schemaDir(t)
	const base = "http://cyclonedx.org/schema/"
	return compileSchema(t, dir, base+"bom-1.6.schema.json", map[string]string{
		"bom-1.6.SNAPSHOT.schema.json":  base + "bom-1.6.schema.json",
		"spdx.SNAPSHOT.schema.json":     base + "spdx.SNAPSHOT.schema.json",
		"jsf-0.82.SNAPSHOT.schema.json": base + "jsf-0.82.SNAPSHOT.schema.json",
	})
}

func validate(t testing.TB, sch *jsonschema.Schema, what string, doc []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("%s: not JSON: %v", what, err)
	}
	if err := sch.Validate(v); err != nil {
		s := err.Error()
		if len(s) > 4000 {
			s = s[:4000] + "…"
		}
		t.Errorf("%s does not validate against its published schema:\n%s", what, s)
	}
}
