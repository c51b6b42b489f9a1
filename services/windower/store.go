package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
)

// pgStore keeps the windower's state in PostgreSQL: ratings,
// rating_averages, post_stats, rescore_queue and consumer_offsets.
type pgStore struct {
	pool     *pgxpool.Pool
	consumer string
	topic    string
	params   scoring.Params
	grace    time.Duration // watermark = max event time seen - grace
	cache    *rowCache     // nil: every batch reads every row it touches
}

// querier is what a pool and a transaction share.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *pgStore) position(ctx context.Context, partition int) (position, error) {
	return s.readPosition(ctx, s.pool, partition, "")
}

func (s *pgStore) readPosition(ctx context.Context, q querier, partition int, lock string) (position, error) {
	var p position
	var met *time.Time
	err := q.QueryRow(ctx, `SELECT next_offset, max_event_time, foreign_writes FROM consumer_offsets
		WHERE consumer = $1 AND topic = $2 AND partition = $3 `+lock, s.consumer, s.topic, partition).Scan(&p.next, &met, &p.foreign)
	if errors.Is(err, pgx.ErrNoRows) {
		return position{}, nil
	}
	if err != nil {
		return position{}, fmt.Errorf("read offset of partition %d: %w", partition, err)
	}
	p.exists = true
	if met != nil {
		p.maxEventTime = met.UTC()
	}
	return p, nil
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
		return res, err
	}
	s.cache.keep(rows, t.st, b.partition, res.position, s.params, s.grace)
	return res, nil
}

func (s *pgStore) forget(partition int) { s.cache.forget(partition) }

