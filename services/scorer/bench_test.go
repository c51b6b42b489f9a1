package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/tools/testenv"
)

// BenchmarkRescore scores one post with a short and with a very long
// history. The default strategy reads the post's running totals and its
// still-maturing windows only, so the two should cost about the same.
func BenchmarkRescore(b *testing.B) {
	db := testenv.NewDatabase(b)
	params := scoring.DefaultParams(time.Minute)
	for _, n := range []int{10, 100_000} {
		post := int64(n)
		last := seedHistory(b, db, params, post, n)
		r := &rescorer{pool: db.Pool, strategy: scoring.SurgeGuard{}, params: params, consumer: "bench", topic: "ratings.v1", limit: 500}
		if _, err := db.Pool.Exec(context.Background(), `
			INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, max_event_time, watermark)
			VALUES ('bench', 'ratings.v1', $1, 0, $2, $2)`, int(post%1000), last); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("windows=%d", n), func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				if _, err := db.Pool.Exec(ctx, `INSERT INTO rescore_queue (post_id, partition) VALUES ($1, $2)`, post, int(post%1000)); err != nil {
					b.Fatal(err)
				}
				if got, err := r.round(ctx); err != nil || got != 1 {
					b.Fatalf("round: %d posts, %v", got, err)
				}
			}
		})
	}
}

// seedHistory writes a post with n one-minute windows of ten ratings each,
// built through the same fold as the windower.
func seedHistory(b *testing.B, db *testenv.Database, p scoring.Params, post int64, n int) time.Time {
	b.Helper()
	st := fold.NewState(p, 0)
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var at time.Time
	user := 0
	for w := 0; w < n; w++ {
		for i := 0; i < 10; i++ {
			at = t0.Add(time.Duration(w)*time.Minute + time.Duration(i)*time.Second)
			e, _ := rating.New(post, fmt.Sprintf("u%d", user), (w+i)%6, at)
			user++
			st.Apply(e, int(post%1000))
		}
	}
	rows := make([][]any, 0, len(st.Windows))
	for k, w := range st.Windows {
		rows = append(rows, []any{k.PostID, k.Start, w.Sum, w.Count, w.Threshold})
	}
	ctx := context.Background()
	if _, err := db.Pool.CopyFrom(ctx, pgx.Identifier{"rating_averages"},
		[]string{"post_id", "window_start", "rating_sum", "rating_count", "threshold"}, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	ps := st.Posts[post]
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO post_stats (post_id, partition, rating_sum, rating_count, weighted_sum, weight,
		                        baseline, baseline_seen, current_window, current_count, current_threshold)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		post, ps.Partition, ps.Totals.Sum, ps.Totals.Count, ps.Totals.WeightedSum, ps.Totals.Weight,
		ps.Volume.Baseline, ps.Volume.Seen, ps.Volume.Current, ps.Volume.CurrentCount, ps.Volume.CurrentThreshold); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE rating_averages`); err != nil {
		b.Fatal(err)
	}
	return at
}
