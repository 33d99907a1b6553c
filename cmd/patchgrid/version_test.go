package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func runCLI(t *testing.T, stdin string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := dispatch(context.Background(), &cliEnv{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errOut,
		getenv: func(k string) string { return env[k] },
	}, args)
	return code, out.String(), errOut.String()
}

func TestVersionKeyCLI(t *testing.T) {
	code, out, errOut := runCLI(t, "1.0\n0:1.0-0\n1.0~rc1\nbad version\n2.0\n", nil, "version", "key", "--ecosystem", "Debian:12")
	if code != exitFailure {
		t.Errorf("exit %d, want %d (one invalid line); stderr %s", code, exitFailure, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("got %d lines, want 5:\n%s", len(lines), out)
	}
	key := func(i int) string { _, k, _ := strings.Cut(lines[i], "\t"); return k }
	if key(0) != key(1) {
		t.Errorf("1.0 and 0:1.0-0 keys differ: %s vs %s", key(0), key(1))
	}
	if !(key(2) < key(0) && key(0) < key(4)) {
		t.Errorf("hex keys out of order: %v", lines)
	}
	if !strings.HasPrefix(lines[3], "bad version\tERROR: ") || !strings.Contains(lines[3], `"bad version"`) {
		t.Errorf("invalid line: %q", lines[3])
	}

	code, out, _ = runCLI(t, "1.0.0\n", map[string]string{"PATCHGRID_ECOSYSTEM": "npm"}, "version", "key")
	if code != exitOK || !strings.HasPrefix(out, "1.0.0\t") {
		t.Errorf("ecosystem from env: exit %d, out %q", code, out)
	}
	if code, _, errOut = runCLI(t, "", nil, "version", "key", "--ecosystem", "Nope"); code != exitUsage || !strings.Contains(errOut, "Nope") {
		t.Errorf("unknown ecosystem: exit %d, stderr %q", code, errOut)
	}
}

func TestVersionCompareCLI(t *testing.T) {
	for _, tc := range []struct {
		eco, a, b, want string
	}{
		{"Alpine:v3.18", "1.2.3-r17", "1.2.3-r7", ">"},
		{"Debian", "1.0", "1.0-0", "="},
		{"Red Hat:enterprise_linux:9", "1.0~rc1", "1.0", "<"},
		{"PyPI", "1.0.dev1", "1.0a1", "<"},
	} {
		code, out, errOut := runCLI(t, "", nil, "version", "compare", "--ecosystem", tc.eco, tc.a, tc.b)
		if code != exitOK || strings.TrimSpace(out) != tc.want {
			t.Errorf("%s %s vs %s: exit %d, out %q, stderr %q; want %s", tc.eco, tc.a, tc.b, code, out, errOut, tc.want)
		}
	}
	if code, _, errOut := runCLI(t, "", nil, "version", "compare", "--ecosystem", "Debian", "1.0", "!"); code != exitFailure || !strings.Contains(errOut, `"!"`) {
		t.Errorf("invalid version: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "", nil, "version", "compare", "--ecosystem", "Debian", "1.0"); code != exitUsage {
		t.Errorf("one argument: exit %d, want usage", code)
	}
}
