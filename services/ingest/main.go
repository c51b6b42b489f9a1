// Command ingest is ratestream's write path: it validates ratings over HTTP
// and publishes them to ratings.v1, answering 2xx only once the broker
// has acknowledged the write (acks=all).
package main

import (
	"context"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ratestream/ratestream/pkg/auth"
	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/pkg/limit"
	"github.com/ratestream/ratestream/pkg/logging"
	"github.com/ratestream/ratestream/pkg/pseudonym"
	"github.com/ratestream/ratestream/pkg/service"
)

// Config is every setting of the ingest service.
type Config struct {
	Addr           string        `env:"INGEST_ADDR" default:":8080" help:"HTTP listen address"`
	ProduceTimeout time.Duration `env:"PRODUCE_TIMEOUT" default:"2s" help:"longest wait for the broker before answering 503"`
	MaxInFlight    int           `env:"PRODUCE_MAX_IN_FLIGHT" default:"20000" help:"ratings waiting for the broker before new ones get 503"`
	UserRate       float64       `env:"RATE_LIMIT_USER" default:"20" help:"ratings per second per user id (0: off)"`
	UserBurst      int           `env:"RATE_LIMIT_USER_BURST" default:"40" help:"burst per user id"`
	IPRate         float64       `env:"RATE_LIMIT_IP" default:"100000" help:"requests per second per client IP (0: off)"`
	IPBurst        int           `env:"RATE_LIMIT_IP_BURST" default:"200000" help:"burst per client IP"`
	PostRefresh    time.Duration `env:"POST_CACHE_REFRESH" default:"60s" help:"full reload interval of the post-id cache"`
	NameWait       time.Duration `env:"PSEUDONYM_WAIT" default:"500us" help:"how long a rating waits for others to share the round trip to PostgreSQL for their users' pseudonyms"`
	NameBatch      int           `env:"PSEUDONYM_BATCH" default:"1000" help:"users whose pseudonyms one round trip to PostgreSQL looks up or creates"`
	NameParallel   int           `env:"PSEUDONYM_PARALLEL" default:"2" help:"pseudonym round trips to PostgreSQL in flight"`
	Auth           auth.Config
	HTTP           httpserver.Config
	Kafka          broker.Config
	Writer         broker.WriterTuning
	DB             database.Config
	Log            logging.Config
}

func main() {
	service.Main(service.Spec[Config]{
		Name: "ingest",
		Log:  func(c *Config) logging.Config { return c.Log },
		Addr: func(c *Config) string { return c.Addr },
		Run:  run,
	})
}

func run(ctx context.Context, log *zap.Logger, cfg Config) error {
	// Database: the post-id cache, the users' pseudonyms and erasures.
	pool, err := database.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer pool.Close()
	posts := newPostIDs(pool, log, cfg.PostRefresh)

	// Identity.
	verifier, err := auth.New(ctx, cfg.Auth)
	if err != nil {
		return err
	}

	// Kafka: the topic is made sure of in the background (below); until
	// the broker answers, readiness says why and ratings get 503.
	if err := cfg.Kafka.Check(); err != nil {
		return err
	}
	writer, err := broker.NewWriter(cfg.Kafka, cfg.Kafka.Topic, cfg.Writer)
	if err != nil {
		return err
	}
	eraseWriter, err := pseudonym.NewEraseWriter(cfg.Kafka, cfg.Writer)
	if err != nil {
		return err
	}

	// HTTP.
	srv := httpserver.New(log, cfg.HTTP, cfg.Addr,
		httpserver.Check{Name: "kafka", Fn: func(ctx context.Context) error { return broker.Ping(ctx, cfg.Kafka) }},
		httpserver.Check{Name: "postgres", Fn: func(ctx context.Context) error { return pool.Ping(ctx) }},
		httpserver.Check{Name: "post_cache", Fn: posts.Ready},
		httpserver.Check{Name: "jwks", Fn: verifier.Ready},
	)
	m := newMetrics(srv.Registry)
	pub := newPublisher(writer, cfg.ProduceTimeout, cfg.MaxInFlight, m)
	users, ips := limit.New(cfg.UserRate, cfg.UserBurst), limit.New(cfg.IPRate, cfg.IPBurst)
	names := pseudonym.NewResolver(pool, cfg.NameWait, cfg.NameBatch, cfg.NameParallel)
	eraser := &pseudonym.Eraser{Pool: pool, Kafka: cfg.Kafka, Writer: eraseWriter}
	h := &handlers{posts: posts, auth: verifier, pub: pub, names: names, eraser: eraser, users: users, ips: ips, metrics: m}
	h.routes(srv.Engine)

	// Run until SIGTERM or until one part fails. The post cache and the
	// housekeeping serve the requests in flight while the server drains,
	// and stop once it has; then the writer flushes what it still holds.
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { defer stopBackground(); return srv.Run(gctx) })
	g.Go(func() error { posts.Run(bg); return nil })
	g.Go(func() error { names.Run(bg); return nil })
	g.Go(func() error { _ = broker.EnsureTopics(gctx, cfg.Kafka, log, cfg.Kafka.Topic); return nil })
	g.Go(func() error { pub.collectStats(bg, 5*time.Second); return nil })
	g.Go(func() error { users.Sweep(bg, users.SweepInterval()); return nil })
	g.Go(func() error { ips.Sweep(bg, ips.SweepInterval()); return nil })
	err = g.Wait()
	log.Info("flushing writer")
	if cerr := writer.Close(); cerr != nil {
		log.Warn("writer close", zap.Error(cerr))
	}
	if cerr := eraseWriter.Close(); cerr != nil {
		log.Warn("erase writer close", zap.Error(cerr))
	}
	log.Info("stopped")
	return err
}
