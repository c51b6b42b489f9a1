package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
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
	r := &rescorer{pool: db.Pool, params: scoring.Params{Window: time.Minute}, key: tally.Key{Consumer: "c", Topic: "t"}, limit: 10, revisit: time.Second}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	ids, _, err := r.claim(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 3}; !slices.Equal(ids, want) {
		t.Fatalf("claimed %v, want %v (furthest behind first)", ids, want)
	}
}

// A round searches for maturing posts only when one may be due: after a
// search, a post behind the watermark's window waits until the watermark
// enters a new window, or until half of revisit went by.
func TestSearchesForMaturingPostsOnlyWhenOneMayBeDue(t *testing.T) {
	db := testenv.NewDatabase(t)
	ctx := context.Background()
	wm := time.Date(2026, 3, 1, 0, 10, 30, 0, time.UTC)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, max_event_time, watermark)
		VALUES ('c', 't', 0, 0, $1, $1)`, wm)
	addPost := func(id int64) { // its window [00:09, 00:10) closed
		exec(`INSERT INTO post_scores (post_id, score, user_count, mean, strategy, partition, as_of, stable_at)
			VALUES ($1, 3, 1, 3, 'surge-guard', 0, $2, $3)`, id, wm.Add(-40*time.Second), wm.Add(time.Hour))
	}
	r := &rescorer{pool: db.Pool, params: scoring.Params{Window: time.Minute}, key: tally.Key{Consumer: "c", Topic: "t"}, limit: 10, revisit: time.Hour}
	claim := func() []int64 {
		t.Helper()
		var ids []int64
		if err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			var l *look
			var err error
			ids, l, err = r.claim(ctx, tx)
			if l != nil {
				r.looked = *l
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	addPost(1)
	if ids := claim(); !slices.Equal(ids, []int64{1}) {
		t.Fatalf("first round claimed %v, want [1]", ids)
	}
	exec(`DELETE FROM post_scores`)
	addPost(2)
	if ids := claim(); len(ids) != 0 {
		t.Fatalf("a round right after a search, the watermark in the same window, claimed %v", ids)
	}
	exec(`UPDATE consumer_offsets SET watermark = $1`, wm.Add(time.Minute))
	if ids := claim(); !slices.Equal(ids, []int64{2}) {
		t.Fatalf("once the watermark entered a new window the round claimed %v, want [2]", ids)
	}
	exec(`DELETE FROM post_scores`)
	addPost(3)
	r.looked.at = r.looked.at.Add(-r.revisit / 2)
	if ids := claim(); !slices.Equal(ids, []int64{3}) {
		t.Fatalf("half of revisit after the last search the round claimed %v, want [3]", ids)
	}
}
