package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
)

// ClickHouseServer is a private Debian clickhouse-server of one test, on
// its own loopback ports and data directory, for what the shared server
// must never see: a restart, a TLS configuration. The test starts and
// stops it by its PID; it is killed when the test ends.
type ClickHouseServer struct {
	t        testing.TB
	dir      string
	Addr     string // plaintext native protocol, 127.0.0.1:TCPPort
	TLSAddr  string // secure native protocol, when started with TLS
	cmd      *exec.Cmd
	exited   chan struct{}
	readyFor time.Duration
}

// ClickHouseOptions sets a private server's ports (each must be free) and
// its certificate.
type ClickHouseOptions struct {
	TCPPort, HTTPPort int
	// SecurePort and Certs, both or neither: tcp_port_secure with this
	// certificate.
	SecurePort int
	Certs      *Certs
}

// StartClickHouse starts a private server; it skips the test (fails it
// with CI=true) when clickhouse-server is not installed.
func StartClickHouse(t testing.TB, opt ClickHouseOptions) *ClickHouseServer {
	t.Helper()
	bin, err := exec.LookPath("clickhouse-server")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/clickhouse-server"); err != nil {
			missing(t, "clickhouse-server not installed (scripts/install-clickhouse.sh)")
		}
	}
	s := &ClickHouseServer{t: t, dir: t.TempDir(), Addr: fmt.Sprintf("127.0.0.1:%d", opt.TCPPort)}
	var secure string
	if opt.SecurePort != 0 {
		s.TLSAddr = fmt.Sprintf("127.0.0.1:%d", opt.SecurePort)
		secure = fmt.Sprintf(`<tcp_port_secure>%d</tcp_port_secure>
    <openSSL><server>
        <certificateFile>%s</certificateFile>
        <privateKeyFile>%s</privateKeyFile>
        <verificationMode>none</verificationMode>
        <loadDefaultCAFile>false</loadDefaultCAFile>
        <cacheSessions>true</cacheSessions>
        <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
        <preferServerCiphers>true</preferServerCiphers>
    </server></openSSL>`, opt.SecurePort, opt.Certs.Cert, opt.Certs.Key)
	}
	d := s.dir
	config := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>%[1]s/log/server.log</log><errorlog>%[1]s/log/server.err.log</errorlog><size>10M</size><count>1</count></logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>%[2]d</tcp_port>
    <http_port>%[3]d</http_port>
    %[4]s
    <max_concurrent_queries>32</max_concurrent_queries>
    <mark_cache_size>67108864</mark_cache_size>
    <path>%[1]s/data/</path>
    <tmp_path>%[1]s/tmp/</tmp_path>
    <user_files_path>%[1]s/user_files/</user_files_path>
    <format_schema_path>%[1]s/format_schemas/</format_schema_path>
    <users_config>%[1]s/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
`, d, opt.TCPPort, opt.HTTPPort, secure)
	users := `<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>1000000000</max_memory_usage></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`
	for _, sub := range []string{"log", "data", "tmp", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"config.xml": config, "users.xml": users} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.cmd = exec.Command(bin, "--config-file="+filepath.Join(d, "config.xml"))
	t.Cleanup(s.Kill)
	s.Start()
	return s
}

// Start (re)starts the server on its data and waits until it accepts
// connections on its plaintext port.
func (s *ClickHouseServer) Start() {
	t := s.t
	t.Helper()
	out, err := os.OpenFile(filepath.Join(s.dir, "log", "stdout.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.cmd.Path, s.cmd.Args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("start clickhouse-server: %v", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); out.Close(); close(done) }(cmd, s.exited)
	start := time.Now()
	deadline := start.Add(90 * time.Second)
	for {
		if s.accepts() {
			s.readyFor = time.Since(start)
			return
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "log", "server.err.log"))
			so, _ := os.ReadFile(filepath.Join(s.dir, "log", "stdout.log"))
			t.Fatalf("clickhouse-server exited during startup:\n%s\n%s", tailString(log, 3000), tailString(so, 2000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("clickhouse-server on %s not ready after 90s", s.Addr)
		}
	}
}

// StartupTime is how long the last Start waited for the server.
func (s *ClickHouseServer) StartupTime() time.Duration { return s.readyFor }

// accepts reports whether the server answers a query on its plaintext
// port (a TCP connect alone succeeds before it has loaded its tables).
func (s *ClickHouseServer) accepts() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := store.Open(ctx, store.Config{Backend: "clickhouse", Addr: s.Addr, Database: "default", DialTimeout: time.Second})
	if err != nil {
		return false
	}
	st.Close()
	return true
}

// Kill SIGKILLs the server (a crash, not a clean shutdown) and waits for it.
func (s *ClickHouseServer) Kill() {
	if s.cmd == nil || s.cmd.Process == nil || s.exited == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

func tailString(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
