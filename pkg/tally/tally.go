// Package tally owns the derived state: the tables that the windower and
// the scorer build from the rating topic, and that everyone else reads.
//
//	ratings          each user's latest vote on each post (votes.go)
//	rating_averages  a post's event-time windows and what each was judged against (windows.go)
//	post_stats       a post's running totals and tracker (posts.go)
//	post_scores      what the query service serves (scores.go)
//	score_outbox     its changes waiting for the score topic (scores.go)
//	rescore_queue    posts whose windows changed since they were scored (scores.go)
//	consumer_offsets where each windower group stands in each partition (offsets.go)
//
// Every statement on these tables is here: the two writers (the
// windower's store and the scorer) take their statements from this
// package, and every reader (the query service, the command for people,
// the benchmarks) reads through it, in domain types (pkg/fold,
// pkg/scoring). tools/repocheck fails on SQL that names these tables
// anywhere else.
package tally

import (
	"context"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what a pool, a connection and a transaction share.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Group is the setting that names a windower group: the consumer group
// in Kafka and the key of its stored state. The windower, the scorer and
// the command for people read the same one.
type Group struct {
	Name string `env:"WINDOWER_GROUP" default:"ratestream-windower" help:"the windower's consumer group, also the key of its stored offsets and watermarks"`
}

// Key is where one windower group's positions are stored.
type Key struct {
	Consumer string // the group
	Topic    string // the rating topic it consumes
}

// Tables lists the derived tables, in the order a fingerprint reads them.
var Tables = []string{"ratings", "rating_averages", "post_stats", "post_scores", "rescore_queue", "consumer_offsets", "score_outbox"}

// Range selects rows by post id (From..To, inclusive) and event time
// (Since, Until); zero values leave a side open.
type Range struct {
	From, To     int64
	Since, Until time.Time
}

func (r Range) args() []any {
	to, since, until := r.To, r.Since, r.Until
	if to == 0 {
		to = math.MaxInt64
	}
	if since.IsZero() {
		since = time.Unix(0, 0)
	}
	if until.IsZero() {
		until = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return []any{r.From, to, since, until}
}

// Estimate is the planner's row count of a derived table: enough for a
// progress bar.
func Estimate(ctx context.Context, db DB, table string) (int64, error) {
	var n float64
	if err := db.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE relname = $1`, table).Scan(&n); err != nil {
		return 0, err
	}
	return int64(max(n, 0)), nil
}
