// Package testenv gives integration tests the real dependencies: a fresh
// PostgreSQL database (migrated) on the project's private cluster, a
// Kafka-protocol broker (kfake) on a loopback port, and the project's
// binaries.
package testenv

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/launch"
	"github.com/ratestream/ratestream/pkg/migrate"
	"github.com/ratestream/ratestream/pkg/rating"
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	adminOnce sync.Once
	adminURL  string
	adminErr  error
)

// AdminURL is the URL of the test server's maintenance database:
// RATESTREAM_TEST_DATABASE_URL when set (make test sets it), else the
// private cluster started by scripts/postgres.sh.
func AdminURL(t testing.TB) string {
	adminOnce.Do(func() {
		if u := os.Getenv("RATESTREAM_TEST_DATABASE_URL"); u != "" {
			adminURL = u
			return
		}
		out, err := exec.Command(filepath.Join(Root(), "scripts", "postgres.sh"), "start").Output()
		adminURL, adminErr = strings.TrimSpace(string(out)), err
	})
	if adminErr != nil {
		t.Fatalf("no PostgreSQL for tests (run `make test`): %v", adminErr)
	}
	return adminURL
}

// Database is a fresh migrated database, dropped after the test.
type Database struct {
	URL  string
	Pool *pgxpool.Pool
}

// NewDatabase creates and migrates a database of its own for the test.
func NewDatabase(t testing.TB) *Database {
	t.Helper()
	url, drop, err := migrate.Scratch(context.Background(), AdminURL(t), "test")
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		drop()
		t.Fatalf("connect test database: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		drop()
	})
	return &Database{URL: url, Pool: pool}
}

// Broker is a kfake cluster on a loopback port that a test can stop and
// start again on the same port.
type Broker struct {
	t       testing.TB
	Port    int
	Config  broker.Config
	dataDir string
	extra   []kfake.Opt
	c       *kfake.Cluster
}

// NewBroker starts a broker with the rating topic (and its dead-letter
// topic) of the given partition count. Its log lives in a temporary
// directory, so Stop and Start keep the data.
func NewBroker(t testing.TB, partitions int) *Broker {
	t.Helper()
	b := &Broker{t: t, Port: FreePort(t), dataDir: t.TempDir()}
	b.Config = broker.Config{
		Brokers: []string{fmt.Sprintf("127.0.0.1:%d", b.Port)}, Topic: "ratings.v1", ScoreTopic: "post-scores.v1",
		Partitions: partitions, Replicas: 1,
	}
	b.Start()
	t.Cleanup(b.Stop)
	return b
}

// NewSecureBroker starts a broker that speaks only TLS (a self-signed
// certificate for 127.0.0.1) and SCRAM-SHA-256 with user and password, as
// a managed Kafka does. Its Config has the matching client settings.
func NewSecureBroker(t testing.TB, partitions int, user, password string) *Broker {
	t.Helper()
	dir := t.TempDir()
	cert, certFile := selfSigned(t, dir)
	pwFile := filepath.Join(dir, "kafka-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &Broker{t: t, Port: FreePort(t), dataDir: t.TempDir(), extra: []kfake.Opt{
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", user, password),
	}}
	b.Config = broker.Config{
		Brokers: []string{fmt.Sprintf("127.0.0.1:%d", b.Port)}, Topic: "ratings.v1", ScoreTopic: "post-scores.v1", Partitions: partitions, Replicas: 1,
		Security: broker.Security{TLS: true, TLSCAFile: certFile, SASLMechanism: "SCRAM-SHA-256", SASLUser: user, SASLPasswordFile: pwFile},
	}
	b.Start()
	t.Cleanup(b.Stop)
	return b
}

// selfSigned makes a certificate for 127.0.0.1 and writes it, as the CA
// the clients trust, to dir.
func selfSigned(t testing.TB, dir string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, file
}

