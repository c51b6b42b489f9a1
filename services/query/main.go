// Command query is ratestream's read path: posts with their score, the
// number of distinct raters and the caller's own rating, served from an
// in-memory view built from the score topic (post-scores.v1) and the
// posts' titles.
package main

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ratestream/ratestream/pkg/auth"
	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/pkg/logging"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/service"
	"github.com/ratestream/ratestream/pkg/tally"
)

// Config is every setting of the query service.
type Config struct {
	Addr     string        `env:"QUERY_ADDR" default:":8081" help:"HTTP listen address"`
	Resync   time.Duration `env:"QUERY_RESYNC" default:"60s" help:"full reload interval of the posts' titles (scores follow the score topic)"`
	LagEvery time.Duration `env:"QUERY_SCORE_LAG_INTERVAL" default:"10s" help:"how often the score topic's lag behind its end is measured (query_score_topic_lag)"`
	// ReadURL is where everything but writes and the posts channel goes:
	// my_score, /explain, the web pages' history, the scorer's settings.
	ReadURL string        `env:"DATABASE_READ_URL" secret:"true" help:"PostgreSQL URL of a read replica for my_score, /explain and the web pages (empty: DATABASE_URL)"`
	MyWait  time.Duration `env:"MY_SCORE_BATCH_WAIT" default:"500us" help:"how long a my_score lookup waits to share a query"`
	// PublicURL is where clients reach the service, for the links of the
	// replaced app's pages; never the request's Host, which the client
	// chooses.
	PublicURL string `env:"PUBLIC_URL" help:"scheme and host clients reach the API at (e.g. https://ratings.example.com), for /api/post's next and previous links; empty: the links are paths"`
	Limits    Limits
	Rank      Rank
	// The scorer's group, whose stored scoring settings explain its
	// scores; the scoring settings stand in until it has stored them.
	Group   tally.Group
	Scoring scoring.Config
	Kafka   broker.Config
	Auth    auth.Config
	HTTP    httpserver.Config
	DB      database.Config
	Log     logging.Config
}

func main() {
	service.Main(service.Spec[Config]{
		Name: "query",
		Log:  func(c *Config) logging.Config { return c.Log },
		Addr: func(c *Config) string { return c.Addr },
		Run:  run,
	})
}

func run(ctx context.Context, log *zap.Logger, cfg Config) error {
	// Database: the primary for writes and the posts channel, the read
	// URL for the rest.
	pool, err := database.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer pool.Close()
	readURL := cmp.Or(cfg.ReadURL, cfg.DB.URL)
	read := pool
	if cfg.ReadURL != "" {
		if read, err = database.Open(ctx, database.Config{URL: readURL, MaxConns: cfg.DB.MaxConns}); err != nil {
			return fmt.Errorf("DATABASE_READ_URL: %w", err)
		}
		defer read.Close()
	}
	heavyPool, err := database.Open(ctx, database.Config{URL: readURL, MaxConns: max(cfg.Limits.HeavyConns, 1)})
	if err != nil {
		return err
	}
	defer heavyPool.Close()
	if err := cfg.Kafka.Check(); err != nil {
		return err
	}

	// Scoring, to explain it.
	strategy, params, err := cfg.Scoring.StrategyAndParams()
	if err != nil {
		return err
	}

	// Identity.
	verifier, err := auth.New(ctx, cfg.Auth)
	if err != nil {
		return err
	}

	// HTTP, and the view of posts and scores.
	var v *view
	checks := []httpserver.Check{
		{Name: "postgres", Fn: func(ctx context.Context) error { return pool.Ping(ctx) }},
		{Name: "view", Fn: func(ctx context.Context) error { return v.Ready(ctx) }},
		{Name: "jwks", Fn: verifier.Ready},
	}
	if read != pool {
		checks = append(checks, httpserver.Check{Name: "postgres_read", Fn: func(ctx context.Context) error { return read.Ping(ctx) }})
	}
	srv := httpserver.New(log, cfg.HTTP, cfg.Addr, checks...)
	v = newView(pool, cfg.Kafka, log, cfg.Resync, cfg.LagEvery, srv.Registry)
	guard := newGuard(cfg.Limits, heavyPool, srv.Registry)
	hits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "query_cache_lookups_total", Help: "Single-post lookups by result (hit: served from memory).",
	}, []string{"result"})
	srv.Registry.MustRegister(hits)
	mine := newMyScoreLoader(read, cfg.MyWait, 1000, max(cfg.DB.MaxConns/2, 1))
	public, err := publicURL(cfg.PublicURL)
	if err != nil {
		return err
	}
	settings := newScoringSettings(read, log, cfg.Group.Name, strategy, params)
	h := &handlers{auth: verifier, pool: pool, read: read, view: v, mine: mine, hits: hits,
		scoring: settings, public: public, guard: guard}
	h.ranks = newRankings(cfg.Rank, func() scoring.Params {
		_, p := settings.get(context.Background())
		return p
	}, v)
	h.routes(srv.Engine)

	// Run until SIGTERM or until one part fails. The view and the
	// my_score loader serve the requests in flight while the server
	// drains, and stop once it has.
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { defer stopBackground(); return srv.Run(gctx) })
	g.Go(func() error { v.Run(bg); return nil })
	g.Go(func() error { _ = broker.EnsureTopics(gctx, cfg.Kafka, log, cfg.Kafka.ScoreTopic); return nil })
	g.Go(func() error { guard.sweep(bg); return nil })
	g.Go(func() error { mine.run(bg); return nil })
	return g.Wait()
}