// offsets reads the stored next offset of every partition.
func (s *pgStore) offsets(ctx context.Context) (map[int]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT partition, next_offset FROM consumer_offsets WHERE consumer = $1 AND topic = $2`, s.consumer, s.topic)
	if err != nil {
		return nil, fmt.Errorf("read stored offsets: %w", err)
	}
	out := map[int]int64{}
	for rows.Next() {
		var p int
		var next int64
		if err := rows.Scan(&p, &next); err != nil {
			rows.Close()
			return nil, err
		}
		out[p] = next
	}
	return out, rows.Err()
}

// pgTxn is one batch's transaction.
type pgTxn struct {
	s  *pgStore
	tx pgx.Tx
	// fresh holds the (post, user) pairs that load inserted, with the
	// event each holds: write need not write them again.
	fresh map[fold.VoteKey]uuid.UUID
	rows  *partRows   // the partition's cached rows, valid when they hold cur
	cur   position    // the stored position, locked
	st    *fold.State // what write wrote, to keep once committed
}

func (t *pgTxn) lockPosition(ctx context.Context, partition int) (position, error) {
	cur, err := t.s.readPosition(ctx, t.tx, partition, "FOR UPDATE")
	t.cur = cur
	return cur, err
}

// load fills st with what the events can touch. New (post, user) pairs
// are written straight away with the newest of their events in the batch,
// with ON CONFLICT DO NOTHING: the insert is the existence check, and only
// the pairs that already had a rating are read back. Lookups go through
// LATERAL subqueries so that each key is an index probe whatever the
// planner believes about the tables' sizes (statistics lag behind a table
// that grows by thousands of rows a second).
func (t *pgTxn) load(ctx context.Context, st *fold.State, events []rating.Event) error {
	if !t.rows.holds(t.cur) {
		t.s.cache.drop(t.rows)
	}
	newest := make(map[fold.VoteKey]rating.Event, len(events))
	winKeys := map[fold.WindowKey]struct{}{}
	postIDs := map[int64]struct{}{}
	for _, e := range events {
		vk, wk := st.Needs(e)
		if cur, ok := newest[vk]; !ok || rating.Newer(fold.Truncate(e.RatedAt), e.EventID, fold.Truncate(cur.RatedAt), cur.EventID) {
			newest[vk] = e
		}
		winKeys[wk] = struct{}{}
		postIDs[e.PostID] = struct{}{}
	}
	if err := t.insertNew(ctx, newest); err != nil {
		return err
	}
	if err := t.loadVotes(ctx, st, newest, winKeys); err != nil {
		return err
	}
	if err := t.loadWindows(ctx, st, winKeys); err != nil {
		return err
	}
	return t.loadPosts(ctx, st, postIDs)
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
	var r ratingRows
	for _, k := range keys {
		e := newest[k]
		at := fold.Truncate(e.RatedAt)
		r.add(k, fold.Vote{Score: e.Score, RatedAt: at, EventID: e.EventID, Window: t.s.params.WindowStart(at)})
	}
	rows, err := t.tx.Query(ctx, `
		INSERT INTO ratings (post_id, user_id, score, rated_at, event_id, window_start, rerate)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::timestamptz[], $5::uuid[], $6::timestamptz[], $7::bool[])
		ON CONFLICT (post_id, user_id) DO NOTHING
		RETURNING post_id, user_id`, r.args()...)
	if err != nil {
		return fmt.Errorf("insert new ratings: %w", err)
	}
	defer rows.Close()
	t.fresh = make(map[fold.VoteKey]uuid.UUID, len(newest))
	for rows.Next() {
		var k fold.VoteKey
		if err := rows.Scan(&k.PostID, &k.UserID); err != nil {
			return err
		}
		t.fresh[k] = newest[k].EventID
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("insert new ratings: %w", err)
	}
	return nil
}

// loadVotes reads the stored votes of the pairs that were not new, and
// adds the windows holding them to winKeys.
func (t *pgTxn) loadVotes(ctx context.Context, st *fold.State, newest map[fold.VoteKey]rating.Event, winKeys map[fold.WindowKey]struct{}) error {
	var posts []int64
	var users []string
	for k := range newest {
		if _, ok := t.fresh[k]; !ok {
			posts, users = append(posts, k.PostID), append(users, k.UserID)
		}
	}
	if len(posts) == 0 {
		return nil
	}
	rows, err := t.tx.Query(ctx, `
		SELECT r.post_id, r.user_id, r.score, r.rated_at, r.event_id, r.window_start, r.rerate
		FROM unnest($1::bigint[], $2::text[]) AS k(post_id, user_id)
		CROSS JOIN LATERAL (
		  SELECT * FROM ratings r WHERE r.post_id = k.post_id AND r.user_id = k.user_id) r`, posts, users)
	if err != nil {
		return fmt.Errorf("load ratings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k fold.VoteKey
		var v fold.Vote
		var score int16
		var id [16]byte
		if err := rows.Scan(&k.PostID, &k.UserID, &score, &v.RatedAt, &id, &v.Window, &v.Rerate); err != nil {
			return err
		}
		v.Score, v.RatedAt, v.EventID, v.Window = int(score), v.RatedAt.UTC(), uuid.UUID(id), v.Window.UTC()
		st.Votes[k] = v
		winKeys[fold.WindowKey{PostID: k.PostID, Start: v.Window}] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load ratings: %w", err)
	}
	return nil
}

// loadWindows takes the windows it holds from the cache and reads the
// others.
func (t *pgTxn) loadWindows(ctx context.Context, st *fold.State, winKeys map[fold.WindowKey]struct{}) error {
	var posts []int64
	var starts []time.Time
	for k := range winKeys {
		if w, ok := t.rows.windows[k]; ok {
			st.Windows[k] = w
			continue
		}
		posts, starts = append(posts, k.PostID), append(starts, k.Start)
	}
	t.s.cache.count(len(winKeys)-len(posts), len(posts))
	if len(posts) == 0 {
		return nil
	}
	rows, err := t.tx.Query(ctx, `
		SELECT a.post_id, a.window_start, a.rating_sum, a.rating_count, a.rerate_count, a.threshold, a.late_count
		FROM unnest($1::bigint[], $2::timestamptz[]) AS k(post_id, window_start)
		CROSS JOIN LATERAL (
		  SELECT * FROM rating_averages a WHERE a.post_id = k.post_id AND a.window_start = k.window_start) a`, posts, starts)
	if err != nil {
		return fmt.Errorf("load windows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k fold.WindowKey
		var w scoring.Window
		if err := rows.Scan(&k.PostID, &k.Start, &w.Sum, &w.Count, &w.Rerates, &w.Threshold, &w.Late); err != nil {
			return err
		}
		k.Start = k.Start.UTC()
		w.Start = k.Start
		st.Windows[k] = w
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load windows: %w", err)
	}
	return nil
}

// loadPosts takes the posts it holds from the cache and reads the others.
func (t *pgTxn) loadPosts(ctx context.Context, st *fold.State, postIDs map[int64]struct{}) error {
	ids := make([]int64, 0, len(postIDs))
	for id := range postIDs {
		if x, ok := t.rows.posts[id]; ok {
			st.Posts[id] = &x
			continue
		}
		ids = append(ids, id)
	}
	t.s.cache.count(len(postIDs)-len(ids), len(ids))
	if len(ids) == 0 {
		return nil
	}
	rows, err := t.tx.Query(ctx, `
		SELECT post_id, partition, rating_sum, rating_count, weighted_sum, weight,
		       baseline, baseline_seen, current_window, current_count, current_threshold
		FROM post_stats WHERE post_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("load post stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		p := &fold.Post{}
		if err := rows.Scan(&id, &p.Partition, &p.Totals.Sum, &p.Totals.Count, &p.Totals.WeightedSum, &p.Totals.Weight,
			&p.Volume.Baseline, &p.Volume.Seen, &p.Volume.Current, &p.Volume.CurrentCount, &p.Volume.CurrentThreshold); err != nil {
			return err
		}
		p.Volume.Current = p.Volume.Current.UTC()
		st.Posts[id] = p
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load post stats: %w", err)
	}
	return nil
}

