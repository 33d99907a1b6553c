package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// childArgsEnv makes this test binary act as the patchgrid binary: the
// embedded store admits one process, so tests of two processes on one data
// dir run the CLI in children.
const childArgsEnv = "PATCHGRID_TEST_CHILD_ARGS"

func TestMain(m *testing.M) {
	if a := os.Getenv(childArgsEnv); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			os.Exit(exitUsage)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := dispatch(ctx, &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, args)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// child returns a command that runs the CLI with args in a process of its
// own, with extra environment variables.
func child(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childArgsEnv+"="+string(a)), env...)
	return cmd
}

func runChild(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := child(t, env, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return out.String(), errb.String(), 0
}

// TestSQLBesideServe: while `serve` holds the embedded store, `patchgrid
// sql` in another process answers through it (serve.url in the data dir),
// with the same read-only checks; when serve stops, the file goes.
func TestSQLBesideServe(t *testing.T) {
	lib := testenv.CHDBLib(t)
	dir := t.TempDir()
	env := []string{"PATCHGRID_CHDB_LIB=" + lib, "PATCHGRID_DATA_DIR=" + dir, "PATCHGRID_ACTOR=test"}
	if _, errOut, code := runChild(t, env, "migrate"); code != exitOK {
		t.Fatalf("migrate: %d %s", code, errOut)
	}
	token, errOut, code := runChild(t, env, "token", "create", "--role", "analyst", "--name", "officer")
	if code != exitOK {
		t.Fatalf("token create: %d %s", code, errOut)
	}
	env = append(env, "PATCHGRID_TOKEN="+strings.TrimSpace(token))

	serve := child(t, env, "serve", "--listen", "127.0.0.1:0")
	var serveErr syncBuffer
	serve.Stderr = &serveErr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		_ = serve.Wait()
	}()
	urlFile := filepath.Join(dir, serveURLFile)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(urlFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not advertise itself in %s:\n%s", urlFile, serveErr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	out, errOut, code := runChild(t, env, "sql", "--format", "csv", "SELECT action FROM audit_log ORDER BY seq")
	if code != exitOK || out != "action\ntoken.create\n" || !strings.Contains(errOut, "held by a running serve") {
		t.Fatalf("sql beside serve: exit %d, out %q, err %s\nserve: %s", code, out, errOut, serveErr.String())
	}
	if _, errOut, code = runChild(t, env, "sql", "INSERT INTO scans (host_id) VALUES ('x')"); code != exitFailure || !strings.Contains(errOut, "refused") {
		t.Fatalf("write beside serve: %d %s", code, errOut)
	}
	// The serving process applies readonly too: a table function is
	// refused by the engine there.
	if _, errOut, code = runChild(t, env, "sql", "SELECT * FROM file('x.tsv', 'TSV', 'a String')"); code != exitFailure || !strings.Contains(errOut, "HTTP 422") {
		t.Fatalf("table function beside serve: %d %s", code, errOut)
	}
	// Without a token the API refuses.
	noToken := append([]string{}, env[:3]...)
	if _, errOut, code = runChild(t, noToken, "sql", "SELECT 1"); code != exitFailure || !strings.Contains(errOut, "401") {
		t.Fatalf("sql without a token: %d %s", code, errOut)
	}

	_ = serve.Process.Signal(syscall.SIGTERM)
	_ = serve.Wait()
	if _, err := os.Stat(urlFile); !os.IsNotExist(err) {
		t.Fatalf("serve.url left behind after serve stopped: %v", err)
	}
	// With serve gone, sql opens the store itself.
	if out, errOut, code = runChild(t, env, "sql", "--format", "csv", "SELECT count() AS n FROM audit_log"); code != exitOK || out != "n\n1\n" {
		t.Fatalf("sql after serve: %d %q %s", code, out, errOut)
	}
}
