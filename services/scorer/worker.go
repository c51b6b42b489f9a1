package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/database"
)

// worker runs rescoring rounds whenever there may be work.
type worker struct {
	log   *zap.Logger
	pool  *pgxpool.Pool
	r     *rescorer
	sweep time.Duration
	m     *metrics
}

type metrics struct {
	scored prometheus.Counter
	rounds prometheus.Histogram
	errors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		scored: prometheus.NewCounter(prometheus.CounterOpts{Name: "scorer_posts_scored_total", Help: "Posts rescored."}),
		rounds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "scorer_round_duration_seconds", Help: "Time of one claim-score-write transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "scorer_errors_total", Help: "Failed rounds."}),
	}
	reg.MustRegister(m.scored, m.rounds, m.errors)
	return m
}

func (w *worker) run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	go w.listen(ctx, wake)
	t := time.NewTicker(w.sweep)
	defer t.Stop()
	for {
		w.drain(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-t.C:
		}
	}
}

// drain runs rounds until one finds less than a full batch.
func (w *worker) drain(ctx context.Context) {
	for ctx.Err() == nil {
		start := time.Now()
		n, err := w.r.round(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.m.errors.Inc()
				w.log.Warn("rescoring round failed", zap.Error(err))
			}
			return
		}
		if n > 0 {
			w.m.scored.Add(float64(n))
			w.m.rounds.Observe(time.Since(start).Seconds())
		}
		if n < w.r.limit {
			return
		}
	}
}

// listen turns notifications on the rescore channel into wake-ups.
func (w *worker) listen(ctx context.Context, wake chan<- struct{}) {
	f := &database.Follower{
		Pool: w.pool, Log: w.log, Channels: []string{contract.ChannelRescore},
		Notify: func(string, string) {
			select {
			case wake <- struct{}{}:
			default:
			}
		},
	}
	f.Run(ctx)
}
