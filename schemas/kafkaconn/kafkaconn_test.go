package kafkaconn

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/tlsconf"
)

func TestValidate(t *testing.T) {
	withTLS := tlsconf.Client{Enabled: true}
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string // "" valid
	}{
		{"plaintext", Config{}, ""},
		{"TLS only", Config{TLS: withTLS}, ""},
		{"SCRAM-SHA-512 over TLS", Config{TLS: withTLS, SASL: SASL{Mechanism: "scram-sha-512", Username: "u", Password: "p"}}, ""},
		{"SCRAM-SHA-256 without TLS", Config{SASL: SASL{Mechanism: ScramSHA256, Username: "u", Password: "p"}}, ""},
		{"PLAIN over TLS", Config{TLS: withTLS, SASL: SASL{Mechanism: Plain, Username: "u", Password: "p"}}, ""},
		{"PLAIN without TLS", Config{SASL: SASL{Mechanism: Plain, Username: "u", Password: "p"}}, "in the clear"},
		{"unknown mechanism", Config{SASL: SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"}}, "unknown SASL mechanism"},
		{"no username", Config{TLS: withTLS, SASL: SASL{Mechanism: Plain, Password: "p"}}, "without a username"},
		{"no password", Config{TLS: withTLS, SASL: SASL{Mechanism: Plain, Username: "u"}}, "without a password"},
		{"password without mechanism", Config{SASL: SASL{Username: "u", Password: "p"}}, "without a SASL mechanism"},
		{"cert without key", Config{TLS: tlsconf.Client{CertFile: "c.pem"}}, "both a certificate file and a key file"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.err)
		}
	}
}

func TestOpen(t *testing.T) {
	c, err := Config{SASL: SASL{Mechanism: "scram-sha-512", Username: "u", Password: "p"}}.Open()
	if err != nil {
		t.Fatal(err)
	}
	if c.SASL == nil || c.SASL.Name() != ScramSHA512 || c.TLS != nil {
		t.Errorf("SCRAM without TLS: %+v", c)
	}
	if d := c.Dialer("x"); d.SASLMechanism != c.SASL || d.Timeout == 0 {
		t.Errorf("dialer %+v", d)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, []byte("not a certificate"), 0o600)
	if _, err := (Config{TLS: tlsconf.Client{CAFile: ca}}).Open(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("CA file without a certificate: %v", err)
	}
	if _, err := (Config{TLS: tlsconf.Client{CAFile: filepath.Join(t.TempDir(), "missing.pem")}}).Open(); err == nil {
		t.Error("missing CA file accepted")
	}
}

// sizingConn remembers the largest read asked of the socket under a
// Dialer's buffer.
type sizingConn struct {
	net.Conn
	largest int
}

func (c *sizingConn) Read(p []byte) (int, error) {
	c.largest = max(c.largest, len(p))
	return c.Conn.Read(p)
}

// TestDialerBuffersReads: a Dialer's connection asks its socket for up
// to ReadBuffer bytes at once, so kafka.Conn's 4 KiB reads of a large
// response do not each cost a system call; every byte still arrives in
// order.
func TestDialerBuffersReads(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 1 << 20
	sent := make([]byte, size)
	for i := range sent {
		sent[i] = byte(i * 7)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write(sent)
		c.Close()
	}()
	d := Conn{DialTimeout: 5 * time.Second}.Dialer("test")
	conn, err := d.DialFunc(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bc, ok := conn.(*bufferedConn)
	if !ok {
		t.Fatalf("Dialer's connection is a %T, want it buffered", conn)
	}
	sc := &sizingConn{Conn: bc.Conn}
	bc.r.Reset(sc)
	var got []byte
	buf := make([]byte, 4096) // kafka.Conn's bufio.Reader size
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, sent) {
		t.Fatalf("read %d bytes, not the %d sent", len(got), len(sent))
	}
	if sc.largest < ReadBuffer {
		t.Errorf("the socket was asked for at most %d bytes at once, want %d", sc.largest, ReadBuffer)
	}
}
