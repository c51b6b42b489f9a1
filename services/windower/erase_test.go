package main

import (
	"context"
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/pseudonym"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/tools/testenv"
)

// Stragglers: ratings that read the pseudonym before its mapping was
// deleted and reached the broker after the erase events. Each partition
// drops every later event of an erased pseudonym, whatever its time, for
// pseudonym.ErasedFor of event time; what it drops depends only on its
// log: batches of 5000 and of 3 (the erased set then passes through
// PostgreSQL between batches) give identical tables.
func TestAnErasureOutlivesItsStragglers(t *testing.T) {
	const parts = 3
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	ev := func(post int64, user string, score int, at time.Time) rating.Event {
		return testenv.Event(t, post, user, score, at)
	}
	var before, stragglers, after []rating.Event
	for post := int64(1); post <= 6; post++ {
		before = append(before, ev(post, "gone", 5, t0.Add(time.Duration(post)*time.Second)), ev(post, "stays", 2, t0.Add(time.Second)))
	}
	erase, err := rating.NewErasure("gone", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for post := int64(1); post <= 7; post++ {
		// Read the pseudonym before the erasure: stamped before it.
		stragglers = append(stragglers, ev(post, "gone", 5, t0.Add(50*time.Second)))
	}
	stragglers = append(stragglers, ev(8, "gone", 5, t0.Add(2*time.Minute))) // a clock ahead of the eraser's
	// Past the memory's end (event time), the pseudonym is a user like
	// any other again: nothing can carry it by then but a broken producer.
	late := t0.Add(time.Minute + pseudonym.ErasedFor + time.Second)
	for post := int64(1); post <= 8; post++ {
		after = append(after, ev(post, "stays", 3, late))
	}
	after = append(after, ev(9, "gone", 1, late.Add(time.Second)))

	b := testenv.NewBroker(t, parts)
	b.Produce(t, before)
	for p := range parts {
		b.ProduceTo(t, testenv.Target{Partition: &p}, []rating.Event{erase})
	}
	b.Produce(t, stragglers)
	b.Produce(t, after)
	total := int64(len(before) + parts + len(stragglers) + len(after))

	db := sameTablesInBatches(t, b, "stragglers", total, 5000, 3)

	ctx := context.Background()
	rows, err := db.Pool.Query(ctx, `SELECT post_id FROM ratings WHERE user_id = 'gone' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var posts []int64
	for rows.Next() {
		var p int64
		_ = rows.Scan(&p)
		posts = append(posts, p)
	}
	if len(posts) != 1 || posts[0] != 9 {
		t.Fatalf("the erased pseudonym has votes on posts %v; want only post 9's, cast after the memory ended", posts)
	}
	var stays, left int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE user_id = 'stays'), (SELECT count(*) FROM consumer_offsets WHERE erased IS NOT NULL) FROM ratings`).Scan(&stays, &left); err != nil {
		t.Fatal(err)
	}
	if stays != 8 || left != 0 {
		t.Fatalf("%d votes of the other user (want 8); %d partitions still remember an erasure", stays, left)
	}
}
