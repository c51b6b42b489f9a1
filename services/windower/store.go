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
	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/window"
)

// errFenced means another instance advanced this partition since we read
// its offset: our batch is stale and must not be written.
var errFenced = errors.New("partition offset moved under us")

// store is the windower's PostgreSQL side: it loads the state a batch
// touches, and writes the batch's effect together with the offset.
type store struct {
	pool     *pgxpool.Pool
	consumer string
	topic    string
	params   scoring.Params
	grace    time.Duration // watermark = max event time seen - grace
}

// position is where a partition stands, as stored.
type position struct {
	exists       bool
	next         int64
	maxEventTime time.Time
}

func (s *store) position(ctx context.Context, q pgx.Tx, partition int, lock bool) (position, error) {
	sql := `SELECT next_offset, max_event_time FROM consumer_offsets WHERE consumer = $1 AND topic = $2 AND partition = $3`
	if lock {
		sql += ` FOR UPDATE`
	}
	var p position
	var met *time.Time
	var row pgx.Row
	if q != nil {
		row = q.QueryRow(ctx, sql, s.consumer, s.topic, partition)
	} else {
		row = s.pool.QueryRow(ctx, sql, s.consumer, s.topic, partition)
	}
	err := row.Scan(&p.next, &met)
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

// batch is one partition's slice of the log, decoded.
type batch struct {
	partition int
	expected  position // what we believe is stored before this batch
	next      int64    // offset after the last message
	events    []rating.Event
	msgs      []kafka.Message // where each event was read, for dead letters
}

// result reports what a committed batch did.
type result struct {
	applied, superseded, late int
	posts                     int
	position                  position
}

// apply writes the batch in one transaction: fence on the stored offset,
// load what the events touch, fold them, write ratings, windows, post
// totals, rescore marks and the new offset, and notify the scorer.
func (s *store) apply(ctx context.Context, b batch) (result, error) {
	var res result
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := s.position(ctx, tx, b.partition, true)
		if err != nil {
			return err
		}
		if cur.exists != b.expected.exists || cur.next != b.expected.next {
			return errFenced
		}
		st := window.NewState(s.params)
		fresh, err := s.load(ctx, tx, st, b.events)
		if err != nil {
			return err
		}
		watermark := cur.maxEventTime.Add(-s.grace)
		maxEvent := cur.maxEventTime
		for _, e := range b.events {
			if !s.params.WindowStart(e.RatedAt).Add(s.params.Window).After(watermark) && !cur.maxEventTime.IsZero() {
				res.late++
			}
			switch st.Apply(e, b.partition) {
			case window.Superseded:
				res.superseded++
			default:
				res.applied++
			}
			if at := window.Truncate(e.RatedAt); at.After(maxEvent) {
				maxEvent = at
			}
		}
		res.posts = len(st.DirtyPosts)
		if err := s.write(ctx, tx, st, b, maxEvent, fresh); err != nil {
			return err
		}
		res.position = position{exists: true, next: b.next, maxEventTime: maxEvent}
		return nil
	})
	return res, err
}

