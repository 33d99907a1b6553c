// Package kafkaconn is how every patchgrid Kafka client (the scan producer,
// the ingest consumer and its dead-letter writer, outcome publishers)
// secures its connections: TLS and SASL (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512), configured once in Config and turned into the kafka-go
// Dialer (readers) or Transport (writers, admin clients).
//
// The zero Config is plaintext without authentication, as on a development
// broker. SASL PLAIN sends the password itself, so it is refused without
// TLS; SCRAM proves the password without sending it, but without TLS the
// session after it is still readable and forgeable, so production brokers
// should use SASL_SSL either way (see SECURITY.md).
package kafkaconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/patchgrid/patchgrid/schemas/tlsconf"
)

// SASL mechanisms, spelled as Kafka's sasl.enabled.mechanisms spells them.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Mechanisms lists the supported SASL mechanisms.
var Mechanisms = []string{Plain, ScramSHA256, ScramSHA512}

// Config secures the connections to the brokers. Zero value: plaintext.
type Config struct {
	TLS  tlsconf.Client
	SASL SASL
	// DialTimeout bounds connecting (TCP, TLS and SASL). Default 10s.
	DialTimeout time.Duration
}

// SASL authenticates the client. An empty Mechanism means no SASL.
type SASL struct {
	Mechanism string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (case-insensitive)
	Username  string
	// Password comes from an environment variable or a file (the CLI reads
	// it); it is never logged.
	Password string
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("negative dial timeout %v", c.DialTimeout))
	}
	if m := c.SASL.mechanism(); m != "" {
		switch m {
		case Plain, ScramSHA256, ScramSHA512:
		default:
			errs = append(errs, fmt.Errorf("unknown SASL mechanism %q (want one of %s)", c.SASL.Mechanism, strings.Join(Mechanisms, ", ")))
		}
		if c.SASL.Username == "" {
			errs = append(errs, fmt.Errorf("SASL %s without a username", m))
		}
		if c.SASL.Password == "" {
			errs = append(errs, fmt.Errorf("SASL %s without a password", m))
		}
		if m == Plain && !c.TLS.On() {
			errs = append(errs, errors.New("SASL PLAIN without TLS would send the password in the clear"))
		}
	} else if c.SASL.Username != "" || c.SASL.Password != "" {
		errs = append(errs, errors.New("SASL username or password without a SASL mechanism"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka connection: %w", err)
	}
	return nil
}

func (s SASL) mechanism() string { return strings.ToUpper(strings.TrimSpace(s.Mechanism)) }

// Secure reports whether TLS or SASL is configured.
func (c Config) Secure() bool { return c.TLS.On() || c.SASL.mechanism() != "" }

// Conn is a validated Config with its files read: what kafka-go needs.
type Conn struct {
	TLS         *tls.Config    // nil: plaintext
	SASL        sasl.Mechanism // nil: no authentication
	DialTimeout time.Duration
}

// Open validates c and reads its files.
func (c Config) Open() (Conn, error) {
	if err := c.Validate(); err != nil {
		return Conn{}, err
	}
	t, err := c.TLS.Load()
	if err != nil {
		return Conn{}, fmt.Errorf("kafka connection: %w", err)
	}
	conn := Conn{TLS: t, DialTimeout: c.DialTimeout}
	if conn.DialTimeout == 0 {
		conn.DialTimeout = 10 * time.Second
	}
	switch c.SASL.mechanism() {
	case Plain:
		conn.SASL = plain.Mechanism{Username: c.SASL.Username, Password: c.SASL.Password}
	case ScramSHA256, ScramSHA512:
		algo := scram.SHA512
		if c.SASL.mechanism() == ScramSHA256 {
			algo = scram.SHA256
		}
		m, err := scram.Mechanism(algo, c.SASL.Username, c.SASL.Password)
		if err != nil {
			// Only a username or password that SASLprep rejects gets here.
			return Conn{}, fmt.Errorf("kafka connection: SASL %s: %w", c.SASL.mechanism(), err)
		}
		conn.SASL = m
	}
	return conn, nil
}

// Dialer is for kafka.Reader and the consumers' own fetches, which dial
// through a Dialer. Its connections read their socket through a
// ReadBuffer-byte buffer (below TLS when there is TLS): kafka.Conn reads
// through a 4 KiB bufio.Reader, so a 16 MiB fetch response would cost
// 4,000 read system calls, a tenth of a fetch's CPU.
func (c Conn) Dialer(clientID string) *kafka.Dialer {
	d := &kafka.Dialer{
		ClientID:      clientID,
		Timeout:       c.DialTimeout,
		DualStack:     true,
		TLS:           c.TLS,
		SASLMechanism: c.SASL,
	}
	// A plain net.Dialer is what kafka.Dialer dials with when it has no
	// DialFunc and none of the fields it would copy (its timeouts come
	// with the context).
	var nd net.Dialer
	d.DialFunc = func(ctx context.Context, network, address string) (net.Conn, error) {
		conn, err := nd.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, ReadBuffer)}, nil
	}
	return d
}

// ReadBuffer is how many bytes a Dialer's connection reads from its
// socket at once.
const ReadBuffer = 256 << 10

// bufferedConn is a net.Conn whose reads go through r.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Transport is for kafka.Writer and kafka.Client.
func (c Conn) Transport(clientID string) *kafka.Transport {
	return &kafka.Transport{
		ClientID:    clientID,
		DialTimeout: c.DialTimeout,
		TLS:         c.TLS,
		SASL:        c.SASL,
	}
}
