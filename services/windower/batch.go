package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/pseudonym"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
)

// batch is one partition's slice of the log, decoded, in offset order.
type batch struct {
	partition int
	expected  position // what we believe is stored before this batch
	next      int64    // offset after the last message
	last      []byte   // broker.Fingerprint of the message at next-1; nil: not known
	events    []rating.Event
	msgs      []kafka.Message // where each event was read, for dead letters
}

// position is where a partition stands, as stored (see tally.Position):
// Foreign counts the writes of the partition's posts by other partitions'
// batches (events a producer put on the wrong partition); only other
// batches change it.
type position = tally.Position

// result reports what a committed batch did.
type result struct {
	applied, superseded, late int
	posts                     int
	position                  position
}

// errFenced means another instance advanced this partition since we read
// its offset: our batch is stale and must not be written.
var errFenced = errors.New("partition offset moved under us")

// errPostRaced means another partition's batch stored a post that this
// batch found new (a producer put the post's events on two partitions):
// the batch runs again, and then reads it. Not a PostgreSQL error, so
// that it is retried as an outage, never isolated as bad data.
var errPostRaced = errors.New("a post this batch created was stored meanwhile by another partition's batch")

// store is where the windower keeps its state: PostgreSQL (pgStore) in
// production, memory in the processor's unit tests.
type store interface {
	// position reads where a partition stands, without locking it.
	position(ctx context.Context, partition int) (position, error)
	// apply runs applyBatch in one transaction: all of it or nothing.
	apply(ctx context.Context, b batch) (result, error)
	// offsets reads the stored next offset of every partition.
	offsets(ctx context.Context) (map[int]int64, error)
	// register stores first as the partition's position unless it has
	// one, once every other group's batch in flight has ended
	// (tally.Register): other writers know ours before it writes.
	register(ctx context.Context, partition int, first int64) error
	// forget drops what the store keeps in memory for a partition that
	// this instance stops working on.
	forget(partition int)
}

// txn is one transaction of a store, as the steps of a batch use it.
type txn interface {
	// lockPosition reads where the partition stands and holds it until
	// the transaction ends, so that two instances cannot both apply.
	lockPosition(ctx context.Context, partition int) (position, error)
	// ratedBy lists the posts of the partition that user has a vote on
	// (a tombstone included), sorted.
	ratedBy(ctx context.Context, user string, partition int) ([]int64, error)
	// load fills st with every stored row the events can touch.
	load(ctx context.Context, st *fold.State, events []rating.Event) error
	// write stores what st marks as changed, the rescore marks and the
	// partition's new position.
	write(ctx context.Context, st *fold.State, partition int, to position) error
}

// applyBatch is the windower's unit of work, the same on every store:
//  1. fence: the stored position must be the one the batch follows;
//  2. expand erasures into one event per post, and load what the events
//     can touch;
//  3. fold the events, one user one vote, counting late ones;
//  4. write the changed rows together with the new position.
func applyBatch(ctx context.Context, t txn, b batch, p scoring.Params, grace time.Duration) (result, error) {
	cur, err := t.lockPosition(ctx, b.partition)
	if err != nil {
		return result{}, err
	}
	if cur.Exists != b.expected.Exists || cur.Next != b.expected.Next {
		return result{}, errFenced
	}
	if b.events, err = expandErasures(ctx, t, b.events, b.partition); err != nil {
		return result{}, err
	}
	var erased map[string]time.Time
	var dropped int
	b.events, erased, dropped = screen(b.events, cur)
	st := fold.NewState(p, len(b.events))
	if err := t.load(ctx, st, b.events); err != nil {
		return result{}, err
	}
	res := foldBatch(st, b, cur, p, grace)
	res.position.Erased = erased
	res.superseded += dropped
	if err := t.write(ctx, st, b.partition, res.position); err != nil {
		return result{}, err
	}
	return res, nil
}