// load fills st with what the events can touch. New (post, user) pairs
// are written straight away with the newest of their events in the batch,
// with ON CONFLICT DO NOTHING: the insert is the existence check, and only
// the pairs that already had a rating are read back. It returns the pairs
// it inserted and the event each now holds. Lookups go through LATERAL
// subqueries so that each key is an index probe whatever the planner
// believes about the tables' sizes (statistics lag behind a table that
// grows by thousands of rows a second).
func (s *store) load(ctx context.Context, tx pgx.Tx, st *window.State, events []rating.Event) (map[window.VoteKey]uuid.UUID, error) {
	newest := map[window.VoteKey]rating.Event{}
	winKeys := map[window.Key]struct{}{}
	postIDs := map[int64]struct{}{}
	for _, e := range events {
		vk, wk := st.Needs(e)
		if cur, ok := newest[vk]; !ok || rating.Newer(window.Truncate(e.RatedAt), e.EventID, window.Truncate(cur.RatedAt), cur.EventID) {
			newest[vk] = e
		}
		winKeys[wk] = struct{}{}
		postIDs[e.PostID] = struct{}{}
	}
	n := len(newest)
	ip, iu, is := make([]int64, 0, n), make([]string, 0, n), make([]int16, 0, n)
	ia, ie, iw := make([]time.Time, 0, n), make([][16]byte, 0, n), make([]time.Time, 0, n)
	keys := make([]window.VoteKey, 0, n)
	for k := range newest {
		keys = append(keys, k)
	}
	// In index order: the inserts then walk the primary key's pages in
	// sequence instead of jumping between them.
	slices.SortFunc(keys, func(a, b window.VoteKey) int {
		if c := cmp.Compare(a.PostID, b.PostID); c != 0 {
			return c
		}
		return strings.Compare(a.UserID, b.UserID)
	})
	for _, k := range keys {
		e := newest[k]
		at := window.Truncate(e.RatedAt)
		ip, iu, is = append(ip, k.PostID), append(iu, k.UserID), append(is, int16(e.Score))
		ia, ie, iw = append(ia, at), append(ie, [16]byte(e.EventID)), append(iw, s.params.WindowStart(at))
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO ratings (post_id, user_id, score, rated_at, event_id, window_start)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::timestamptz[], $5::uuid[], $6::timestamptz[])
		ON CONFLICT (post_id, user_id) DO NOTHING
		RETURNING post_id, user_id`, ip, iu, is, ia, ie, iw)
	if err != nil {
		return nil, fmt.Errorf("insert new ratings: %w", err)
	}
	fresh := make(map[window.VoteKey]uuid.UUID, n)
	for rows.Next() {
		var k window.VoteKey
		if err := rows.Scan(&k.PostID, &k.UserID); err != nil {
			rows.Close()
			return nil, err
		}
		fresh[k] = newest[k].EventID
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert new ratings: %w", err)
	}

	var vp []int64
	var vu []string
	for k := range newest {
		if _, ok := fresh[k]; !ok {
			vp, vu = append(vp, k.PostID), append(vu, k.UserID)
		}
	}
	if len(vp) > 0 {
		rows, err = tx.Query(ctx, `
			SELECT r.post_id, r.user_id, r.score, r.rated_at, r.event_id, r.window_start
			FROM unnest($1::bigint[], $2::text[]) AS k(post_id, user_id)
			CROSS JOIN LATERAL (
			  SELECT * FROM ratings r WHERE r.post_id = k.post_id AND r.user_id = k.user_id) r`, vp, vu)
		if err != nil {
			return nil, fmt.Errorf("load ratings: %w", err)
		}
		for rows.Next() {
			var k window.VoteKey
			var v window.Vote
			var score int16
			var id [16]byte
			if err := rows.Scan(&k.PostID, &k.UserID, &score, &v.RatedAt, &id, &v.Window); err != nil {
				rows.Close()
				return nil, err
			}
			v.Score, v.RatedAt, v.EventID, v.Window = int(score), v.RatedAt.UTC(), uuid.UUID(id), v.Window.UTC()
			st.Votes[k] = v
			winKeys[window.Key{PostID: k.PostID, Start: v.Window}] = struct{}{}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("load ratings: %w", err)
		}
	}

	var wp []int64
	var ws []time.Time
	for k := range winKeys {
		wp, ws = append(wp, k.PostID), append(ws, k.Start)
	}
	rows, err = tx.Query(ctx, `
		SELECT a.post_id, a.window_start, a.rating_sum, a.rating_count, a.threshold
		FROM unnest($1::bigint[], $2::timestamptz[]) AS k(post_id, window_start)
		CROSS JOIN LATERAL (
		  SELECT * FROM rating_averages a WHERE a.post_id = k.post_id AND a.window_start = k.window_start) a`, wp, ws)
	if err != nil {
		return nil, fmt.Errorf("load windows: %w", err)
	}
	for rows.Next() {
		var k window.Key
		var w scoring.Window
		if err := rows.Scan(&k.PostID, &k.Start, &w.Sum, &w.Count, &w.Threshold); err != nil {
			rows.Close()
			return nil, err
		}
		k.Start = k.Start.UTC()
		w.Start = k.Start
		st.Windows[k] = w
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load windows: %w", err)
	}

	var ids []int64
	for id := range postIDs {
		ids = append(ids, id)
	}
	rows, err = tx.Query(ctx, `
		SELECT post_id, partition, rating_sum, rating_count, weighted_sum, weight,
		       baseline, baseline_seen, current_window, current_count, current_threshold
		FROM post_stats WHERE post_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("load post stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		p := &window.Post{}
		if err := rows.Scan(&id, &p.Partition, &p.Totals.Sum, &p.Totals.Count, &p.Totals.WeightedSum, &p.Totals.Weight,
			&p.Volume.Baseline, &p.Volume.Seen, &p.Volume.Current, &p.Volume.CurrentCount, &p.Volume.CurrentThreshold); err != nil {
			return nil, err
		}
		p.Volume.Current = p.Volume.Current.UTC()
		st.Posts[id] = p
	}
	return fresh, rows.Err()
}

