package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/tools/testenv"
)

// A producer that does not partition by murmur2 (librdkafka's default is
// consistent_random: a data team's backfill with kcat's defaults) puts
// one post on several partitions at once, and so does a topic whose
// partitions were added. Two partitions then write the same post, each
// from its own batches: every rating must still count once in the
// windows and the post's totals, whichever batch created the post and
// however they interleave.
func TestAPostWrittenFromTwoPartitionsCountsEveryRating(t *testing.T) {
	b := testenv.NewBroker(t, 8)
	db := testenv.NewDatabase(t)
	cfg := testConfig(t, db, b)
	cfg.MaxBatch = 200 // many small batches: many chances to interleave
	start(t, cfg)
	at := time.Now().UTC().Add(-time.Minute)
	var evs []rating.Event
	byPart := map[int][]rating.Event{}
	for _, part := range []int{0, 7} {
		for i := range 3000 {
			for _, post := range []int64{42, 43} { // two posts, both on both partitions
				e := testenv.Event(t, post, fmt.Sprintf("p%d-u%d", part, i), (i+part)%6, at.Add(time.Duration(i)*5*time.Millisecond))
				evs = append(evs, e)
				byPart[part] = append(byPart[part], e)
			}
		}
	}
	var wg sync.WaitGroup
	for part, evs := range byPart {
		wg.Go(func() { b.ProduceTo(t, testenv.Target{Partition: &part}, evs) })
	}
	wg.Wait()
	waitConsumed(t, db, int64(len(evs)), 60*time.Second)
	checkAgainstDefinition(t, db, evs, time.Second)
	for _, post := range []int64{42, 43} {
		var sum, count int64
		if err := db.Pool.QueryRow(context.Background(), `SELECT rating_sum, rating_count FROM post_stats WHERE post_id = $1`, post).Scan(&sum, &count); err != nil {
			t.Fatal(err)
		}
		var wantSum int64
		for _, e := range evs {
			if e.PostID == post {
				wantSum += int64(e.Score)
			}
		}
		if count != 6000 || sum != wantSum {
			t.Errorf("post %d: totals %d over %d ratings, want %d over 6000", post, sum, count, wantSum)
		}
	}
}

// fixed puts every message on one partition, whatever its key.
type fixed int

func (f fixed) Balance(kafka.Message, ...int) int { return int(f) }
