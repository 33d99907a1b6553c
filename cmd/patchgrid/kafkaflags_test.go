package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKafkaFlagsPassword(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string // password, or "error: text"
	}{
		{"from the environment", map[string]string{envKafkaPassword: "envpw"}, []string{"-kafka-sasl-mechanism", "SCRAM-SHA-512", "-kafka-sasl-user", "u"}, "envpw"},
		{"from a file", nil, []string{"-kafka-sasl-mechanism", "SCRAM-SHA-512", "-kafka-sasl-user", "u", "-kafka-sasl-password-file", pwFile}, "s3cret"},
		{"file through the environment", map[string]string{"PATCHGRID_KAFKA_SASL_PASSWORD_FILE": pwFile}, []string{"-kafka-sasl-mechanism", "SCRAM-SHA-512", "-kafka-sasl-user", "u"}, "s3cret"},
		{"both", map[string]string{envKafkaPassword: "envpw"}, []string{"-kafka-sasl-mechanism", "SCRAM-SHA-512", "-kafka-sasl-user", "u", "-kafka-sasl-password-file", pwFile}, "error: use one"},
		{"empty file", nil, []string{"-kafka-sasl-mechanism", "SCRAM-SHA-512", "-kafka-sasl-user", "u", "-kafka-sasl-password-file", empty}, "error: is empty"},
		{"missing password", nil, []string{"-kafka-sasl-mechanism", "SCRAM-SHA-512", "-kafka-sasl-user", "u"}, "error: without a password"},
		{"PLAIN needs TLS", map[string]string{envKafkaPassword: "pw"}, []string{"-kafka-sasl-mechanism", "PLAIN", "-kafka-sasl-user", "u"}, "error: in the clear"},
		{"PLAIN with TLS", map[string]string{envKafkaPassword: "pw"}, []string{"-kafka-tls", "-kafka-sasl-mechanism", "PLAIN", "-kafka-sasl-user", "u"}, "pw"},
	} {
		env := &cliEnv{stderr: io.Discard, getenv: func(k string) string { return tc.env[k] }}
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		kf := addKafkaFlags(fs, env)
		if _, ok := parseFlags(env, fs, tc.args); !ok {
			t.Fatalf("%s: flags refused", tc.name)
		}
		c, err := kf.config()
		if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want one containing %q", tc.name, err, want)
			}
			continue
		}
		if err != nil || c.SASL.Password != tc.want {
			t.Errorf("%s: password %q, err %v; want %q", tc.name, c.SASL.Password, err, tc.want)
		}
	}
}

func TestClickHousePasswordNeverAFlag(t *testing.T) {
	env := &cliEnv{stderr: io.Discard, getenv: func(k string) string {
		return map[string]string{envClickHousePassword: "chpw"}[k]
	}}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	sf := addStoreFlags(fs, env)
	if fs.Lookup("clickhouse-password") != nil {
		t.Error("a -clickhouse-password flag exists: passwords on command lines are visible to every local user")
	}
	if _, ok := parseFlags(env, fs, []string{"-clickhouse-tls"}); !ok {
		t.Fatal("flags refused")
	}
	cfg, err := sf.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Password != "chpw" || cfg.TLS == nil {
		t.Errorf("password %q, TLS %v", cfg.Password, cfg.TLS)
	}
}
