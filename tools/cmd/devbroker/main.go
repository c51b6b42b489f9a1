// Command devbroker runs a Kafka-protocol broker (franz-go's kfake) on
// loopback for development and tests: one broker, or a cluster of several
// in one process. Services reach it over TCP with kafka-go exactly as they
// would reach a real cluster. With a data dir the log survives a restart.
// With a control address it takes faults over HTTP: a broker's listener
// closed and its partitions' leadership moved to the others, a broker
// back, every partition's leader moved.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/logging"
	"github.com/ratestream/ratestream/pkg/service"
)

type settings struct {
	Listen  string `env:"DEVBROKER_ADDR" default:"127.0.0.1:9092" help:"host:port the (first) broker listens on"`
	Brokers int    `env:"DEVBROKER_BROKERS" default:"1" help:"brokers in the cluster; broker n listens n-1 ports above DEVBROKER_ADDR"`
	Control string `env:"DEVBROKER_CONTROL_ADDR" help:"loopback host:port of the fault API (POST /brokers/N/stop, /brokers/N/start, /leaders/shuffle; GET /leaders); empty: off"`
	DataDir string `env:"DEVBROKER_DATA_DIR" default:".run/kafka" help:"where the log is kept"`
	Memory  bool   `env:"DEVBROKER_MEMORY_ONLY" default:"false" help:"keep the log in memory only (benchmarks)"`
	Sync    bool   `env:"DEVBROKER_SYNC_WRITES" default:"false" help:"fsync every produced batch"`
	// A real cluster's group.min.session.timeout.ms (6 s by default) is
	// a broker setting too; the dev broker allows short sessions so that a
	// dead windower's partitions move within seconds.
	MinSession time.Duration `env:"DEVBROKER_GROUP_MIN_SESSION_TIMEOUT" default:"1s" help:"shortest consumer group session the broker accepts"`
	// Security, as a managed Kafka has it; the broker's own client (topic
	// creation) uses the KAFKA_TLS_* and KAFKA_SASL_* settings.
	TLSCertFile  string `env:"DEVBROKER_TLS_CERT_FILE" help:"PEM certificate: listen with TLS only"`
	TLSKeyFile   string `env:"DEVBROKER_TLS_KEY_FILE" help:"PEM key of the certificate"`
	SASLMech     string `env:"DEVBROKER_SASL_MECHANISM" default:"SCRAM-SHA-256" help:"PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with DEVBROKER_SASL_USERNAME"`
	SASLUser     string `env:"DEVBROKER_SASL_USERNAME" help:"require SASL, with this user"`
	SASLPassFile string `env:"DEVBROKER_SASL_PASSWORD_FILE" help:"file holding the user's password"`
	Kafka        broker.Config
	Log          logging.Config
}

func main() {
	service.Main(service.Spec[settings]{
		Name: "devbroker",
		Log:  func(c *settings) logging.Config { return c.Log },
		Run:  run,
	})
}

func run(ctx context.Context, log *zap.Logger, cfg settings) error {
	host, portStr, ok := strings.Cut(cfg.Listen, ":")
	if !ok || host != "127.0.0.1" {
		return fmt.Errorf("DEVBROKER_ADDR %q: want 127.0.0.1:PORT", cfg.Listen)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("DEVBROKER_ADDR %q: %w", cfg.Listen, err)
	}
	// No seeded topics: they would get the broker's default retention
	// (seven days). The topics are created below with the services'
	// settings (retention.ms -1).
	n := max(cfg.Brokers, 1)
	ports := make([]int, n)
	for i := range ports {
		ports[i] = port + i
	}
	tracked := &conns{}
	opts := []kfake.Opt{kfake.NumBrokers(n), kfake.Ports(ports...), kfake.GroupMinSessionTimeout(cfg.MinSession), kfake.ListenFn(tracked.listen)}
	if !cfg.Memory {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return err
		}
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.Sync {
		opts = append(opts, kfake.SyncWrites())
	}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("DEVBROKER_TLS_CERT_FILE and DEVBROKER_TLS_KEY_FILE: %w", err)
		}
		opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}
	if cfg.SASLUser != "" {
		pw, err := os.ReadFile(cfg.SASLPassFile)
		if err != nil {
			return fmt.Errorf("DEVBROKER_SASL_PASSWORD_FILE: %w", err)
		}
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(strings.ToUpper(cfg.SASLMech), cfg.SASLUser, strings.TrimRight(string(pw), "\r\n")))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	defer c.Close()
	// The topics, through the same path the services use (a data dir from
	// an earlier run already has them).
	cfg.Kafka.Brokers = c.ListenAddrs()
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, t := range []string{cfg.Kafka.Topic, cfg.Kafka.DLQTopic()} {
		if err := broker.EnsureTopic(ectx, cfg.Kafka, t, cfg.Kafka.Partitions); err != nil {
			return err
		}
	}
	log.Info("broker ready", zap.Strings("addrs", c.ListenAddrs()), zap.String("topic", cfg.Kafka.Topic))
	if cfg.Control != "" {
		stop, err := serveControl(log, c, tracked, cfg.Control, ports)
		if err != nil {
			return err
		}
		defer stop()
	}
	<-ctx.Done()
	log.Info("stopping")
	return nil
}