// write sends every changed row and the new position in one round trip.
func (t *pgTxn) write(ctx context.Context, st *fold.State, partition int, to position) error {
	t.st = st
	pb := &pgx.Batch{}

	var r ratingRows
	for k := range st.DirtyVotes {
		v := st.Votes[k]
		if id, ok := t.fresh[k]; ok && id == v.EventID && !v.Rerate {
			continue // inserted by load with exactly this vote
		}
		r.add(k, v)
	}
	if len(r.post) > 0 {
		pb.Queue(`
			INSERT INTO ratings (post_id, user_id, score, rated_at, event_id, window_start, rerate)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::timestamptz[], $5::uuid[], $6::timestamptz[], $7::bool[])
			ON CONFLICT (post_id, user_id) DO UPDATE SET
			  score = excluded.score, rated_at = excluded.rated_at,
			  event_id = excluded.event_id, window_start = excluded.window_start, rerate = excluded.rerate`, r.args()...)
	}

	var w windowRows
	for k := range st.DirtyWindows {
		w.add(k, st.Windows[k])
	}
	if len(w.post) > 0 {
		pb.Queue(`
			INSERT INTO rating_averages (post_id, window_start, rating_sum, rating_count, rerate_count, threshold, late_count)
			SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::bigint[], $5::bigint[], $6::float8[], $7::bigint[])
			ON CONFLICT (post_id, window_start) DO UPDATE SET
			  rating_sum = excluded.rating_sum, rating_count = excluded.rating_count,
			  rerate_count = excluded.rerate_count, late_count = excluded.late_count`, w.args()...)
	}

	var p postRows
	var homes []int32
	for id := range st.DirtyPosts {
		x := st.Posts[id]
		p.add(id, x)
		if x.Partition != partition && !slices.Contains(homes, int32(x.Partition)) {
			homes = append(homes, int32(x.Partition))
		}
	}
	if len(homes) > 0 {
		// Posts of other partitions, from events a producer put here: the
		// instances holding those partitions must read them again.
		pb.Queue(`UPDATE consumer_offsets SET foreign_writes = foreign_writes + 1
			WHERE consumer = $1 AND topic = $2 AND partition = ANY($3)`, t.s.consumer, t.s.topic, homes)
	}
	if len(p.post) > 0 {
		pb.Queue(`
			INSERT INTO post_stats (post_id, partition, rating_sum, rating_count, weighted_sum, weight,
			                        baseline, baseline_seen, current_window, current_count, current_threshold)
			SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
			                     $7::float8[], $8::float8[], $9::timestamptz[], $10::bigint[], $11::float8[])
			ON CONFLICT (post_id) DO UPDATE SET
			  rating_sum = excluded.rating_sum, rating_count = excluded.rating_count,
			  weighted_sum = excluded.weighted_sum, weight = excluded.weight,
			  baseline = excluded.baseline, baseline_seen = excluded.baseline_seen,
			  current_window = excluded.current_window,
			  current_count = excluded.current_count, current_threshold = excluded.current_threshold`, p.args()...)
		pb.Queue(`
			INSERT INTO rescore_queue (post_id, partition)
			SELECT * FROM unnest($1::bigint[], $2::int[])
			ON CONFLICT (post_id) DO NOTHING`, p.post, p.partition)
		pb.Queue(`SELECT pg_notify($1, $2)`, contract.ChannelRescore, fmt.Sprint(partition))
	}

	var met, wm any
	if !to.maxEventTime.IsZero() {
		met, wm = to.maxEventTime, to.maxEventTime.Add(-t.s.grace)
	}
	pb.Queue(`
		INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, max_event_time, watermark, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, now())
		ON CONFLICT (consumer, topic, partition) DO UPDATE SET
		  next_offset = excluded.next_offset, max_event_time = excluded.max_event_time,
		  watermark = excluded.watermark, updated_at = now()`,
		t.s.consumer, t.s.topic, partition, to.next, met, wm)
	if err := t.tx.SendBatch(ctx, pb).Close(); err != nil {
		return fmt.Errorf("write batch of partition %d: %w", partition, err)
	}
	return nil
}

