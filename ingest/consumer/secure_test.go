package consumer_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/scanner/publish"
	"github.com/patchgrid/patchgrid/scanner/simulate"
	"github.com/patchgrid/patchgrid/schemas/kafkaconn"
	"github.com/patchgrid/patchgrid/schemas/testenv"
	"github.com/patchgrid/patchgrid/schemas/tlsconf"
)

// Ports of the SASL_SSL broker (the project's range for it is 29092-29095).
const (
	secureBrokerPort   = 29092
	secureControlPort  = 29093
	secureInternalPort = 29094
)

// Users of the SASL_SSL broker: one SCRAM-SHA-512 user made at format time,
// one PLAIN user from the listener's JAAS configuration.
const (
	scramUser, scramPassword = "scanner", "scram-Secret-1"
	plainUser, plainPassword = "ingest", "plain-Secret-2"
)

// startSecureBroker starts a private broker whose client listener is
// SASL_SSL only, with a certificate from a CA the test made. The broker
// talks to itself on a plaintext loopback listener of its own, which no
// test client uses.
func startSecureBroker(t *testing.T) (*privateBroker, testenv.Certs) {
	b := &privateBroker{t: t, dir: t.TempDir(), libs: kafkaLibs(t)}
	certs := testenv.NewCerts(t, t.TempDir())
	b.addr = fmt.Sprintf("127.0.0.1:%d", secureBrokerPort)
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:%[2]d
listeners=SASL_SSL://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d,INTERNAL://127.0.0.1:%[3]d
advertised.listeners=SASL_SSL://127.0.0.1:%[1]d,INTERNAL://127.0.0.1:%[3]d
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_%[5]s="%[6]s";
ssl.keystore.type=PEM
ssl.keystore.location=%[4]s
ssl.client.auth=none
log.dirs=%[7]s/data
auto.create.topics.enable=false
num.partitions=2
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=2
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
`, secureBrokerPort, secureControlPort, secureInternalPort, certs.Chain, plainUser, plainPassword, b.dir)
	b.format(props, "--add-scram", fmt.Sprintf("SCRAM-SHA-512=[name=%s,password=%s]", scramUser, scramPassword))
	conn, err := scramConn(certs, scramPassword).Open()
	if err != nil {
		t.Fatal(err)
	}
	b.client = &kafka.Client{Addr: kafka.TCP(b.addr), Timeout: 5 * time.Second, Transport: conn.Transport("readiness")}
	t.Cleanup(b.kill)
	b.start()
	return b, certs
}

func scramConn(certs testenv.Certs, password string) kafkaconn.Config {
	return kafkaconn.Config{
		TLS:  tlsconf.Client{CAFile: certs.CA},
		SASL: kafkaconn.SASL{Mechanism: kafkaconn.ScramSHA512, Username: scramUser, Password: password},
	}
}

// TestSASLSSL runs producer, consumer group, dead-letter writer and topic
// admin through a real Kafka 4.1 broker that accepts SASL_SSL only, with
// SCRAM-SHA-512 and PLAIN; wrong passwords, an unknown CA and plaintext are
// refused.
func TestSASLSSL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker of its own")
	}
	st := testenv.ServerStore(t)
	migrate(t, st)
	started := time.Now()
	b, certs := startSecureBroker(t)
	t.Logf("SASL_SSL broker ready in %v", time.Since(started).Round(time.Millisecond))
	plain := kafkaconn.Config{
		TLS:  tlsconf.Client{CAFile: certs.CA},
		SASL: kafkaconn.SASL{Mechanism: "plain", Username: plainUser, Password: plainPassword},
	}

	good := fleetMessages(t, 6, 2)
	poison := simulate.Message{Key: []byte("poison"), Value: []byte("not a scan")}
	msgs := append(append([]simulate.Message{}, good...), poison)
	want := expect(t, msgs)
	topic := "pgtest-sasl-ssl"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Topics are made with SCRAM, produced with SCRAM, consumed with PLAIN.
	for _, tp := range []string{topic, topic + ".dlq"} {
		if err := publish.EnsureTopicWith(ctx, scramConn(certs, scramPassword), []string{b.addr}, tp, 2); err != nil {
			t.Fatalf("create topic %s over SASL_SSL: %v", tp, err)
		}
	}
	p, err := publish.New(publish.Config{Brokers: []string{b.addr}, Topic: topic, Conn: scramConn(certs, scramPassword)})
	if err != nil {
		t.Fatal(err)
	}
	if err := (simulate.PublishSink{P: p}).Send(ctx, msgs); err != nil {
		t.Fatalf("produce over SASL_SSL: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	stats, err := consumer.Run(ctx, consumer.Config{
		Brokers: []string{b.addr}, Kafka: plain, Topic: topic, GroupID: topic + "-group", Drain: true,
		FlushInterval: 50 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second,
		Logger: quietLogger(t),
	}, st)
	if err != nil {
		t.Fatalf("consume over SASL_SSL: %v", err)
	}
	if stats.DeadLettered != 1 {
		t.Errorf("dead-lettered %d, want 1", stats.DeadLettered)
	}
	checkLoaded(t, st, want)

	// The DLQ record went through the secured writer too.
	pc, err := plain.Open()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for part := 0; part < 2 && !found; part++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.addr}, Topic: topic + ".dlq", Partition: part,
			Dialer: pc.Dialer("test"), MaxWait: 200 * time.Millisecond})
		rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
		m, err := r.ReadMessage(rctx)
		rcancel()
		r.Close()
		found = err == nil && bytes.Equal(m.Key, poison.Key)
	}
	if !found {
		t.Error("poison message not in the DLQ")
	}

	// Refusals. Each is bounded: the clients retry, the context ends it.
	refused := func(name string, conn kafkaconn.Config, want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		p, err := publish.New(publish.Config{Brokers: []string{b.addr}, Topic: topic, Conn: conn, MaxAttempts: 1, WriteTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		err = p.PublishEncoded(ctx, []byte("k"), good[0].Value)
		p.Close()
		if err == nil {
			t.Errorf("%s: publish accepted", name)
			return
		}
		if !strings.Contains(strings.ToLower(err.Error()), want) {
			t.Errorf("%s: %v, want an error mentioning %q", name, err, want)
		}
		t.Logf("%s: refused: %v", name, err)
	}
	refused("wrong SCRAM password", scramConn(certs, "wrong-password"), "authentication")
	wrongPlain := plain
	wrongPlain.SASL.Password = "wrong-password"
	refused("wrong PLAIN password", wrongPlain, "authentication")
	unknownCA := scramConn(certs, scramPassword)
	unknownCA.TLS = tlsconf.Client{Enabled: true}
	refused("unknown CA", unknownCA, "certificate")

	// A consumer with a wrong password fails at once in drain mode (it
	// cannot even read the topic's offsets), rather than loading anything.
	wrongScram := scramConn(certs, "wrong-password")
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	if _, err := consumer.Run(cctx, consumer.Config{Brokers: []string{b.addr}, Kafka: wrongScram, Topic: topic,
		GroupID: topic + "-wrong", Drain: true, Logger: quietLogger(t)}, st); err == nil {
		t.Error("consumer with a wrong password ran")
	} else {
		t.Logf("consumer with a wrong password: %v", err)
	}
	// Plaintext to the SASL_SSL listener.
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	if err := publish.EnsureTopic(pctx, []string{b.addr}, "pgtest-plaintext", 1); err == nil {
		t.Error("plaintext client created a topic on the SASL_SSL listener")
	}
}
