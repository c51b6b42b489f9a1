package postscore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/tally"
)

// relayLock is the advisory lock the one relay of a database holds: two
// relays would publish a post's records in two orders.
const relayLock = 0x706f73742d73636f // "post-sco"

// Relay publishes the score outbox to the score topic, in the order the
// scores committed, and deletes what the broker acknowledged. One scorer
// instance relays (the holder of relayLock); the others stand by. A record
// published again after a crash (between the broker's acknowledgement and
// the delete) has the same post and version: consumers keep the newest
// version per post (pkg/postscore.Table), so it changes nothing.
type Relay struct {
	pool    *pgxpool.Pool
	w       *kafka.Writer
	publish bool // false: empty the outbox without publishing
	log     *zap.Logger
	batch   int
	idle    time.Duration // how often an empty outbox is looked at again
	wake    chan struct{} // a round committed scores
	m       *relayMetrics
}

// NewRelay returns the relay of pool's outbox to w (nil w: the outbox is
// emptied without publishing, as a replay's scorer does), publishing up
// to batch records per round, with its metrics registered on reg.
func NewRelay(pool *pgxpool.Pool, w *kafka.Writer, batch int, log *zap.Logger, reg prometheus.Registerer) *Relay {
	return &Relay{pool: pool, w: w, publish: w != nil, log: log, batch: batch, idle: 250 * time.Millisecond,
		wake: make(chan struct{}, 1), m: newRelayMetrics(reg)}
}

type relayMetrics struct {
	published prometheus.Counter
	errors    prometheus.Counter
	leader    prometheus.Gauge
}

func newRelayMetrics(reg prometheus.Registerer) *relayMetrics {
	m := &relayMetrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "scorer_score_records_published_total", Help: "Score records the broker acknowledged on the score topic."}),
		errors:    prometheus.NewCounter(prometheus.CounterOpts{Name: "scorer_relay_errors_total", Help: "Failed relay rounds (retried)."}),
		leader:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "scorer_relay_leader", Help: "1 while this instance is the one relaying the score outbox."}),
	}
	reg.MustRegister(m.published, m.errors, m.leader)
	return m
}

// Notify wakes the relay without waiting: scores committed.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx ends: it takes the lock on a connection of its own
// and relays while it holds it; on any error it lets go and starts again.
func (r *Relay) Run(ctx context.Context) error {
	for wait := r.idle; ctx.Err() == nil; {
		err := r.lead(ctx)
		r.m.leader.Set(0)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.m.errors.Inc()
			r.log.Warn("score relay stopped; starting again", zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

func (r *Relay) lead(ctx context.Context) error {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	var got bool
	// The lock lives with the session: closing the connection lets go. A
	// standby's connection goes back to the pool as it is.
	defer func() {
		if got {
			_ = conn.Conn().Close(context.Background())
		}
		conn.Release()
	}()
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(relayLock)).Scan(&got); err != nil {
		got = true // whatever the session holds goes with it
		return err
	}
	if !got {
		return nil // stand by; run tries again
	}
	r.m.leader.Set(1)
	r.log.Info("relaying the score outbox")
	tick := time.NewTicker(r.idle)
	defer tick.Stop()
	for {
		n, err := r.round(ctx, conn)
		if err != nil {
			return err
		}
		if n == r.batch {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-tick.C:
		}
	}
}

// round publishes up to batch records and deletes them.
func (r *Relay) round(ctx context.Context, conn *pgxpool.Conn) (int, error) {
	recs, err := tally.ReadOutbox(ctx, conn, r.batch)
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	msgs := make([]kafka.Message, len(recs))
	seqs := make([]int64, len(recs))
	for i, o := range recs {
		msgs[i] = kafka.Message{Key: strconv.AppendInt(nil, o.PostID, 10), Value: o.Record}
		seqs[i] = o.Seq
	}
	// One call: the writer keeps the order of each partition's messages.
	if r.publish {
		if err := r.w.WriteMessages(ctx, msgs...); err != nil {
			return 0, fmt.Errorf("publish %d score records: %w", len(msgs), err)
		}
		r.m.published.Add(float64(len(msgs)))
	}
	return len(recs), tally.DeleteOutbox(ctx, conn, seqs)
}
