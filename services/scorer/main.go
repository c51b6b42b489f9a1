// Command scorer turns the windows the windower keeps into the scores the
// query service serves. It wakes on the windower's notifications (with a
// periodic sweep as a safety net), claims posts with SKIP LOCKED so that
// several instances can share the work, and takes event time from the
// windower's watermarks, never from its own clock.
package main

import (
	"context"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/pkg/logging"
	"github.com/ratestream/ratestream/pkg/postscore"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/service"
	"github.com/ratestream/ratestream/pkg/tally"
)

// Config is every setting of the scorer.
type Config struct {
	Addr    string        `env:"SCORER_ADDR" default:":8083" help:"health and metrics listen address"`
	Sweep   time.Duration `env:"SCORER_SWEEP" default:"1s" help:"rescan interval when no notification arrives"`
	Batch   int           `env:"SCORER_BATCH" default:"500" help:"posts scored per transaction"`
	Gather  time.Duration `env:"SCORER_GATHER" default:"100ms" help:"after a notification, how long to gather others before a round: one round then serves every partition's batches of that moment"`
	Revisit time.Duration `env:"SCORER_REVISIT" default:"1s" help:"how often a post whose score may still change is rescored while no window closed since its last score (one that closed is rescored at once)"`
	Relay   int           `env:"SCORER_RELAY_BATCH" default:"2000" help:"score records the relay publishes to the score topic per round"`
	Publish bool          `env:"SCORER_PUBLISH" default:"true" help:"publish score changes to the score topic; false empties the outbox without publishing (ratestream replay sets it: a replay's scores are not news)"`
	Group   tally.Group
	Scoring scoring.Config
	Kafka   broker.Config
	Writer  broker.WriterTuning
	HTTP    httpserver.Config
	DB      database.Config
	Log     logging.Config
}

func main() {
	service.Main(service.Spec[Config]{
		Name: "scorer",
		Log:  func(c *Config) logging.Config { return c.Log },
		Addr: func(c *Config) string { return c.Addr },
		Run:  run,
	})
}

func run(ctx context.Context, log *zap.Logger, cfg Config) error {
	strategy, params, err := cfg.Scoring.StrategyAndParams()
	if err != nil {
		return err
	}

	// Database.
	pool, err := database.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer pool.Close()

	// Kafka: the score topic, made sure of in the background.
	if err := cfg.Kafka.Check(); err != nil {
		return err
	}
	writer, err := broker.NewWriter(cfg.Kafka, cfg.Kafka.ScoreTopic, cfg.Writer)
	if err != nil {
		return err
	}
	defer writer.Close()

	// HTTP: health and metrics only.
	srv := httpserver.New(log, cfg.HTTP, cfg.Addr,
		httpserver.Check{Name: "postgres", Fn: func(ctx context.Context) error { return pool.Ping(ctx) }},
		httpserver.Check{Name: "kafka", Fn: func(ctx context.Context) error { return broker.Ping(ctx, cfg.Kafka) }},
	)

	// Business.
	pub := writer
	if !cfg.Publish {
		pub = nil
	}
	rl := postscore.NewRelay(pool, pub, cfg.Relay, log, srv.Registry)
	w := &worker{
		log: log, pool: pool, sweep: cfg.Sweep, gather: cfg.Gather, m: newMetrics(srv.Registry), scored: rl.Notify,
		r: &rescorer{pool: pool, strategy: strategy, params: params, key: tally.Key{Consumer: cfg.Group.Name, Topic: cfg.Kafka.Topic}, limit: cfg.Batch, revisit: cfg.Revisit},
	}

	// Run until SIGTERM or until one part fails; a claim in flight
	// either commits or rolls back, and the relay publishes what
	// committed before it stops.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error { return w.run(gctx) })
	g.Go(func() error { return rl.Run(gctx) })
	g.Go(func() error { _ = broker.EnsureTopics(gctx, cfg.Kafka, log, cfg.Kafka.ScoreTopic); return nil })
	g.Go(func() error { storeSettings(gctx, log, pool, cfg.Group.Name, cfg.Scoring); return nil })
	return g.Wait()
}

// storeSettings stores the scoring settings this scorer runs with, for
// the query service to explain its scores with, and queues the scores
// written before the score topic existed, retrying while PostgreSQL is
// away.
func storeSettings(ctx context.Context, log *zap.Logger, pool *pgxpool.Pool, group string, cfg scoring.Config) {
	for {
		err := tally.WriteScoringSettings(ctx, pool, group, cfg)
		if err == nil {
			var n int64
			if n, err = tally.QueueUnpublished(ctx, pool); n > 0 {
				log.Info("queued the scores written before the score topic for it", zap.Int64("posts", n))
			}
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Warn("could not store the scoring settings; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}