// ratingRows are ratings as columns, for unnest.
type ratingRows struct {
	post    []int64
	user    []string
	score   []int16
	ratedAt []time.Time
	eventID [][16]byte // not uuid.UUID: pgx would encode each through driver.Valuer
	window  []time.Time
	rerate  []bool
}

func (r *ratingRows) add(k fold.VoteKey, v fold.Vote) {
	r.post, r.user, r.score = append(r.post, k.PostID), append(r.user, k.UserID), append(r.score, int16(v.Score))
	r.ratedAt, r.eventID, r.window = append(r.ratedAt, v.RatedAt), append(r.eventID, [16]byte(v.EventID)), append(r.window, v.Window)
	r.rerate = append(r.rerate, v.Rerate)
}

func (r *ratingRows) args() []any {
	return []any{r.post, r.user, r.score, r.ratedAt, r.eventID, r.window, r.rerate}
}

// windowRows are rating_averages rows as columns.
type windowRows struct {
	post       []int64
	start      []time.Time
	sum, count []int64
	rerates    []int64
	threshold  []float64
	late       []int64
}

func (w *windowRows) add(k fold.WindowKey, x scoring.Window) {
	w.post, w.start = append(w.post, k.PostID), append(w.start, k.Start)
	w.sum, w.count, w.threshold = append(w.sum, x.Sum), append(w.count, x.Count), append(w.threshold, x.Threshold)
	w.rerates, w.late = append(w.rerates, x.Rerates), append(w.late, x.Late)
}

func (w *windowRows) args() []any {
	return []any{w.post, w.start, w.sum, w.count, w.rerates, w.threshold, w.late}
}

// postRows are post_stats rows as columns.
type postRows struct {
	post                            []int64
	partition                       []int32
	sum, count, weightedSum, weight []int64
	baseline, seen                  []float64
	current                         []time.Time
	currentCount                    []int64
	currentThreshold                []float64
}

func (p *postRows) add(id int64, x *fold.Post) {
	p.post, p.partition = append(p.post, id), append(p.partition, int32(x.Partition))
	p.sum, p.count = append(p.sum, x.Totals.Sum), append(p.count, x.Totals.Count)
	p.weightedSum, p.weight = append(p.weightedSum, x.Totals.WeightedSum), append(p.weight, x.Totals.Weight)
	p.baseline, p.seen = append(p.baseline, x.Volume.Baseline), append(p.seen, x.Volume.Seen)
	p.current, p.currentCount = append(p.current, x.Volume.Current), append(p.currentCount, x.Volume.CurrentCount)
	p.currentThreshold = append(p.currentThreshold, x.Volume.CurrentThreshold)
}

func (p *postRows) args() []any {
	return []any{p.post, p.partition, p.sum, p.count, p.weightedSum, p.weight,
		p.baseline, p.seen, p.current, p.currentCount, p.currentThreshold}
}