// expandErasures follows each erasure with one event per post of the
// partition the user has a vote on: those stored before the batch (read
// under the batch's lock, so replay finds the same) and those the batch
// rated before it. Posts of other partitions are erased by the erasure
// written to their own partition. The erasure itself stays (PostID 0) for
// screen.
func expandErasures(ctx context.Context, t txn, events []rating.Event, partition int) ([]rating.Event, error) {
	first := slices.IndexFunc(events, func(e rating.Event) bool { return e.Erase })
	if first < 0 {
		return events, nil
	}
	out := slices.Clone(events[:first])
	for i := first; i < len(events); i++ {
		e := events[i]
		if !e.Erase {
			out = append(out, e)
			continue
		}
		posts, err := t.ratedBy(ctx, e.UserID, partition)
		if err != nil {
			return nil, fmt.Errorf("posts rated by an erased user: %w", err)
		}
		for _, x := range events[:i] {
			if x.UserID == e.UserID && !x.Erase {
				posts = append(posts, x.PostID)
			}
		}
		slices.Sort(posts)
		out = append(out, e)
		out = append(out, fold.Erasure(e, slices.Compact(posts))...)
	}
	return out, nil
}

// screen returns the events the fold applies, and the pseudonyms erased
// in the partition after them. An erasure (PostID 0) goes, and its
// pseudonym is remembered with its time; for pseudonym.ErasedFor of event
// time after it every later event of the pseudonym is dropped (dropped
// counts them): only a rating that read the pseudonym before its mapping
// went can carry it, and it must not outlive the erasure. An erasure's
// per-post events stay. Which events are dropped depends only on the
// partition's log, never on where batches begin: the event time that
// ends an erasure's memory is the running newest one, as in foldBatch.
func screen(events []rating.Event, cur position) ([]rating.Event, map[string]time.Time, int) {
	erased, own := cur.Erased, false
	change := func() {
		if !own {
			erased, own = maps.Clone(erased), true
			if erased == nil {
				erased = map[string]time.Time{}
			}
		}
	}
	maxEvent := cur.MaxEventTime
	out := make([]rating.Event, 0, len(events))
	dropped := 0
	for _, e := range events {
		switch at, gone := erased[e.UserID]; {
		case e.Erase && e.PostID == 0:
			change()
			if t := fold.Truncate(e.RatedAt); t.After(at) {
				erased[e.UserID] = t
			}
		case e.Erase:
			out = append(out, e)
		case gone && !maxEvent.After(at.Add(pseudonym.ErasedFor)):
			dropped++
		default:
			out = append(out, e)
			if t := fold.Truncate(e.RatedAt); t.After(maxEvent) {
				maxEvent = t
			}
		}
	}
	for u, at := range erased {
		if maxEvent.After(at.Add(pseudonym.ErasedFor)) {
			change()
			delete(erased, u)
		}
	}
	return out, erased, dropped
}

// foldBatch applies the events to st and says where the partition stands after
// them. An event is late when its window had closed by the watermark (the
// newest event time before it, less the grace), taken event by event so
// that the count does not depend on batch sizes; it is counted all the
// same, and its window remembers it.
func foldBatch(st *fold.State, b batch, cur position, p scoring.Params, grace time.Duration) result {
	var res result
	maxEvent := cur.MaxEventTime
	for _, e := range b.events {
		if e.Erase { // no activity, no event time: a request, not a rating
			if st.Apply(e, b.partition) == fold.Erased {
				res.applied++
			}
			continue
		}
		late := !maxEvent.IsZero() && !p.WindowStart(e.RatedAt).Add(p.Window).After(maxEvent.Add(-grace))
		switch out := st.Apply(e, b.partition); out {
		case fold.Superseded:
			res.superseded++
		default:
			res.applied++
			if late && out != fold.NothingToRetract { // which touched no window
				res.late++
				st.MarkLate(e)
			}
		}
		if at := fold.Truncate(e.RatedAt); at.After(maxEvent) {
			maxEvent = at
		}
	}
	res.posts = len(st.DirtyPosts)
	res.position = position{Exists: true, Next: b.next, MaxEventTime: maxEvent, Foreign: cur.Foreign, Last: b.last, Others: cur.Others}
	return res
}
