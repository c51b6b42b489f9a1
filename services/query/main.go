// Command query is ratestream's read path: posts with their score, the
// number of distinct raters and the caller's own rating, served from an
// in-memory view kept current by PostgreSQL notifications.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/pkg/logging"
)

// Config is every setting of the query service.
type Config struct {
	Addr   string        `env:"QUERY_ADDR" default:":8081" help:"HTTP listen address"`
	Resync time.Duration `env:"QUERY_RESYNC" default:"60s" help:"full reload interval of the in-memory view"`
	MyWait time.Duration `env:"MY_SCORE_BATCH_WAIT" default:"500us" help:"how long a my_score lookup waits to share a query"`
	HTTP   httpserver.Config
	DB     database.Config
	Log    logging.Config
}

func main() {
	var cfg Config
	if err := config.Load(&cfg, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, config.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "query:", err)
		os.Exit(2)
	}
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(httpserver.Probe(cfg.Addr))
	}
	log, err := logging.New("query", cfg.Log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "query:", err)
		os.Exit(2)
	}
	config.TuneGC(400)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, cfg); err != nil {
		log.Error("query failed", zap.Error(err))
		_ = log.Sync()
		os.Exit(1)
	}
}

func run(ctx context.Context, log *zap.Logger, cfg Config) error {
	log.Info("starting", zap.Any("config", config.Describe(cfg)))

	// Database and the view over it.
	pool, err := database.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer pool.Close()
	v := newView(pool, log, cfg.Resync)
	bg, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	go v.run(bg)

	// HTTP.
	srv := httpserver.New(log, cfg.HTTP, cfg.Addr,
		httpserver.Check{Name: "postgres", Fn: func(ctx context.Context) error { return pool.Ping(ctx) }},
		httpserver.Check{Name: "view", Fn: v.Ready},
	)
	hits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "query_cache_lookups_total", Help: "Single-post lookups by result (hit: served from memory).",
	}, []string{"result"})
	srv.Registry.MustRegister(hits)
	mine := newMyScoreLoader(pool, cfg.MyWait, 1000, max(cfg.DB.MaxConns/2, 1))
	go mine.run(bg)
	h := &handlers{pool: pool, view: v, mine: mine, hits: hits}
	h.routes(srv.Engine)
	return srv.Run(ctx)
}
