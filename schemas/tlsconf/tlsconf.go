// Package tlsconf builds the client side of a TLS connection from PEM files:
// the one way patchgrid configures TLS to Kafka and to ClickHouse, so the
// flags, the defaults and the error messages are the same for both.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Client configures a TLS client. TLS is on when Enabled is set or any file
// is given; the zero value means plaintext.
type Client struct {
	Enabled bool
	// CAFile is a PEM bundle of the CAs that sign the server's certificate.
	// Default: the system's roots.
	CAFile string
	// CertFile and KeyFile are a client certificate and its key (PEM), for
	// servers that require mutual TLS. Both or neither.
	CertFile, KeyFile string
	// ServerName is the name the server's certificate must carry. Default:
	// the host of the address dialled.
	ServerName string
}

// On reports whether TLS is wanted.
func (c Client) On() bool {
	return c.Enabled || c.CAFile != "" || c.CertFile != "" || c.KeyFile != ""
}

// Validate checks the settings without reading the files.
func (c Client) Validate() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("tls: a client certificate needs both a certificate file and a key file")
	}
	return nil
}

// Load returns the tls.Config, or nil when TLS is off. The verification of
// the server is never switched off: a test or a private CA gives CAFile.
func (c Client) Load() (*tls.Config, error) {
	if !c.On() {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: CA file %s holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
