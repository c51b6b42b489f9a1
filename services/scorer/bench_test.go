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
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// BenchmarkRescore scores one post with a short and with a very long
// history. The default strategy reads the post's running totals and its
// recent windows only, so the two should cost about the same.
func BenchmarkRescore(b *testing.B) {
	db := testenv.NewDatabase(b)
	params := scoring.DefaultParams(time.Minute)
	for _, n := range []int{10, 100_000} {
		post := int64(n)
		last := seedHistory(b, db, params, post, n)
		key := tally.Key{Consumer: "bench", Topic: "ratings.v1"}
		r := &rescorer{pool: db.Pool, strategy: scoring.SurgeGuard{}, params: params, key: key, limit: 500}
		batch := &pgx.Batch{}
		tally.QueuePosition(batch, key, int(post%1000), tally.Position{Exists: true, MaxEventTime: last}, 0)
		if err := db.Pool.SendBatch(context.Background(), batch).Close(); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if _, err := r.round(ctx); err != nil { // seedHistory marked the post once
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("windows=%d", n), func(b *testing.B) {
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
	var ws tally.WindowRows
	for k, w := range st.Windows {
		ws.Add(k, w)
	}
	var ps tally.PostRows
	ps.Add(post, st.Posts[post])
	batch := &pgx.Batch{}
	tally.QueueWindows(batch, &ws)
	tally.QueuePosts(batch, &ps, int(post%1000))
	ctx := context.Background()
	if err := db.Pool.SendBatch(ctx, batch).Close(); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE rating_averages`); err != nil {
		b.Fatal(err)
	}
	return at
}
