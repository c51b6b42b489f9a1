package main

import (
	"context"
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/tools/testenv"
)

// dumpState is every stored row the windower writes, one line per row, in
// a fixed order.
func dumpState(t *testing.T, db *testenv.Database) []string {
	t.Helper()
	var out []string
	for _, q := range []string{
		`SELECT format('%s %s %s %s %s %s %s', post_id, user_id, score, rated_at, event_id, window_start, rerate) FROM ratings ORDER BY 1`,
		`SELECT format('%s %s %s %s %s %s %s', post_id, window_start, rating_sum, rating_count, rerate_count, threshold, late_count) FROM rating_averages ORDER BY 1`,
		`SELECT format('%s %s %s %s %s %s %s %s %s %s %s', post_id, partition, rating_sum, rating_count, weighted_sum, weight,
		        baseline, baseline_seen, current_window, current_count, current_threshold) FROM post_stats ORDER BY 1`,
		`SELECT format('%s %s %s', partition, next_offset, max_event_time) FROM consumer_offsets ORDER BY 1`,
	} {
		rows, err := db.Pool.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// sameState fails the test unless the database that kept rows in memory
// holds every row the one that read every row holds, and returns how many.
func sameState(t *testing.T, plain, cached *testenv.Database) int {
	t.Helper()
	want, got := dumpState(t, plain), dumpState(t, cached)
	if len(want) != len(got) {
		t.Fatalf("%d rows with cached rows, %d reading every row", len(got), len(want))
	}
	diff := 0
	for i := range want {
		if want[i] != got[i] {
			if diff++; diff <= 10 {
				t.Errorf("row %d:\n cached  %s\n plain   %s", i, got[i], want[i])
			}
		}
	}
	if diff > 0 {
		t.Fatalf("%d of %d rows differ", diff, len(want))
	}
	return len(want)
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
			res, err := s.apply(context.Background(), batch{partition: 3, expected: pos, next: pos.next + int64(len(part)), events: part})
			if err != nil {
				t.Fatalf("batch %d on store %d: %v", i, turn(i), err)
			}
			pos = res.position
		}
	}

	plain := testenv.NewDatabase(t)
	run([]*pgStore{{pool: plain.Pool, consumer: "w", topic: "ratings.v1", params: params, grace: grace}},
		func(int) int { return 0 })

	shared := testenv.NewDatabase(t)
	a := &pgStore{pool: shared.Pool, consumer: "w", topic: "ratings.v1", params: params, grace: grace, cache: newRowCache(100000)}
	b := &pgStore{pool: shared.Pool, consumer: "w", topic: "ratings.v1", params: params, grace: grace, cache: newRowCache(5)}
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
			res, err := s.apply(context.Background(), batch{partition: st.partition, expected: cur, next: cur.next + int64(len(st.events)), events: st.events})
			if err != nil {
				t.Fatalf("step %d (partition %d): %v", i, st.partition, err)
			}
			pos[st.partition] = res.position
		}
	}
	plain := testenv.NewDatabase(t)
	apply(&pgStore{pool: plain.Pool, consumer: "w", topic: "ratings.v1", params: params, grace: grace})
	cached := testenv.NewDatabase(t)
	s := &pgStore{pool: cached.Pool, consumer: "w", topic: "ratings.v1", params: params, grace: grace, cache: newRowCache(100000)}
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
