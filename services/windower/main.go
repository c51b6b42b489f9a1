// Command windower is ratestream's processor: it consumes ratings.v1 and
// keeps, in PostgreSQL, each user's latest rating of each post, the
// per-window RatingAverage rows and each post's running totals, with the
// consumed offsets in the same transaction (exactly-once effect).
package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/pkg/logging"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/service"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/segmentio/kafka-go"
)

// Config is every setting of the windower.
type Config struct {
	Addr     string        `env:"WINDOWER_ADDR" default:":8082" help:"health and metrics listen address"`
	Grace    time.Duration `env:"GRACE" default:"5s" help:"how far behind the newest event time a window closes"`
	MaxBatch int           `env:"BATCH_MAX_EVENTS" default:"5000" help:"most events per transaction"`
	MaxWait  time.Duration `env:"BATCH_MAX_WAIT" default:"300ms" help:"longest wait to fill a batch: longer batches cost less per rating (simulation/README.md measures it) and delay my_score by up to as much"`
	FetchMin int           `env:"KAFKA_FETCH_MIN_BYTES" default:"16384" help:"bytes a fetch waits for (up to half of BATCH_MAX_WAIT): fewer, larger fetches cost the broker and the windower less per event"`
	Session  time.Duration `env:"WINDOWER_SESSION_TIMEOUT" default:"10s" help:"group session timeout: how soon a dead instance's partitions move (at least the broker's group.min.session.timeout.ms, 6s on a default Kafka); the rebalance timeout is half of it"`
	Stall    time.Duration `env:"WINDOWER_STALL_TIMEOUT" default:"30s" help:"a partition with messages whose stored offset has not moved for this long is reported, fails readiness and, when another member owns it and the group has been stable for a session, forces a rebalance"`
	Monitor  time.Duration `env:"WINDOWER_MONITOR_INTERVAL" default:"2s" help:"how often lag and stalls are computed for every partition from the broker's log ends"`
	Cache    int           `env:"WINDOWER_CACHE_ROWS" default:"250000" help:"window and post rows kept in memory between the batches of a partition (about 140 bytes each), so that a batch reads from PostgreSQL only rows it has not seen; 0 reads every row every time"`
	Until    string        `env:"WINDOWER_UNTIL" help:"replay only: PARTITION:OFFSET,... at which each partition stops (ratestream replay sets it)"`
	Group    tally.Group
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

	// Kafka: the topics are made sure of before consuming (below).
	if err := cfg.Kafka.Check(); err != nil {
		return err
	}
	dlq, err := broker.NewWriter(cfg.Kafka, cfg.Kafka.DLQTopic(), cfg.Writer)
	if err != nil {
		return err
	}
	defer dlq.Close()

	until, err := parseUntil(cfg.Until)
	if err != nil {
		return err
	}

	// Business.
	var cache *rowCache
	if cfg.Cache < 0 {
		return fmt.Errorf("WINDOWER_CACHE_ROWS %d: want 0 (off) or more", cfg.Cache)
	}
	if cfg.Cache > 0 {
		cache = newRowCache(cfg.Cache)
	}
	pg := &pgStore{pool: pool, key: tally.Key{Consumer: cfg.Group.Name, Topic: cfg.Kafka.Topic}, params: params, grace: cfg.Grace, cache: cache}
	p := &processor{
		applier: &applier{log: log, store: pg, dlq: dlq},
		until:   until,
		log:     log,
		kafka:   cfg.Kafka,
		group:   cfg.Group.Name,
		store:   pg,
		open: func(partition int, offset int64, skipped func(string)) (source, error) {
			return broker.NewPartitionReader(cfg.Kafka, cfg.Kafka.Topic, partition, offset,
				broker.Fetch{MinBytes: cfg.FetchMin, MaxWait: cfg.MaxWait / 2, Skipped: skipped})
		},
		readAt: func(ctx context.Context, partition int, offset int64) (kafka.Message, error) {
			return broker.ReadAt(ctx, cfg.Kafka, cfg.Kafka.Topic, partition, offset)
		},
		bounds: func(ctx context.Context, partition int) (broker.Bounds, error) {
			all, err := broker.LogBounds(ctx, cfg.Kafka, cfg.Kafka.Topic)
			if err != nil {
				return broker.Bounds{}, err
			}
			b, ok := all[partition]
			if !ok {
				return b, fmt.Errorf("partition %d is not in topic %s", partition, cfg.Kafka.Topic)
			}
			return b, nil
		},
		maxBatch: cfg.MaxBatch, maxWait: cfg.MaxWait, session: cfg.Session,
	}
	mon := &monitor{group: p, stored: pg, kafka: cfg.Kafka, until: until, log: log, interval: cfg.Monitor, bound: cfg.Stall, settle: cfg.Session}

	// HTTP: health and metrics only.
	srv := httpserver.New(log, cfg.HTTP, cfg.Addr,
		httpserver.Check{Name: "kafka", Fn: func(ctx context.Context) error { return broker.Ping(ctx, cfg.Kafka) }},
		httpserver.Check{Name: "postgres", Fn: func(ctx context.Context) error { return pool.Ping(ctx) }},
		httpserver.Check{Name: "partitions", Fn: mon.ready},
		httpserver.Check{Name: "offsets", Fn: p.outsideReady},
	)
	p.m = newMetrics(srv.Registry)
	mon.metrics, p.applier.m = p.m, p.m
	if cache != nil {
		cache.register(srv.Registry)
	}

	// Run until SIGTERM or until one part fails; an in-flight batch either
	// commits or rolls back.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error {
		if broker.EnsureTopics(gctx, cfg.Kafka, log, cfg.Kafka.Topic, cfg.Kafka.DLQTopic()) != nil {
			return nil // stopping
		}
		return p.run(gctx)
	})
	g.Go(func() error { return mon.run(gctx) })
	return g.Wait()
}

// parseUntil reads WINDOWER_UNTIL: "PARTITION:OFFSET,...".
func parseUntil(s string) (map[int]int64, error) {
	if s == "" {
		return nil, nil
	}
	out := map[int]int64{}
	for _, kv := range strings.Split(s, ",") {
		p, o, ok := strings.Cut(strings.TrimSpace(kv), ":")
		pn, err1 := strconv.Atoi(p)
		on, err2 := strconv.ParseInt(o, 10, 64)
		if !ok || err1 != nil || err2 != nil || pn < 0 || on < 0 {
			return nil, fmt.Errorf("WINDOWER_UNTIL %q: want PARTITION:OFFSET pairs, comma-separated", s)
		}
		out[pn] = on
	}
	return out, nil
}
