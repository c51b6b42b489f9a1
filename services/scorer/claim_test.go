package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/tools/testenv"
)

// With nothing marked, a post whose score is still maturing is claimed
// once a window closed since its score, or once it has not been rescored
// for revisit; one rescored a moment ago within the watermark's window is
// left for later, and one that holds at the watermark is not behind.
func TestClaimsMaturingPostsWithNothingMarked(t *testing.T) {
	db := testenv.NewDatabase(t)
	ctx := context.Background()
	wm := time.Date(2026, 3, 1, 0, 10, 30, 0, time.UTC) // in the window [00:10, 00:11)
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, max_event_time, watermark)
		VALUES ('c', 't', 0, 0, $1, $1)`, wm); err != nil {
		t.Fatal(err)
	}
	stable := wm.Add(time.Hour)
	for _, p := range []struct {
		id      int64
		asOf    time.Time
		updated time.Duration // ago
	}{
		{1, wm.Add(-40 * time.Second), 0},               // its window [00:09, 00:10) closed since
		{2, wm.Add(-20 * time.Second), 0},               // same window, rescored just now
		{3, wm.Add(-20 * time.Second), 5 * time.Second}, // same window, not revisited for 5 s
		{4, wm, 5 * time.Second},                        // holds at the watermark
	} {
		if _, err := db.Pool.Exec(ctx, `
			INSERT INTO post_scores (post_id, score, user_count, mean, strategy, partition, as_of, stable_at, updated_at)
			VALUES ($1, 3, 1, 3, 'surge-guard', 0, $2, $3, now() - $4::interval)`, p.id, p.asOf, stable, p.updated); err != nil {
			t.Fatal(err)
		}
	}
	r := &rescorer{pool: db.Pool, params: scoring.Params{Window: time.Minute}, consumer: "c", topic: "t", limit: 10, revisit: time.Second}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	ids, err := r.claim(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 3}; !slices.Equal(ids, want) {
		t.Fatalf("claimed %v, want %v (furthest behind first)", ids, want)
	}
}
