package tlsconf_test

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/tlsconf"
)

func TestLoad(t *testing.T) {
	certs := testenv.NewCerts(t, t.TempDir())
	if c, err := (tlsconf.Client{}).Load(); c != nil || err != nil {
		t.Errorf("zero value: %v, %v; want plaintext", c, err)
	}
	c, err := tlsconf.Client{CAFile: certs.CA, CertFile: certs.Cert, KeyFile: certs.Key, ServerName: "localhost"}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.RootCAs == nil || len(c.Certificates) != 1 || c.ServerName != "localhost" || c.MinVersion != tls.VersionTLS12 || c.InsecureSkipVerify {
		t.Errorf("config %+v", c)
	}
	if c, err := (tlsconf.Client{Enabled: true}).Load(); err != nil || c.RootCAs != nil {
		t.Errorf("TLS with the system roots: %v, %v", c, err)
	}
	for name, tc := range map[string]struct {
		c    tlsconf.Client
		want string
	}{
		"key without certificate": {tlsconf.Client{KeyFile: certs.Key}, "both a certificate file and a key file"},
		"missing CA":              {tlsconf.Client{CAFile: filepath.Join(t.TempDir(), "nope.pem")}, "CA file"},
		"CA that is a key":        {tlsconf.Client{CAFile: certs.Key}, "no PEM certificate"},
		"key of another cert":     {tlsconf.Client{CertFile: certs.CA, KeyFile: certs.Key}, "client certificate"},
	} {
		if _, err := tc.c.Load(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}
