package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
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
	evs := withRetractions(events(41, 3000, 20, 60), rand.New(rand.NewPCG(5, 5)), 4)
	b := testenv.NewBroker(t, 3)
	b.Produce(t, evs)

	db := sameTablesInBatches(t, b, "retract", int64(len(evs)), 5000, 37)

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

// Erasures through the broker and PostgreSQL: written to every partition
// between two halves of the ratings, each deletes every vote of its user
// on that partition's posts (tombstones too) and takes the counted ones
// back from their windows and totals, as the fold defines; the tables of
// two windowers with different batch sizes are identical (replay), and
// no row of an erased user is left.
func TestErasuresDeleteEveryVoteOfTheUser(t *testing.T) {
	const parts = 3
	evs := withRetractions(events(43, 4000, 20, 60), rand.New(rand.NewPCG(6, 6)), 6)
	erased := map[string]bool{}
	var erasures []rating.Event
	for _, u := range []int{3, 17, 42} {
		user := evs[u].UserID
		if erased[user] {
			continue
		}
		erased[user] = true
		e, err := rating.NewErasure(user, evs[len(evs)/2].RatedAt)
		if err != nil {
			t.Fatal(err)
		}
		erasures = append(erasures, e)
	}
	first, second := evs[:len(evs)/2], slices.DeleteFunc(slices.Clone(evs[len(evs)/2:]), func(e rating.Event) bool { return erased[e.UserID] })
	b := testenv.NewBroker(t, parts)
	b.Produce(t, first)
	for p := range parts {
		b.ProduceTo(t, testenv.Target{Partition: &p}, erasures)
	}
	b.Produce(t, second)
	total := int64(len(first) + len(second) + parts*len(erasures))

	db := sameTablesInBatches(t, b, "erase", total, 5000, 29)

	// The definition: the fold in log order, each erasure expanded over
	// the user's votes.
	st := fold.NewState(scoring.DefaultParams(time.Second), 0)
	for _, e := range first {
		st.Apply(e, 0)
	}
	for _, e := range erasures {
		var posts []int64
		for k := range st.Votes {
			if k.UserID == e.UserID {
				posts = append(posts, k.PostID)
			}
		}
		if len(posts) == 0 {
			t.Fatalf("user %s has nothing to erase", e.UserID)
		}
		for _, x := range fold.Erasure(e, posts) {
			st.Apply(x, 0)
		}
	}
	for _, e := range second {
		st.Apply(e, 0)
	}
	ctx := context.Background()
	users := slices.Collect(maps.Keys(erased))
	var left int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ratings WHERE user_id = ANY($1)`, users).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d rows of erased users are left", left)
	}
	var rows, counted int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE NOT retracted) FROM ratings`).Scan(&rows, &counted); err != nil {
		t.Fatal(err)
	}
	var wantCounted int64
	for _, v := range st.Votes {
		if !v.Retracted {
			wantCounted++
		}
	}
	if rows != int64(len(st.Votes)) || counted != wantCounted {
		t.Fatalf("ratings: %d rows, %d counted; the fold: %d, %d", rows, counted, len(st.Votes), wantCounted)
	}
	for id, post := range st.Posts {
		var sum, count, wsum, weight int64
		if err := db.Pool.QueryRow(ctx, `SELECT rating_sum, rating_count, weighted_sum, weight FROM post_stats WHERE post_id = $1`, id).Scan(&sum, &count, &wsum, &weight); err != nil {
			t.Fatal(err)
		}
		if sum != post.Totals.Sum || count != post.Totals.Count || wsum != post.Totals.WeightedSum || weight != post.Totals.Weight {
			t.Errorf("post %d: totals %d/%d (%d/%d), the fold %+v", id, sum, count, wsum, weight, post.Totals)
		}
	}
	var windowCount int64
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(sum(rating_count), 0) FROM rating_averages`).Scan(&windowCount); err != nil {
		t.Fatal(err)
	}
	if windowCount != wantCounted {
		t.Fatalf("windows count %d votes, %d are counted", windowCount, wantCounted)
	}
}

// sameTablesInBatches consumes b's topic (total messages) with one
// windower per batch size, each into a database of its own, checks that
// every database holds the same tables (replay is deterministic whatever
// the batches) and returns the last database.
func sameTablesInBatches(t *testing.T, b *testenv.Broker, group string, total int64, sizes ...int) *testenv.Database {
	t.Helper()
	var dumps []map[string]string
	var db *testenv.Database
	for i, batch := range sizes {
		db = testenv.NewDatabase(t)
		cfg := testConfig(t, db, b)
		cfg.MaxBatch = batch
		cfg.Group.Name = fmt.Sprintf("windower-%s-%d", group, i)
		start(t, cfg)
		waitConsumed(t, db, total, 90*time.Second)
		dumps = append(dumps, dump(t, db))
		if i > 0 {
			sameDump(t, fmt.Sprintf("batches of %d vs %d", sizes[0], batch), dumps[0], dumps[i])
		}
	}
	return db
}

// withRetractions turns about one event in oneIn of evs (chosen by rng)
// into a retraction by the same user of the same post at the same time.
func withRetractions(evs []rating.Event, rng *rand.Rand, oneIn int) []rating.Event {
	for i := range evs {
		if rng.IntN(oneIn) == 0 {
			e := evs[i]
			e.V, e.Retract, e.Score = rating.Version2, true, 0
			evs[i] = e
		}
	}
	return evs
}
