package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
)

// memStore keeps the windower's state in memory, with PostgreSQL's
// all-or-nothing transactions, so that the processor loop (batching, the
// fold, fencing, retries and isolation) is tested without a database.
type memStore struct {
	mu      sync.Mutex
	params  scoring.Params
	grace   time.Duration
	votes   map[fold.VoteKey]fold.Vote
	windows map[fold.WindowKey]scoring.Window
	posts   map[int64]fold.Post
	pos     map[int]position

	// failVote, when set, refuses a transaction that writes a vote, as
	// a constraint or a trigger would.
	failVote func(fold.VoteKey) error
	// failTxn, when set, refuses whole transactions (an outage).
	failTxn func() error
}

func newMemStore(p scoring.Params, grace time.Duration) *memStore {
	return &memStore{params: p, grace: grace, votes: map[fold.VoteKey]fold.Vote{},
		windows: map[fold.WindowKey]scoring.Window{}, posts: map[int64]fold.Post{}, pos: map[int]position{}}
}

func (m *memStore) position(_ context.Context, partition int) (position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pos[partition], nil
}

func (m *memStore) apply(ctx context.Context, b batch) (result, error) {
	m.mu.Lock() // the transaction: one at a time
	defer m.mu.Unlock()
	if m.failTxn != nil {
		if err := m.failTxn(); err != nil {
			return result{}, err
		}
	}
	return applyBatch(ctx, &memTxn{m}, b, m.params, m.grace)
}

func (m *memStore) offsets(context.Context) (map[int]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int]int64{}
	for p, x := range m.pos {
		out[p] = x.Next
	}
	return out, nil
}

// memTxn reads from the store and changes it only in write, the last
// step: a failure before it leaves the store as it was.
type memTxn struct{ m *memStore }

func (t *memTxn) lockPosition(_ context.Context, partition int) (position, error) {
	return t.m.pos[partition], nil
}

func (t *memTxn) ratedBy(_ context.Context, user string, partition int) ([]int64, error) {
	var ids []int64
	for k := range t.m.votes {
		if k.UserID == user && t.m.posts[k.PostID].Partition == partition {
			ids = append(ids, k.PostID)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (t *memTxn) load(_ context.Context, st *fold.State, events []rating.Event) error {
	upTo := map[int64]time.Time{}
	for _, e := range events {
		if _, wk := st.Needs(e); !e.Erase && wk.Start.After(upTo[e.PostID]) {
			upTo[e.PostID] = wk.Start
		}
	}
	for _, e := range events {
		vk, wk := st.Needs(e)
		keys := []fold.WindowKey{wk}
		if v, ok := t.m.votes[vk]; ok {
			st.Votes[vk] = v
			keys = append(keys, fold.WindowKey{PostID: vk.PostID, Start: v.Window})
		}
		if p, ok := t.m.posts[e.PostID]; ok && st.Posts[e.PostID] == nil {
			p.Tracker.Pending = slices.Clone(p.Tracker.Pending)
			st.Posts[e.PostID] = &p
		}
		if p := st.Posts[e.PostID]; p != nil {
			keys = append(keys, fold.Tracked(e.PostID, p, upTo[e.PostID], t.m.params)...)
		}
		for _, k := range keys {
			if w, ok := t.m.windows[k]; ok {
				st.Windows[k] = w
			}
		}
	}
	return nil
}

func (t *memTxn) write(_ context.Context, st *fold.State, partition int, to position) error {
	if t.m.failVote != nil {
		for k := range st.DirtyVotes {
			if err := t.m.failVote(k); err != nil {
				return err
			}
		}
	}
	for k := range st.DirtyVotes {
		if v, ok := st.Votes[k]; ok {
			t.m.votes[k] = v
		} else {
			delete(t.m.votes, k)
		}
	}
	for k := range st.DirtyWindows {
		t.m.windows[k] = st.Windows[k]
	}
	for id := range st.DirtyPosts {
		t.m.posts[id] = *st.Posts[id]
	}
	t.m.pos[partition] = to
	return nil
}

// snapshot is the store's state, for comparing two runs.
func (m *memStore) snapshot() (map[fold.VoteKey]fold.Vote, map[fold.WindowKey]scoring.Window, map[int64]fold.Post) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.votes), maps.Clone(m.windows), maps.Clone(m.posts)
}

// memLog is one partition's messages; a reader at its end waits.
type memReader struct {
	log []kafka.Message
	i   int
}

func (r *memReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	if r.i < len(r.log) {
		r.i++
		return r.log[r.i-1], nil
	}
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}

func (r *memReader) Close() error { return nil }

// memDLQ collects dead letters.
type memDLQ struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func (d *memDLQ) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.msgs = append(d.msgs, msgs...)
	return nil
}

func (d *memDLQ) all() []kafka.Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]kafka.Message(nil), d.msgs...)
}

// partitioned lays events out as the topic would, by murmur2 of the post.
func partitioned(evs []rating.Event, extra map[int][]kafka.Message, partitions int) map[int][]kafka.Message {
	logs := map[int][]kafka.Message{}
	for _, e := range evs {
		v, err := e.Marshal()
		if err != nil {
			panic(err)
		}
		p := partitionOf(e.PostID, partitions)
		logs[p] = append(logs[p], kafka.Message{Topic: "ratings.v1", Partition: p, Offset: int64(len(logs[p])), Key: e.Key(), Value: v})
	}
	for p, ms := range extra {
		for _, m := range ms {
			m.Topic, m.Partition, m.Offset = "ratings.v1", p, int64(len(logs[p]))
			logs[p] = append(logs[p], m)
		}
	}
	return logs
}

// checkDefinition compares a memStore with a direct computation.
func checkDefinition(m *memStore, evs []rating.Event) error {
	latest := map[fold.VoteKey]rating.Event{}
	for _, e := range evs {
		k := fold.VoteKey{PostID: e.PostID, UserID: e.UserID}
		if old, ok := latest[k]; !ok || rating.Newer(fold.Truncate(e.RatedAt), e.EventID, fold.Truncate(old.RatedAt), old.EventID) {
			latest[k] = e
		}
	}
	votes, windows, posts := m.snapshot()
	if len(votes) != len(latest) {
		return fmt.Errorf("%d votes, want %d", len(votes), len(latest))
	}
	sums := map[fold.WindowKey][2]int64{}
	raters := map[int64]int64{}
	for k, e := range latest {
		if v := votes[k]; v.EventID != e.EventID || v.Score != e.Score {
			return fmt.Errorf("vote %v is %+v, want event %s score %d", k, v, e.EventID, e.Score)
		}
		wk := fold.WindowKey{PostID: k.PostID, Start: m.params.WindowStart(fold.Truncate(e.RatedAt))}
		sums[wk] = [2]int64{sums[wk][0] + int64(e.Score), sums[wk][1] + 1}
		raters[k.PostID]++
	}
	for k, w := range windows {
		if w.Count != sums[k][1] || w.Sum != sums[k][0] {
			return fmt.Errorf("window %v holds %d/%d, want %d/%d", k, w.Sum, w.Count, sums[k][0], sums[k][1])
		}
	}
	for id, n := range raters {
		if posts[id].Totals.Count != n {
			return fmt.Errorf("post %d counts %d raters, want %d", id, posts[id].Totals.Count, n)
		}
	}
	return nil
}

func (m *memStore) forget(int) {}

func (m *memStore) register(context.Context, int, int64) error { return nil }
