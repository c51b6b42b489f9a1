// Command windower is ratestream's processor: it consumes ratings.v1 and
// keeps, in PostgreSQL, each user's latest rating of each post, the
// per-window RatingAverage rows and each post's running totals, with the
// consumed offsets in the same transaction (exactly-once effect).
package main

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/pkg/logging"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/service"
)

// Config is every setting of the windower.
type Config struct {
	Addr     string        `env:"WINDOWER_ADDR" default:":8082" help:"health and metrics listen address"`
	Group    string        `env:"WINDOWER_GROUP" default:"ratestream-windower" help:"consumer group id (also the key of the stored offsets)"`
	Grace    time.Duration `env:"GRACE" default:"5s" help:"how far behind the newest event time a window closes"`
	MaxBatch int           `env:"BATCH_MAX_EVENTS" default:"5000" help:"most events per transaction"`
	MaxWait  time.Duration `env:"BATCH_MAX_WAIT" default:"20ms" help:"longest wait to fill a batch"`
	Session  time.Duration `env:"WINDOWER_SESSION_TIMEOUT" default:"10s" help:"group session timeout: how soon a dead instance's partitions move"`
	Scoring  scoring.Config
	HTTP     httpserver.Config
	Kafka    broker.Config
	Writer   broker.WriterTuning
	DB       database.Config
	Log      logging.Config
}

func main() {
	service.Main(service.Spec[Config]{
		Name: "windower",
		Log:  func(c *Config) logging.Config { return c.Log },
		Addr: func(c *Config) string { return c.Addr },
		Run:  run,
	})
}

func run(ctx context.Context, log *zap.Logger, cfg Config) error {
	params, err := cfg.Scoring.Params()
	if err != nil {
		return err
	}

	// Database.
	pool, err := database.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer pool.Close()

	// Kafka.
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	for _, t := range []string{cfg.Kafka.Topic, cfg.Kafka.DLQTopic()} {
		if err = broker.EnsureTopic(ectx, cfg.Kafka, t, cfg.Kafka.Partitions); err != nil {
			break
		}
	}
	cancel()
	if err != nil {
		return err
	}
	dlq := broker.NewWriter(cfg.Kafka, cfg.Kafka.DLQTopic(), cfg.Writer)
	defer dlq.Close()

	// HTTP: health and metrics only.
	srv := httpserver.New(log, cfg.HTTP, cfg.Addr,
		httpserver.Check{Name: "kafka", Fn: func(ctx context.Context) error { return broker.Ping(ctx, cfg.Kafka) }},
		httpserver.Check{Name: "postgres", Fn: func(ctx context.Context) error { return pool.Ping(ctx) }},
	)

	// Business.
	p := &processor{
		log:   log,
		kafka: cfg.Kafka,
		group: cfg.Group,
		store: &store{pool: pool, consumer: cfg.Group, topic: cfg.Kafka.Topic, params: params, grace: cfg.Grace},
		dlq:   dlq, m: newMetrics(srv.Registry),
		maxBatch: cfg.MaxBatch, maxWait: cfg.MaxWait, session: cfg.Session,
	}

	// Run until SIGTERM; an in-flight batch either commits or rolls back.
	errc := make(chan error, 2)
	go func() { errc <- srv.Run(ctx) }()
	go func() { errc <- p.run(ctx) }()
	err = <-errc
	if err != nil {
		return err
	}
	return <-errc
}
