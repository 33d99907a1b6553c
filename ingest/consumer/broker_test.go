package consumer_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/patchgrid/patchgrid/ingest/consumer"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

// privateBroker is a single-node KRaft Kafka of the test's own, on free
// loopback ports, so that killing it disturbs no other test (the shared
// test broker serves every package's tests at once).
type privateBroker struct {
	t      *testing.T
	dir    string
	addr   string
	libs   string
	cmd    *exec.Cmd
	exited chan struct{}
	// client checks readiness; it speaks the broker's client listener's
	// protocol (plaintext, or SASL_SSL for the security tests).
	client *kafka.Client
}

// kafkaLibs finds the Kafka jars scripts/install-kafka.sh caches.
func kafkaLibs(t *testing.T) string {
	cache := os.Getenv("PATCHGRID_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "patchgrid")
	}
	matches, _ := filepath.Glob(filepath.Join(cache, "kafka-*", "libs", "kafka_2.13-*.jar"))
	_, javaErr := exec.LookPath("java")
	if len(matches) == 0 || javaErr != nil {
		msg := "Kafka jars (scripts/install-kafka.sh) or java not found for a private broker"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return filepath.Dir(matches[0])
}

// freePorts returns n distinct free loopback ports. Every listener stays
// open until all n are picked: closed one by one, the kernel may hand the
// same port out twice, and Kafka then refuses a broker whose listeners
// share a port (a CI run failed so).
func freePorts(t *testing.T, n int) []int {
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

func startPrivateBroker(t *testing.T) *privateBroker {
	b := &privateBroker{t: t, dir: t.TempDir(), libs: kafkaLibs(t)}
	ports := freePorts(t, 2)
	port, ctrl := ports[0], ports[1]
	b.addr = fmt.Sprintf("127.0.0.1:%d", port)
	b.client = &kafka.Client{Addr: kafka.TCP(b.addr), Timeout: 2 * time.Second}
	b.format(fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:%[2]d
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=%[3]s/data
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
`, port, ctrl, b.dir))
	t.Cleanup(b.kill)
	b.start()
	return b
}

// format writes props as the broker's server.properties and formats its
// storage, with extra arguments for the storage tool (SCRAM users).
func (b *privateBroker) format(props string, extra ...string) {
	t := b.t
	if err := os.WriteFile(filepath.Join(b.dir, "server.properties"), []byte(props), 0o644); err != nil {
		t.Fatal(err)
	}
	// A cluster id starting with '-' reads as an option to the tool's
	// argument parser (1 in 64 runs failed so); Kafka's own random ids
	// avoid it the same way.
	var clusterID string
	for clusterID == "" || clusterID[0] == '-' {
		id := make([]byte, 16)
		rand.Read(id)
		clusterID = base64.RawURLEncoding.EncodeToString(id)
	}
	format := b.java(append([]string{"kafka.tools.StorageTool", "format", "--ignore-formatted",
		"-t", clusterID, "-c", filepath.Join(b.dir, "server.properties")}, extra...)...)
	if out, err := format.CombinedOutput(); err != nil {
		t.Fatalf("format Kafka storage: %v\n%s", err, out)
	}
}

func (b *privateBroker) java(args ...string) *exec.Cmd {
	jvm := []string{"-Xms128m", "-Xmx384m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
		"-Dkafka.logs.dir=" + filepath.Join(b.dir, "log"), "-cp", filepath.Join(b.libs, "*")}
	return exec.Command("java", append(jvm, args...)...)
}

// start launches the broker and waits until it serves metadata.
func (b *privateBroker) start() {
	t := b.t
	log, err := os.OpenFile(filepath.Join(b.dir, "stdout.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	b.cmd = b.java("kafka.Kafka", filepath.Join(b.dir, "server.properties"))
	b.cmd.Stdout, b.cmd.Stderr = log, log
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	b.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); log.Close(); close(done) }(b.cmd, b.exited)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		md, err := b.client.Metadata(ctx, &kafka.MetadataRequest{})
		cancel()
		if err == nil && len(md.Brokers) > 0 {
			return
		}
		select {
		case <-b.exited:
			out, _ := os.ReadFile(filepath.Join(b.dir, "stdout.log"))
			t.Fatalf("broker exited during startup:\n%s", tail(out, 3000))
		case <-time.After(300 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker not ready after 3 minutes: %v", err)
		}
	}
}

// kill SIGKILLs the broker: a crash, not a clean shutdown.
func (b *privateBroker) kill() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
	b.cmd = nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// TestSurvivesBrokerRestart crashes the broker (SIGKILL) while a consumer
// is loading, restarts it on the same data, and expects the consumer to
// carry on by itself and load every scan exactly once.
func TestSurvivesBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker of its own")
	}
	b := startPrivateBroker(t)
	st := testenv.ServerStore(t)
	migrate(t, st)
	msgs := fleetMessages(t, 40, 10)
	want := expect(t, msgs)
	topic := newTopic(t, b.addr, 2)
	produce(t, b.addr, topic, msgs)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var (
		wg    sync.WaitGroup
		stats consumer.Stats
		err   error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		stats, err = consumer.Run(ctx, consumer.Config{
			Brokers: []string{b.addr}, Topic: topic, GroupID: topic + "-group", Drain: true,
			BatchRows: 2000, FlushInterval: 20 * time.Millisecond, RetryBackoffMax: time.Second,
			SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second,
			Logger: quietLogger(t),
		}, slowStore{st})
	}()
	for count(t, st, "SELECT count() FROM scans") < uint64(want.scans/4) {
		if ctx.Err() != nil {
			t.Fatal("consumer loaded nothing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := count(t, st, "SELECT count() FROM scans")
	b.kill()
	time.Sleep(2 * time.Second)
	b.start()
	t.Logf("broker killed after %d of %d scan rows and restarted", before, want.scans)
	wg.Wait()
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	t.Logf("consumer: %+v", stats)
	checkLoaded(t, st, want)
}
