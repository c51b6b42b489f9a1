package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/tally"
)

// worker runs rescoring rounds whenever there may be work.
type worker struct {
	log   *zap.Logger
	pool  *pgxpool.Pool
	r     *rescorer
	sweep time.Duration
	// gather is how long a notification waits for others: the windower
	// commits each partition's batch on its own, and one round for all of
	// them costs less than a round each.
	gather time.Duration
	m      *metrics
	// scored hears that a round committed scores (the relay publishes
	// their records).
	scored func()
}

type metrics struct {
	scored prometheus.Counter
	rounds prometheus.Histogram
	errors prometheus.Counter
	// The backlog, read from PostgreSQL on a timer (the same for every
	// replica: alert on the max).
	queued, oldest, behind prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		scored: prometheus.NewCounter(prometheus.CounterOpts{Name: "scorer_posts_scored_total", Help: "Posts rescored."}),
		rounds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "scorer_round_duration_seconds", Help: "Time of one claim-score-write transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "scorer_errors_total", Help: "Failed rounds."}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Name: "scorer_queue_posts", Help: "Posts whose windows changed and wait for a new score."}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{Name: "scorer_queue_oldest_seconds", Help: "How long the oldest queued post has waited (0: none)."}),
		behind: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scorer_behind_watermark_seconds",
			Help: "Event time between a partition's watermark and the oldest score still maturing behind it (0: every score is current).",
		}),
	}
	reg.MustRegister(m.scored, m.rounds, m.errors, m.queued, m.oldest, m.behind)
	return m
}

// observe refreshes the backlog gauges every interval.
func (w *worker) observe(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		b, err := tally.ReadBacklog(ctx, w.pool, w.r.key)
		if err == nil {
			w.m.queued.Set(float64(b.Queued))
			w.m.oldest.Set(b.OldestWait.Seconds())
			w.m.behind.Set(b.BehindEvents.Seconds())
		} else if ctx.Err() == nil {
			w.log.Debug("reading the backlog", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *worker) run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	go w.listen(ctx, wake)
	go w.observe(ctx, 5*time.Second)
	t := time.NewTicker(w.sweep)
	defer t.Stop()
	for {
		w.drain(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(w.gather):
			}
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
			if w.scored != nil {
				w.scored()
			}
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
