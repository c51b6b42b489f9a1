package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
)

// pgStore keeps the windower's state in PostgreSQL, through pkg/tally:
// ratings, rating_averages, post_stats, rescore_queue and
// consumer_offsets.
type pgStore struct {
	pool   *pgxpool.Pool
	key    tally.Key
	params scoring.Params
	grace  time.Duration // watermark = max event time seen - grace
	cache  *rowCache     // nil: every batch reads every row it touches
}

func (s *pgStore) position(ctx context.Context, partition int) (position, error) {
	return tally.ReadPosition(ctx, s.pool, s.key, partition, false)
}

// apply runs applyBatch in one transaction and notifies the scorer. The
// rows it committed are kept for the partition's next batch; a batch that
// fails, or whose commit may or may not have happened, empties them.
func (s *pgStore) apply(ctx context.Context, b batch) (result, error) {
	rows := s.cache.partition(b.partition)
	defer s.cache.release(rows)
	t := &pgTxn{s: s, rows: rows}
	var res result
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		t.tx = tx
		var err error
		res, err = applyBatch(ctx, t, b, s.params, s.grace)
		return err
	})
	if err != nil {
		s.cache.drop(rows)
		if tally.PostRaced(err) {
			// Another partition's batch stored a post this one found
			// new: run it again, to read that post and add to it.
			return res, fmt.Errorf("%w: %v", errPostRaced, err)
		}
		return res, err
	}
	s.cache.keep(rows, t.st, b.partition, res.position, s.params, s.grace)
	return res, nil
}

func (s *pgStore) forget(partition int) { s.cache.forget(partition) }

func (s *pgStore) register(ctx context.Context, partition int, first int64) error {
	return tally.Register(ctx, s.pool, s.key, map[int]int64{partition: first})
}

// offsets reads the stored next offset of every partition.
func (s *pgStore) offsets(ctx context.Context) (map[int]int64, error) {
	return tally.Offsets(ctx, s.pool, s.key)
}

// pgTxn is one batch's transaction.
type pgTxn struct {
	s  *pgStore
	tx pgx.Tx
	// fresh holds the (post, user) pairs that load inserted, with the
	// event each holds: write need not write them again.
	fresh map[fold.VoteKey]uuid.UUID
	rows  *partRows // the partition's cached rows, valid when they hold cur
	// trackers and reviewed are the stored trackers of the posts and the
	// stored review flags of the windows that load read: a row that
	// changed nothing else is written as its totals or counts alone.
	trackers map[int64]scoring.Tracker
	reviewed map[fold.WindowKey]bool
	cur      position    // the stored position, locked
	st       *fold.State // what write wrote, to keep once committed
}

func (t *pgTxn) lockPosition(ctx context.Context, partition int) (position, error) {
	cur, err := tally.ReadPosition(ctx, t.tx, t.s.key, partition, true)
	t.cur = cur
	return cur, err
}

func (t *pgTxn) ratedBy(ctx context.Context, user string, partition int) ([]int64, error) {
	return tally.PostsRatedBy(ctx, t.tx, user, partition)
}

// load fills st with what the events can touch. New (post, user) pairs
// are written straight away with the newest of their events in the batch,
// with ON CONFLICT DO NOTHING: the insert is the existence check, and only
// the pairs that already had a rating are read back. The posts come
// before the windows, which include each post's tracked ones.
func (t *pgTxn) load(ctx context.Context, st *fold.State, events []rating.Event) error {
	if !t.rows.holds(t.cur) {
		t.s.cache.drop(t.rows)
	}
	newest := make(map[fold.VoteKey]rating.Event, len(events))
	winKeys := map[fold.WindowKey]struct{}{}
	upTo := map[int64]time.Time{} // the newest window each post's events reach
	var erasing []fold.VoteKey
	for _, e := range events {
		vk, wk := st.Needs(e)
		if e.Erase {
			// An erasure reads the vote and its post; it inserts nothing
			// and has no window of its own.
			erasing = append(erasing, vk)
			if _, ok := upTo[e.PostID]; !ok {
				upTo[e.PostID] = time.Time{}
			}
			continue
		}
		if cur, ok := newest[vk]; !ok || rating.Newer(fold.Truncate(e.RatedAt), e.EventID, fold.Truncate(cur.RatedAt), cur.EventID) {
			newest[vk] = e
		}
		winKeys[wk] = struct{}{}
		if wk.Start.After(upTo[e.PostID]) {
			upTo[e.PostID] = wk.Start
		}
	}
	if err := t.insertNew(ctx, newest); err != nil {
		return err
	}
	if err := t.loadVotes(ctx, st, newest, erasing, winKeys); err != nil {
		return err
	}
	if err := t.loadPosts(ctx, st, upTo); err != nil {
		return err
	}
	for id, p := range st.Posts {
		for _, k := range fold.Tracked(id, p, upTo[id], t.s.params) {
			winKeys[k] = struct{}{}
		}
	}
	return t.loadWindows(ctx, st, winKeys)
}

