package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Security is how every Kafka client of the project reaches a cluster
// that wants TLS and SASL, as managed Kafka services do. Secrets come from
// files (mounted Kubernetes secrets), never from the environment itself.
type Security struct {
	TLS              bool   `env:"KAFKA_TLS" default:"false" help:"connect with TLS"`
	TLSCAFile        string `env:"KAFKA_TLS_CA_FILE" help:"PEM CA bundle to trust (default: the system's)"`
	TLSCertFile      string `env:"KAFKA_TLS_CERT_FILE" help:"PEM client certificate (mutual TLS)"`
	TLSKeyFile       string `env:"KAFKA_TLS_KEY_FILE" help:"PEM key of the client certificate"`
	TLSServerName    string `env:"KAFKA_TLS_SERVER_NAME" help:"name the brokers' certificates must carry (default: the host dialled)"`
	SASLMechanism    string `env:"KAFKA_SASL_MECHANISM" help:"PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)"`
	SASLUser         string `env:"KAFKA_SASL_USERNAME" help:"SASL user"`
	SASLPasswordFile string `env:"KAFKA_SASL_PASSWORD_FILE" help:"file holding the SASL password"`
}

type secured struct {
	tls  *tls.Config
	sasl sasl.Mechanism
}

// built caches what each distinct Security builds (files are read once).
var built sync.Map // Security -> secured

// resolve builds the TLS config and the SASL mechanism of s.
func (s Security) resolve() (*tls.Config, sasl.Mechanism, error) {
	if v, ok := built.Load(s); ok {
		b := v.(secured)
		return b.tls, b.sasl, nil
	}
	var b secured
	if s.TLS {
		b.tls = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.TLSServerName}
		if s.TLSCAFile != "" {
			pem, err := os.ReadFile(s.TLSCAFile)
			if err != nil {
				return nil, nil, fmt.Errorf("KAFKA_TLS_CA_FILE: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("KAFKA_TLS_CA_FILE %s: no PEM certificate in it", s.TLSCAFile)
			}
			b.tls.RootCAs = pool
		}
		if s.TLSCertFile != "" || s.TLSKeyFile != "" {
			cert, err := tls.LoadX509KeyPair(s.TLSCertFile, s.TLSKeyFile)
			if err != nil {
				return nil, nil, fmt.Errorf("KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE: %w", err)
			}
			b.tls.Certificates = []tls.Certificate{cert}
		}
	} else if s.TLSCAFile != "" || s.TLSCertFile != "" || s.TLSServerName != "" {
		return nil, nil, errors.New("KAFKA_TLS_* files are set but KAFKA_TLS is false")
	}
	if s.SASLMechanism != "" {
		pw, err := os.ReadFile(s.SASLPasswordFile)
		if err != nil {
			return nil, nil, fmt.Errorf("KAFKA_SASL_PASSWORD_FILE: %w", err)
		}
		pass := strings.TrimRight(string(pw), "\r\n")
		switch strings.ToUpper(s.SASLMechanism) {
		case "PLAIN":
			b.sasl = plain.Mechanism{Username: s.SASLUser, Password: pass}
		case "SCRAM-SHA-256", "SCRAM-SHA-512":
			algo := scram.SHA256
			if strings.HasSuffix(s.SASLMechanism, "512") {
				algo = scram.SHA512
			}
			m, err := scram.Mechanism(algo, s.SASLUser, pass)
			if err != nil {
				return nil, nil, fmt.Errorf("KAFKA_SASL_MECHANISM %s: %w", s.SASLMechanism, err)
			}
			b.sasl = m
		default:
			return nil, nil, fmt.Errorf("KAFKA_SASL_MECHANISM %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.SASLMechanism)
		}
	}
	built.Store(s, b)
	return b.tls, b.sasl, nil
}

// Check reports a security setting that cannot work (a missing file, an
// unknown mechanism) at start-up rather than at the first connection.
func (c Config) Check() error {
	_, _, err := c.resolve()
	return err
}

// Dialer returns a dialer with the cluster's TLS and SASL settings.
func (c Config) Dialer(timeout time.Duration) (*kafka.Dialer, error) {
	t, m, err := c.resolve()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{Timeout: timeout, DualStack: true, TLS: t, SASLMechanism: m}, nil
}

// transport returns a transport (writers, clients) with the cluster's TLS
// and SASL settings.
func (c Config) transport() (*kafka.Transport, error) {
	t, m, err := c.resolve()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{DialTimeout: time.Second, IdleTimeout: 30 * time.Second, MetadataTTL: 10 * time.Second, TLS: t, SASL: m}, nil
}

// client returns a client (admin and offset requests) with the cluster's
// TLS and SASL settings.
func (c Config) client(timeout time.Duration) (*kafka.Client, error) {
	tr, err := c.transport()
	if err != nil {
		return nil, err
	}
	return &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: timeout, Transport: tr}, nil
}
