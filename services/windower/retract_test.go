package main

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/tools/testenv"
)

// Ratings and retractions through the broker and PostgreSQL end as the
// fold defines them (each rating taken back exactly once, tombstones for
// the users whose latest event is a retraction, retractions counted as
// activity in their windows), and two windowers with different batch
// sizes write identical tables: replay stays deterministic.
func TestRetractionsTakeRatingsBackExactlyOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	evs := events(41, 3000, 20, 60)
	for i := range evs {
		if rng.IntN(4) == 0 {
			e := evs[i]
			e.V, e.Retract, e.Score = rating.Version2, true, 0
			evs[i] = e
		}
	}
	b := testenv.NewBroker(t, 3)
	b.Produce(t, evs)

	var dumps []map[string]string
	var db *testenv.Database
	for _, batch := range []int{5000, 37} {
		db = testenv.NewDatabase(t)
		cfg := testConfig(t, db, b)
		cfg.MaxBatch = batch
		cfg.Group.Name = "windower-retract-" + string(rune('a'+len(dumps)))
		start(t, cfg)
		waitConsumed(t, db, int64(len(evs)), 90*time.Second)
		dumps = append(dumps, dump(t, db))
	}
	sameDump(t, "batches of 5000 vs 37", dumps[0], dumps[1])

	// The definition: the fold over each post's events in log order.
	p := scoring.DefaultParams(time.Second)
	st := fold.NewState(p, 0)
	for _, e := range evs {
		st.Apply(e, 0)
	}
	ctx := context.Background()
	var tombstones, counted, retracts int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE retracted), count(*) FILTER (WHERE NOT retracted) FROM ratings`).Scan(&tombstones, &counted); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(sum(retract_count), 0) FROM rating_averages`).Scan(&retracts); err != nil {
		t.Fatal(err)
	}
	var wantTomb, wantCounted, wantRetracts int64
	for _, v := range st.Votes {
		if v.Retracted {
			wantTomb++
		} else {
			wantCounted++
		}
	}
	for _, w := range st.Windows {
		wantRetracts += w.Retracts
	}
	if tombstones != wantTomb || counted != wantCounted || retracts != wantRetracts || wantRetracts == 0 {
		t.Fatalf("tables: %d tombstones, %d ratings, %d retractions in windows; the fold: %d, %d, %d",
			tombstones, counted, retracts, wantTomb, wantCounted, wantRetracts)
	}
	for id, post := range st.Posts {
		var sum, count int64
		if err := db.Pool.QueryRow(ctx, `SELECT rating_sum, rating_count FROM post_stats WHERE post_id = $1`, id).Scan(&sum, &count); err != nil {
			t.Fatal(err)
		}
		if sum != post.Totals.Sum || count != post.Totals.Count {
			t.Errorf("post %d: totals %d/%d, the fold %d/%d", id, sum, count, post.Totals.Sum, post.Totals.Count)
		}
	}
}
