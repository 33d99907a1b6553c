package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/patchgrid/patchgrid/schemas/kafkaconn"
	"github.com/patchgrid/patchgrid/schemas/tlsconf"
)

// Environment variables that carry passwords. A password is never a flag:
// command lines are visible to every user of the machine (ps, /proc).
const (
	envKafkaPassword      = "PATCHGRID_KAFKA_SASL_PASSWORD"
	envClickHousePassword = "PATCHGRID_CLICKHOUSE_PASSWORD"
)

// kafkaFlags are the connection-security flags of every subcommand that
// talks to Kafka (scan, simulate, ingest, run).
type kafkaFlags struct {
	env          *cliEnv
	tls          tlsFlags
	mechanism    string
	user         string
	passwordFile string
}

func addKafkaFlags(fs *flag.FlagSet, env *cliEnv) *kafkaFlags {
	f := &kafkaFlags{env: env}
	f.tls.add(fs, "kafka", "the Kafka brokers")
	fs.StringVar(&f.mechanism, "kafka-sasl-mechanism", "", "SASL mechanism: "+strings.Join(kafkaconn.Mechanisms, ", ")+" (empty: no SASL; PLAIN needs TLS)")
	fs.StringVar(&f.user, "kafka-sasl-user", "", "SASL username")
	fs.StringVar(&f.passwordFile, "kafka-sasl-password-file", "", "file holding the SASL password (else $"+envKafkaPassword+")")
	return f
}

// config returns the validated connection settings, with the password read.
func (f *kafkaFlags) config() (kafkaconn.Config, error) {
	c := kafkaconn.Config{TLS: f.tls.client(), SASL: kafkaconn.SASL{Mechanism: f.mechanism, Username: f.user}}
	if f.mechanism != "" {
		pw, err := readSecret(f.env, envKafkaPassword, "kafka-sasl-password-file", f.passwordFile)
		if err != nil {
			return c, err
		}
		c.SASL.Password = pw
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// tlsFlags are one connection's TLS flags: --<prefix>-tls, -tls-ca, ...
type tlsFlags struct {
	on                        bool
	ca, cert, key, serverName string
}

func (t *tlsFlags) add(fs *flag.FlagSet, prefix, what string) {
	fs.BoolVar(&t.on, prefix+"-tls", false, "connect to "+what+" over TLS (implied by the other -"+prefix+"-tls-* flags)")
	fs.StringVar(&t.ca, prefix+"-tls-ca", "", "PEM file of the CAs that sign "+what+"' certificates (default: system roots)")
	fs.StringVar(&t.cert, prefix+"-tls-cert", "", "PEM client certificate, for mutual TLS with "+what)
	fs.StringVar(&t.key, prefix+"-tls-key", "", "PEM key of -"+prefix+"-tls-cert")
	fs.StringVar(&t.serverName, prefix+"-tls-server-name", "", "name expected in "+what+"' certificates (default: the host dialled)")
}

func (t *tlsFlags) client() tlsconf.Client {
	return tlsconf.Client{Enabled: t.on, CAFile: t.ca, CertFile: t.cert, KeyFile: t.key, ServerName: t.serverName}
}

// readSecret returns the secret in file (flag fileFlag), else in the
// environment variable envVar; both set is an error rather than a guess.
// One trailing newline of the file is dropped.
func readSecret(env *cliEnv, envVar, fileFlag, file string) (string, error) {
	fromEnv := env.getenv(envVar)
	if file == "" {
		return fromEnv, nil
	}
	if fromEnv != "" {
		return "", fmt.Errorf("both $%s and -%s are set: use one", envVar, fileFlag)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("-%s: %w", fileFlag, err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("-%s: %s is empty", fileFlag, file)
	}
	return s, nil
}
