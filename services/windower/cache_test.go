package main

import (
	"context"
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// sameState fails the test unless the database that kept rows in memory
// holds, post by post, the state the one that read every row holds, and
// returns how many posts it compared.
func sameState(t *testing.T, plain, cached *testenv.Database) int {
	t.Helper()
	want, got := digest(t, plain), digest(t, cached)
	diff, posts := 0, 0
	for _, part := range tally.DigestParts() {
		for id, w := range want[part] {
			posts = max(posts, len(want[part]))
			if g := got[part][id]; g != w {
				if diff++; diff <= 10 {
					t.Errorf("post %d, %s:\n cached  %s\n plain   %s", id, part, g, w)
				}
			}
		}
		if len(got[part]) != len(want[part]) {
			t.Errorf("%s: %d posts cached, %d plain", part, len(got[part]), len(want[part]))
		}
	}
	if diff > 0 {
		t.Fatalf("%d differences", diff)
	}
	return posts
}

// A windower keeps the rows its last batch of a partition committed and
// reads only the others; the rows it keeps are the stored ones only while
// no other instance applied a batch of the partition since. Two instances
// that take turns on one partition (as after rebalances), one of them with
// room for a handful of rows, store exactly what one instance that reads
// every row from PostgreSQL stores: windows, late counts, totals and
// volume baselines to the last bit.
func TestCachedRowsStoreWhatReadingEveryRowStores(t *testing.T) {
	params := scoring.DefaultParams(time.Second)
	grace := time.Second
	evs := events(11, 6000, 6, 120) // few posts and users: every batch touches rows the last one kept
	var batches [][]rating.Event
	for i := 0; i < len(evs); i += 150 {
		batches = append(batches, evs[i:min(i+150, len(evs))])
	}

	run := func(stores []*pgStore, turn func(i int) int) {
		t.Helper()
		pos := position{}
		for i, part := range batches {
			s := stores[turn(i)]
			res, err := s.apply(context.Background(), batch{partition: 3, expected: pos, next: pos.Next + int64(len(part)), events: part})
			if err != nil {
				t.Fatalf("batch %d on store %d: %v", i, turn(i), err)
			}
			pos = res.position
		}
	}

	plain := testenv.NewDatabase(t)
	run([]*pgStore{{pool: plain.Pool, key: tally.Key{Consumer: "w", Topic: "ratings.v1"}, params: params, grace: grace}},
		func(int) int { return 0 })

	shared := testenv.NewDatabase(t)
	a := &pgStore{pool: shared.Pool, key: tally.Key{Consumer: "w", Topic: "ratings.v1"}, params: params, grace: grace, cache: newRowCache(100000)}
	b := &pgStore{pool: shared.Pool, key: tally.Key{Consumer: "w", Topic: "ratings.v1"}, params: params, grace: grace, cache: newRowCache(5)}
	// a applies most batches; b takes one now and then, and two in a row.
	run([]*pgStore{a, b}, func(i int) int {
		if i%7 == 3 || i%11 == 5 || i%11 == 6 {
			return 1
		}
		return 0
	})

	rows := sameState(t, plain, shared)
	hits, misses := a.cache.hits.Load(), a.cache.misses.Load()
	if hits == 0 || misses == 0 {
		t.Fatalf("first instance: %d rows from memory, %d read: want both", hits, misses)
	}
	t.Logf("%d rows, the same both ways; first instance took %d rows from memory and read %d", rows, hits, misses)
}

// An event that a producer put on the wrong partition makes that
// partition's batch write a post of another partition: the instance that
// keeps the post's rows in memory reads them again, and the stored rows
// are those of an instance that reads every row.
func TestMisplacedEventMakesTheOwnerReadItsPostAgain(t *testing.T) {
	params := scoring.DefaultParams(time.Second)
	grace := time.Second
	evs := events(12, 1200, 3, 40)
	// Partition 0 holds posts 1-3; every 97th event is put on partition 1.
	type step struct {
		partition int
		events    []rating.Event
	}
	var steps []step
	var run []rating.Event
	for i, e := range evs {
		if i%97 == 50 {
			steps = append(steps, step{0, run}, step{1, []rating.Event{e}})
			run = nil
			continue
		}
		run = append(run, e)
	}
	steps = append(steps, step{0, run})

	apply := func(s *pgStore) {
		t.Helper()
		pos := map[int]position{}
		for i, st := range steps {
			if len(st.events) == 0 {
				continue
			}
			cur := pos[st.partition]
			res, err := s.apply(context.Background(), batch{partition: st.partition, expected: cur, next: cur.Next + int64(len(st.events)), events: st.events})
			if err != nil {
				t.Fatalf("step %d (partition %d): %v", i, st.partition, err)
			}
			pos[st.partition] = res.position
		}
	}
	plain := testenv.NewDatabase(t)
	apply(&pgStore{pool: plain.Pool, key: tally.Key{Consumer: "w", Topic: "ratings.v1"}, params: params, grace: grace})
	cached := testenv.NewDatabase(t)
	s := &pgStore{pool: cached.Pool, key: tally.Key{Consumer: "w", Topic: "ratings.v1"}, params: params, grace: grace, cache: newRowCache(100000)}
	apply(s)

	sameState(t, plain, cached)
	var foreign int64
	if err := cached.Pool.QueryRow(context.Background(), `SELECT foreign_writes FROM consumer_offsets WHERE partition = 0`).Scan(&foreign); err != nil {
		t.Fatal(err)
	}
	if foreign == 0 || s.cache.hits.Load() == 0 {
		t.Fatalf("foreign writes %d, rows from memory %d: want both above 0", foreign, s.cache.hits.Load())
	}
}