// insertNew inserts the newest event of each pair, in index order (the
// inserts then walk the primary key's pages in sequence instead of
// jumping between them), and records in fresh the pairs that were new.
func (t *pgTxn) insertNew(ctx context.Context, newest map[fold.VoteKey]rating.Event) error {
	keys := make([]fold.VoteKey, 0, len(newest))
	for k := range newest {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b fold.VoteKey) int {
		if c := cmp.Compare(a.PostID, b.PostID); c != 0 {
			return c
		}
		return strings.Compare(a.UserID, b.UserID)
	})
	var r tally.VoteRows
	for _, k := range keys {
		e := newest[k]
		at := fold.Truncate(e.RatedAt)
		r.Add(k, fold.Vote{Score: e.Score, RatedAt: at, EventID: e.EventID, Window: t.s.params.WindowStart(at), Retracted: e.Retract})
	}
	t.fresh = make(map[fold.VoteKey]uuid.UUID, len(newest))
	return tally.InsertNewVotes(ctx, t.tx, &r, func(k fold.VoteKey) { t.fresh[k] = newest[k].EventID })
}

// loadVotes reads the stored votes of the pairs that were not new and of
// the pairs to erase that no rating of the batch touches, and adds the
// windows holding them to winKeys.
func (t *pgTxn) loadVotes(ctx context.Context, st *fold.State, newest map[fold.VoteKey]rating.Event, erasing []fold.VoteKey, winKeys map[fold.WindowKey]struct{}) error {
	var keys []fold.VoteKey
	for k := range newest {
		if _, ok := t.fresh[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range erasing {
		if _, ok := newest[k]; !ok {
			keys = append(keys, k)
		}
	}
	return tally.LoadVotes(ctx, t.tx, keys, func(k fold.VoteKey, v fold.Vote) {
		st.Votes[k] = v
		winKeys[fold.WindowKey{PostID: k.PostID, Start: v.Window}] = struct{}{}
	})
}

// loadWindows takes the windows it holds from the cache and reads the
// others.
func (t *pgTxn) loadWindows(ctx context.Context, st *fold.State, winKeys map[fold.WindowKey]struct{}) error {
	var keys []fold.WindowKey
	t.reviewed = make(map[fold.WindowKey]bool, len(winKeys))
	for k := range winKeys {
		if w, ok := t.rows.windows[k]; ok {
			st.Windows[k], t.reviewed[k] = w, w.Ref.Reviewed
			continue
		}
		keys = append(keys, k)
	}
	t.s.cache.count(len(winKeys)-len(keys), len(keys))
	return tally.LoadWindows(ctx, t.tx, keys, func(k fold.WindowKey, w scoring.Window) {
		st.Windows[k], t.reviewed[k] = w, w.Ref.Reviewed
	})
}

// loadPosts takes the posts it holds from the cache and reads the others.
func (t *pgTxn) loadPosts(ctx context.Context, st *fold.State, postIDs map[int64]time.Time) error {
	ids := make([]int64, 0, len(postIDs))
	t.trackers = make(map[int64]scoring.Tracker, len(postIDs))
	for id := range postIDs {
		if x, ok := t.rows.posts[id]; ok {
			t.trackers[id] = x.Tracker
			x.Tracker.Pending = slices.Clone(x.Tracker.Pending) // the fold changes its own copy
			st.Posts[id] = &x
			continue
		}
		ids = append(ids, id)
	}
	t.s.cache.count(len(postIDs)-len(ids), len(ids))
	// Locked: a batch of another partition writing one of these posts
	// (events a producer put on the wrong partition) waits for ours.
	return tally.LockPosts(ctx, t.tx, ids, func(id int64, p *fold.Post) {
		k := p.Tracker
		k.Pending = slices.Clone(k.Pending)
		st.Posts[id], t.trackers[id] = p, k
	})
}

// write sends every changed row and the new position in one round trip.
func (t *pgTxn) write(ctx context.Context, st *fold.State, partition int, to position) error {
	t.st = st
	b := &pgx.Batch{}
	var votes tally.VoteRows
	var gone []fold.VoteKey
	for k := range st.DirtyVotes {
		v, ok := st.Votes[k]
		if !ok {
			gone = append(gone, k) // erased
			continue
		}
		if id, ok := t.fresh[k]; ok && id == v.EventID && !v.Rerate {
			continue // inserted by load with exactly this vote
		}
		votes.Add(k, v)
	}
	tally.QueueVotes(b, &votes)
	tally.QueueDeleteVotes(b, gone)
	var windows tally.WindowRows
	for k := range st.DirtyWindows {
		w := st.Windows[k]
		if reviewed, ok := t.reviewed[k]; ok && reviewed == w.Ref.Reviewed {
			windows.AddCounts(k, w)
		} else {
			windows.Add(k, w)
		}
	}
	tally.QueueWindows(b, &windows)
	var posts tally.PostRows
	var homes []int32
	for id := range st.DirtyPosts {
		x := st.Posts[id]
		switch k, stored := t.trackers[id]; {
		case !stored:
			posts.AddNew(id, x)
		case k.Same(&x.Tracker):
			posts.AddTotals(id, x)
		default:
			posts.Add(id, x)
		}
		if x.Partition != partition && !slices.Contains(homes, int32(x.Partition)) {
			homes = append(homes, int32(x.Partition))
		}
	}
	if len(homes) > 0 {
		// Posts of other partitions, from events a producer put here: the
		// instances holding those partitions must read them again.
		tally.QueueForeignWrites(b, t.s.key, homes)
	}
	tally.QueuePosts(b, &posts, partition)
	tally.QueuePosition(b, t.s.key, partition, to, t.s.grace)
	if err := t.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write batch of partition %d: %w", partition, err)
	}
	return nil
}
