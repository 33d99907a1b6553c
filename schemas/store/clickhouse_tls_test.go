package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/patchgrid/patchgrid/schemas/store"
	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/tlsconf"
)

// TestServerTLS runs the store over TLS against a private Debian 18.16
// server whose secure native port carries a certificate from a CA the test
// made: queries and inserts work with the CA, and the connection is
// refused without it, or in plaintext on the secure port.
func TestServerTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ClickHouse server of its own")
	}
	certs := testenv.NewCerts(t, t.TempDir())
	srv := testenv.StartClickHouse(t, testenv.ClickHouseOptions{TCPPort: 29000, HTTPPort: 29001, SecurePort: 29002, Certs: &certs})
	t.Logf("private server ready in %v", srv.StartupTime())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	tlsCfg, err := tlsconf.Client{CAFile: certs.CA}.Load()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Config{Backend: "clickhouse", Addr: srv.TLSAddr, Database: "tls_test", TLS: tlsCfg, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open over TLS: %v", err)
	}
	defer st.Close()
	if err := st.Exec(ctx, "CREATE TABLE t (id UInt32, name String) ENGINE = MergeTree ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	if err := st.Insert(ctx, "t", []string{"id", "name"}, [][]any{{uint32(1), "a"}, {uint32(2), "b"}}); err != nil {
		t.Fatalf("insert over TLS: %v", err)
	}
	rows, err := st.Query(ctx, "SELECT count() FROM t")
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	if !rows.Next() || rows.Scan(&n) != nil || n != 2 {
		t.Errorf("count over TLS = %d (%v)", n, rows.Err())
	}
	rows.Close()

	// The system roots do not know the test CA: verification fails.
	noCA, err := tlsconf.Client{Enabled: true}.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  store.Config
		want string
	}{
		{"unknown CA", store.Config{Backend: "clickhouse", Addr: srv.TLSAddr, Database: "default", TLS: noCA}, "certificate"},
		{"plaintext to the secure port", store.Config{Backend: "clickhouse", Addr: srv.TLSAddr, Database: "default"}, ""},
	} {
		tc.cfg.DialTimeout = 3 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := store.Open(ctx, tc.cfg)
		cancel()
		if err == nil {
			st.Close()
			t.Errorf("%s: connected", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
		t.Logf("%s: refused: %v", tc.name, err)
	}
}
