package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeCLI: a token made with `patchgrid token create`, then serve
// over TLS with a certificate made by the test: /healthz is open, the API
// needs the token, plain HTTP is refused.
func TestServeCLI(t *testing.T) {
	env := seededCLIEnv(t)
	code, secret, errOut := runCLI(t, "", env, "token", "create", "--role", "viewer", "--name", "grafana", "--expires", "2d", "--actor", "test")
	secret = strings.TrimSpace(secret)
	if code != exitOK || !strings.HasPrefix(secret, "pgt_") || !strings.Contains(errOut, "shown only now") {
		t.Fatalf("token create: %d %q %s", code, secret, errOut)
	}
	if code, _, errOut := runCLI(t, "", env, "token", "create", "--role", "root", "--name", "x"); code != exitUsage || !strings.Contains(errOut, "unknown role") {
		t.Errorf("token create --role root: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", env, "serve", "--tls-cert", "x.pem"); code != exitUsage || !strings.Contains(errOut, "go together") {
		t.Errorf("serve --tls-cert alone: %d %s", code, errOut)
	}
	certs := testenv.NewCerts(t, t.TempDir())

	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, &cliEnv{stdout: io.Discard, stderr: &stderr, getenv: func(k string) string { return env[k] }},
			[]string{"serve", "--listen", "127.0.0.1:0", "--tls-cert", certs.Cert, "--tls-key", certs.Key})
	}()
	// Either log format: msg=serving addr=... or "msg":"serving","addr":"...".
	addrRE := regexp.MustCompile(`serving"?[ ,]"?addr"?[=:]"?([0-9.]+:[0-9]+)`)
	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == "" && time.Now().Before(deadline); {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if addr == "" {
		cancel()
		t.Fatalf("server did not start: %s", stderr.String())
	}
	ca, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 30 * time.Second}
	for _, tc := range []struct {
		path, token string
		status      int
		want        string
	}{
		{"/healthz", "", 200, "ok"},
		{"/api/v1/kpis/patch_coverage", secret, 200, "patch_coverage"},
		{"/api/v1/kpis/patch_coverage", "", 401, ""},
		{"/api/v1/tokens", secret, 403, ""},
	} {
		req, _ := http.NewRequest("GET", "https://"+addr+tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || tc.want != "" && m["status"] != tc.want && m["kpi"] != tc.want {
			t.Errorf("GET %s: %d %v %v", tc.path, resp.StatusCode, m, err)
		}
	}
	// Plain HTTP to the TLS port gets no API answer.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: %d", resp.StatusCode)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}

	code, out, errOut := runCLI(t, "", env, "token", "list")
	if code != exitOK || !strings.Contains(out, "grafana") || !strings.Contains(out, "viewer") || !strings.Contains(out, "active") {
		t.Fatalf("token list: %d %s %s", code, out, errOut)
	}
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	if code, _, errOut := runCLI(t, "", env, "token", "revoke", id, "--actor", "test"); code != exitOK {
		t.Fatalf("token revoke %s: %d %s", id, code, errOut)
	}
	if _, out, _ := runCLI(t, "", env, "token", "list", "--format", "json"); !strings.Contains(out, `"state":"revoked"`) || strings.Contains(out, "hash") {
		t.Errorf("token list after revoke: %s", out)
	}
}
