package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/postscore"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
)

// closes knows when the pipeline's windows close: a window [s, e) closes
// when a partition's watermark (its newest event time less GRACE) passes
// e, that is at e + GRACE on ingest's clock while ratings keep coming.
type closes struct {
	params scoring.Params
	grace  time.Duration
}

// closeSettings reads WINDOW (and the other scoring settings) as the
// services do, and GRACE; the e2e benchmark hands both to the services.
func closeSettings() (closes, error) {
	var s struct {
		Scoring scoring.Config
		Grace   time.Duration `env:"GRACE" default:"5s" help:"how far behind the newest event time a window closes"`
	}
	if err := config.Load(&s, nil, os.Stderr); err != nil {
		return closes{}, err
	}
	p, err := s.Scoring.Params()
	if err != nil {
		return closes{}, err
	}
	return closes{params: p, grace: s.Grace}, nil
}

func (c closes) env() []string {
	return []string{"WINDOW=" + c.params.Window.String(), "GRACE=" + c.grace.String()}
}

// next is the end of the first window that closes at or after t.
func (c closes) next(t time.Time) time.Time {
	e := c.params.WindowStart(t.Add(-c.grace))
	for e.Add(c.grace).Before(t) {
		e = e.Add(c.params.Window)
	}
	return e
}

// align waits until a window will close lead from now, so that a step of
// load that starts then sees one close (at most one window's wait).
func (c closes) align(ctx context.Context, lead time.Duration) {
	at := c.next(time.Now().Add(lead)).Add(c.grace).Add(-lead)
	sleep(ctx, time.Until(at))
}

// scoresAfterClose waits for the window ending at end to close, then
// polls until every post of ids rated in that window has a score that
// holds for event time end or later where scored looks (the score topic,
// as a query replica reads it), for at most within. It returns, per such
// post, how long after the close its score was seen (100 ms resolution),
// and how many were still not updated.
func (c closes) scoresAfterClose(ctx context.Context, pool *pgxpool.Pool, scored *topicScores, ids []int64, end time.Time, within time.Duration) ([]time.Duration, int, error) {
	closed := end.Add(c.grace)
	sleep(ctx, time.Until(closed))
	rated, err := tally.PostsWithWindow(ctx, pool, ids, end.Add(-c.params.Window))
	if err != nil {
		return nil, 0, err
	}
	var delays []time.Duration
	for len(rated) > 0 && ctx.Err() == nil {
		done := scored.since(rated, end)
		seen := time.Since(closed)
		for range done {
			delays = append(delays, seen)
		}
		rated = without(rated, done)
		if seen >= within {
			break
		}
		sleep(ctx, 100*time.Millisecond)
	}
	return delays, len(rated), nil
}

func without(ids, drop []int64) []int64 {
	gone := make(map[int64]bool, len(drop))
	for _, id := range drop {
		gone[id] = true
	}
	kept := ids[:0]
	for _, id := range ids {
		if !gone[id] {
			kept = append(kept, id)
		}
	}
	return kept
}

// closeReport is what one step saw of the windows that closed during it.
type closeReport struct {
	Window  time.Time `json:"window_end"`
	Posts   int       `json:"posts"`
	P50ms   float64   `json:"p50_ms"`
	P99ms   float64   `json:"p99_ms"`
	MaxMs   float64   `json:"max_ms"`
	Missing int       `json:"not_updated"`
}

func reportClose(end time.Time, delays []time.Duration, missing int) closeReport {
	r := closeReport{Window: end, Posts: len(delays) + missing, Missing: missing}
	r.P50ms, r.P99ms, r.MaxMs = spread(delays)
	return r
}

func (r closeReport) String() string {
	return fmt.Sprintf("window ending %s closed: %d posts rated in it, score updated p50 %.0f ms, p99 %.0f ms, max %.0f ms after the close, %d not within the bound",
		r.Window.Format("15:04:05"), r.Posts, r.P50ms, r.P99ms, r.MaxMs, r.Missing)
}

// topicScores follows the score topic as a query replica does
// (postscore.Follower) and keeps the event time each post's latest score
// holds for.
type topicScores struct {
	mu   sync.Mutex
	asOf map[int64]time.Time
}

func followScores(ctx context.Context, brokerAddr string) *topicScores {
	ts := &topicScores{asOf: map[int64]time.Time{}}
	f := &postscore.Follower{
		Kafka: broker.Config{Brokers: []string{brokerAddr}, Topic: "ratings.v1", ScoreTopic: "post-scores.v1", Partitions: 12, Replicas: 1},
		Log:   zap.NewNop(),
		Apply: func(recs []postscore.Record) {
			ts.mu.Lock()
			defer ts.mu.Unlock()
			for _, r := range recs {
				ts.asOf[r.PostID] = r.AsOf
			}
		},
	}
	go f.Run(ctx)
	return ts
}

// since returns the posts of ids whose latest score holds for asOf or
// later.
func (ts *topicScores) since(ids []int64, asOf time.Time) []int64 {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []int64
	for _, id := range ids {
		if t, ok := ts.asOf[id]; ok && !t.Before(asOf) {
			out = append(out, id)
		}
	}
	return out
}