func (s *store) write(ctx context.Context, tx pgx.Tx, st *window.State, b batch, maxEvent time.Time, fresh map[window.VoteKey]uuid.UUID) error {
	pb := &pgx.Batch{}

	var rp []int64
	var ru []string
	var rs []int16
	var ra []time.Time
	var re [][16]byte // not uuid.UUID: pgx would encode each through driver.Valuer
	var rw []time.Time
	for k := range st.DirtyVotes {
		v := st.Votes[k]
		if id, ok := fresh[k]; ok && id == v.EventID {
			continue // inserted by load with exactly this vote
		}
		rp, ru, rs, ra, re, rw = append(rp, k.PostID), append(ru, k.UserID), append(rs, int16(v.Score)), append(ra, v.RatedAt), append(re, [16]byte(v.EventID)), append(rw, v.Window)
	}
	if len(rp) > 0 {
		pb.Queue(`
			INSERT INTO ratings (post_id, user_id, score, rated_at, event_id, window_start)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::timestamptz[], $5::uuid[], $6::timestamptz[])
			ON CONFLICT (post_id, user_id) DO UPDATE SET
			  score = excluded.score, rated_at = excluded.rated_at,
			  event_id = excluded.event_id, window_start = excluded.window_start`,
			rp, ru, rs, ra, re, rw)
	}

	var wp []int64
	var wst []time.Time
	var wsum, wcnt []int64
	var wth []float64
	for k := range st.DirtyWindows {
		w := st.Windows[k]
		wp, wst, wsum, wcnt, wth = append(wp, k.PostID), append(wst, k.Start), append(wsum, w.Sum), append(wcnt, w.Count), append(wth, w.Threshold)
	}
	if len(wp) > 0 {
		pb.Queue(`
			INSERT INTO rating_averages (post_id, window_start, rating_sum, rating_count, threshold)
			SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::bigint[], $5::float8[])
			ON CONFLICT (post_id, window_start) DO UPDATE SET
			  rating_sum = excluded.rating_sum, rating_count = excluded.rating_count`,
			wp, wst, wsum, wcnt, wth)
	}

	n := len(st.DirtyPosts)
	pid, ppart := make([]int64, 0, n), make([]int32, 0, n)
	psum, pcnt, pws, pw, pcc := make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
	pbase, pseen, pct := make([]float64, 0, n), make([]float64, 0, n), make([]float64, 0, n)
	pcur := make([]time.Time, 0, n)
	for id := range st.DirtyPosts {
		p := st.Posts[id]
		pid, ppart = append(pid, id), append(ppart, int32(p.Partition))
		psum, pcnt, pws, pw = append(psum, p.Totals.Sum), append(pcnt, p.Totals.Count), append(pws, p.Totals.WeightedSum), append(pw, p.Totals.Weight)
		pbase, pseen = append(pbase, p.Volume.Baseline), append(pseen, p.Volume.Seen)
		pcur, pcc, pct = append(pcur, p.Volume.Current), append(pcc, p.Volume.CurrentCount), append(pct, p.Volume.CurrentThreshold)
	}
	if n > 0 {
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
			  current_count = excluded.current_count, current_threshold = excluded.current_threshold`,
			pid, ppart, psum, pcnt, pws, pw, pbase, pseen, pcur, pcc, pct)
		pb.Queue(`
			INSERT INTO rescore_queue (post_id, partition)
			SELECT * FROM unnest($1::bigint[], $2::int[])
			ON CONFLICT (post_id) DO NOTHING`, pid, ppart)
		pb.Queue(`SELECT pg_notify($1, $2)`, contract.ChannelRescore, fmt.Sprint(b.partition))
	}

	var met, wm any
	if !maxEvent.IsZero() {
		met, wm = maxEvent, maxEvent.Add(-s.grace)
	}
	pb.Queue(`
		INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, max_event_time, watermark, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, now())
		ON CONFLICT (consumer, topic, partition) DO UPDATE SET
		  next_offset = excluded.next_offset, max_event_time = excluded.max_event_time,
		  watermark = excluded.watermark, updated_at = now()`,
		s.consumer, s.topic, b.partition, b.next, met, wm)
	if err := tx.SendBatch(ctx, pb).Close(); err != nil {
		return fmt.Errorf("write batch of partition %d: %w", b.partition, err)
	}
	return nil
}

// offsets reads the stored next offset of every partition.
func (s *store) offsets(ctx context.Context) (map[int]int64, error) {
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