// Start (re)starts the broker on its port.
func (b *Broker) Start() {
	b.t.Helper()
	if b.c != nil {
		return
	}
	var err error
	for i := 0; i < 50; i++ { // the port may linger for a moment after Stop
		opts := append([]kfake.Opt{kfake.Ports(b.Port), kfake.DataDir(b.dataDir)}, b.extra...)
		b.c, err = kfake.NewCluster(opts...)
		if err == nil {
			// The topics as the services create them (not seeded: seeded
			// topics get the broker's default seven-day retention).
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, topic := range []string{b.Config.Topic, b.Config.DLQTopic()} {
				if err := broker.EnsureTopic(ctx, b.Config, topic, b.Config.Partitions); err != nil {
					b.t.Fatalf("create topic %s: %v", topic, err)
				}
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("start broker: %v", err)
}

// Stop stops the broker (its data stays).
func (b *Broker) Stop() {
	if b.c != nil {
		b.c.Close()
		b.c = nil
	}
}

// TopicConfig reads one setting of a topic from the brokers.
func TopicConfig(t testing.TB, brokers []string, topic, name string) string {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	resp, err := c.DescribeConfigs(context.Background(), &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{name},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Resources {
		for _, e := range r.ConfigEntries {
			if e.ConfigName == name {
				return e.ConfigValue
			}
		}
	}
	return ""
}

// Messages reads every message of a topic from the beginning.
func (b *Broker) Messages(t testing.TB, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parts, err := broker.Partitions(ctx, b.Config, topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	var out []kafka.Message
	for _, p := range parts {
		err := broker.ReadPartition(ctx, b.Config, topic, p, func(m kafka.Message) error {
			out = append(out, m)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// FreePort returns a loopback TCP port that was free a moment ago (see
// launch.FreeAddr).
func FreePort(t testing.TB) int {
	t.Helper()
	addr, err := launch.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	return port
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}

// Binary returns the path of a project command (see Binaries).
func Binary(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(Binaries(t), name)
}

// WaitHTTP polls url until it answers 200 or the timeout passes.
func WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	c := http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within %s", url, timeout)
}

// Eventually retries check until it returns nil or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("not within %s: %v", timeout, err)
}

// Launch starts a program and stops it (SIGTERM, then SIGKILL after 20 s)
// when the test ends; its output goes to the test's stderr unless the
// spec names another.
func Launch(t testing.TB, s launch.Spec) *launch.Process {
	t.Helper()
	if s.Output == nil {
		s.Output = os.Stderr
	}
	p, err := launch.Start(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(20 * time.Second) })
	return p
}

// Binaries returns a directory holding every project command: the one
// make test built (RATESTREAM_BIN), or a fresh build.
func Binaries(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("RATESTREAM_BIN"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "stack")); err == nil {
			return dir
		}
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/",
		"github.com/ratestream/ratestream/services/ingest", "github.com/ratestream/ratestream/services/windower",
		"github.com/ratestream/ratestream/services/scorer", "github.com/ratestream/ratestream/services/query",
		"github.com/ratestream/ratestream/tools/cmd/...", "github.com/ratestream/ratestream/cmd/ratestream",
		"github.com/ratestream/ratestream/simulation/cmd/...")
	cmd.Dir = Root()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build commands: %v\n%s", err, b)
	}
	return dir
}

// Writer returns a writer to the rating topic, batching generously, closed
// when the test ends.
func (b *Broker) Writer(t testing.TB) *kafka.Writer {
	t.Helper()
	return b.writer(t, Target{})
}

func (b *Broker) writer(t testing.TB, to Target) *kafka.Writer {
	t.Helper()
	w, err := broker.NewWriter(b.Config, cmp.Or(to.Topic, b.Config.Topic), broker.WriterTuning{BatchSize: 5000, BatchBytes: 4 << 20, BatchTimeout: 5 * time.Millisecond, WriteTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if to.Partition != nil {
		w.Balancer = fixedPartition(*to.Partition)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// Target says where ProduceTo writes.
type Target struct {
	// Topic is the topic; empty is the rating topic.
	Topic string
	// Partition, when set, takes every message whatever its key (a
	// producer that does not partition by murmur2); nil partitions by
	// key as ingest does.
	Partition *int
}

type fixedPartition int

func (p fixedPartition) Balance(kafka.Message, ...int) int { return int(p) }

// Produce writes events to the rating topic, keyed by post as ingest
// keys them, then the extra messages as they are.
func (b *Broker) Produce(t testing.TB, evs []rating.Event, extra ...kafka.Message) {
	t.Helper()
	b.ProduceTo(t, Target{}, evs, extra...)
}

// ProduceTo is Produce to another topic or partition.
func (b *Broker) ProduceTo(t testing.TB, to Target, evs []rating.Event, extra ...kafka.Message) {
	t.Helper()
	w := b.writer(t, to)
	msgs := make([]kafka.Message, 0, len(evs)+len(extra))
	for _, e := range evs {
		v, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: e.Key(), Value: v})
	}
	msgs = append(msgs, extra...)
	for len(msgs) > 0 {
		n := min(len(msgs), 20000)
		if err := w.WriteMessages(context.Background(), msgs[:n]...); err != nil {
			t.Fatalf("produce: %v", err)
		}
		msgs = msgs[n:]
	}
}

// WaitUnready polls url (a /readyz) until it answers 503 with a body that
// contains want (case-insensitive), and returns that body.
func WaitUnready(t testing.TB, url, want string, timeout time.Duration) string {
	t.Helper()
	var body []byte
	Eventually(t, timeout, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(strings.ToLower(string(body)), strings.ToLower(want)) {
			return fmt.Errorf("%s: %d %s", url, resp.StatusCode, body)
		}
		return nil
	})
	return string(body)
}

// Postgres is a PostgreSQL cluster of a test's own (scripts/postgres.sh
// with another directory and port), which the test may stop and start:
// the shared test server must not go down under other tests.
type Postgres struct {
	URL string
	env []string
}

// NewPostgres starts a private cluster with one database; it is stopped
// and deleted when the test ends.
func NewPostgres(t testing.TB) *Postgres {
	t.Helper()
	run := t.TempDir()
	p := &Postgres{env: append(os.Environ(), "DATABASE_URL=", "PGRUN_PRIVATE="+run,
		fmt.Sprintf("PGPORT_PRIVATE=%d", FreePort(t)), "PGDATABASE_PRIVATE=ratestream")}
	out, err := p.script("start")
	if err != nil {
		t.Fatalf("private PostgreSQL: %v\n%s", err, out)
	}
	p.URL = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		_, _ = p.script("stop")
		if real, err := filepath.EvalSymlinks(filepath.Join(run, "pg")); err == nil {
			_ = os.RemoveAll(filepath.Dir(real))
		}
	})
	if _, err := migrate.Up(p.URL); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return p
}

func (p *Postgres) script(cmd string) ([]byte, error) {
	c := exec.Command(filepath.Join(Root(), "scripts", "postgres.sh"), cmd)
	c.Env = p.env
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return append(out, stderr.Bytes()...), err
	}
	return out, nil
}

// Stop shuts the cluster down (fast: connections are closed).
func (p *Postgres) Stop(t testing.TB) {
	t.Helper()
	if out, err := p.script("stop"); err != nil {
		t.Fatalf("stop PostgreSQL: %v\n%s", err, out)
	}
}

// Start starts it again.
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	if out, err := p.script("start"); err != nil {
		t.Fatalf("start PostgreSQL: %v\n%s", err, out)
	}
}
