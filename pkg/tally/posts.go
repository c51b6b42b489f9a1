package tally

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/fold"
)

// postColumns are a post_stats row after its post id, in the order
// postScan reads them.
const postColumns = `partition, rating_sum, rating_count, weighted_sum, weight, dist,
	baseline, baseline_seen, sustain, episode_count, episode_sum, new_count, new_sum, new_sustain,
	first_window, current_window, pending, held_since, held_last`

type postScan struct {
	id                  int64
	p                   fold.Post
	dist                []int64
	heldSince, heldLast *time.Time
	dest                []any
}

func newPostScan(extra ...any) *postScan {
	s := &postScan{}
	t, k := &s.p.Totals, &s.p.Tracker
	s.dest = append([]any{&s.id, &s.p.Partition, &t.Sum, &t.Count, &t.WeightedSum, &t.Weight, &s.dist,
		&k.Baseline, &k.Seen, &k.Sustain, &k.EpisodeCount, &k.EpisodeSum, &k.NewCount, &k.NewSum, &k.NewSustain,
		&k.First, &k.Current, &k.Pending, &s.heldSince, &s.heldLast}, extra...)
	return s
}

// post is the row just scanned, a copy of its own.
func (s *postScan) post() *fold.Post {
	p := s.p
	copy(p.Totals.Dist[:], s.dist)
	p.Tracker.First, p.Tracker.Current = p.Tracker.First.UTC(), p.Tracker.Current.UTC()
	p.Tracker.HeldSince, p.Tracker.HeldLast = time.Time{}, time.Time{}
	if s.heldSince != nil && s.heldLast != nil {
		p.Tracker.HeldSince, p.Tracker.HeldLast = s.heldSince.UTC(), s.heldLast.UTC()
	}
	p.Tracker.Pending = nil
	for _, t := range s.p.Tracker.Pending {
		p.Tracker.Pending = append(p.Tracker.Pending, t.UTC())
	}
	return &p
}

// LoadPosts reads the stored posts among ids and calls found for each
// that exists.
func LoadPosts(ctx context.Context, db DB, ids []int64, found func(int64, *fold.Post)) error {
	return loadPosts(ctx, db, `SELECT post_id, `+postColumns+` FROM post_stats WHERE post_id = ANY($1)`, ids, found)
}

// LockPosts is LoadPosts that also locks the rows until db's transaction
// ends, in post id order (two transactions locking overlapping sets wait
// for each other rather than deadlock): a batch of another partition
// that writes the same post waits for this one to commit and then reads
// what it wrote.
func LockPosts(ctx context.Context, db DB, ids []int64, found func(int64, *fold.Post)) error {
	return loadPosts(ctx, db, `SELECT post_id, `+postColumns+` FROM post_stats WHERE post_id = ANY($1) ORDER BY post_id FOR UPDATE`, ids, found)
}

func loadPosts(ctx context.Context, db DB, q string, ids []int64, found func(int64, *fold.Post)) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := db.Query(ctx, q, ids)
	if err != nil {
		return fmt.Errorf("load post stats: %w", err)
	}
	s := newPostScan()
	if _, err := pgx.ForEachRow(rows, s.dest, func() error { found(s.id, s.post()); return nil }); err != nil {
		return fmt.Errorf("load post stats: %w", err)
	}
	return nil
}

// Posts reads the stored posts among ids.
func Posts(ctx context.Context, db DB, ids []int64) (map[int64]*fold.Post, error) {
	out := make(map[int64]*fold.Post, len(ids))
	err := LoadPosts(ctx, db, ids, func(id int64, p *fold.Post) { out[id] = p })
	return out, err
}

// PostRows are post_stats rows as columns, for unnest.
type PostRows struct {
	post                            []int64
	partition                       []int32
	sum, count, weightedSum, weight []int64
	dist                            [][]int64
	baseline, seen, sustain         []float64
	episodeCount, episodeSum        []float64
	newCount, newSum, newSustain    []float64
	first, current                  []time.Time
	pending                         []string // text arrays: pgx cannot bind a ragged timestamptz[][]
	heldSince, heldLast             []*time.Time
	totals                          totalRows // stored posts whose tracker is as stored
	created                         *PostRows // posts not stored yet
}

// totalRows are stored posts of which only the totals changed: most
// batches change nothing else (a tracker changes once a window), and
// writing those columns alone costs PostgreSQL half as much.
type totalRows struct {
	post                            []int64
	sum, count, weightedSum, weight []int64
	dist                            [6][]int64
	partitions                      []int32
}

// Add appends one post.
func (r *PostRows) Add(id int64, p *fold.Post) {
	t, k := p.Totals, p.Tracker
	r.post, r.partition = append(r.post, id), append(r.partition, int32(p.Partition))
	r.sum, r.count, r.weightedSum, r.weight = append(r.sum, t.Sum), append(r.count, t.Count), append(r.weightedSum, t.WeightedSum), append(r.weight, t.Weight)
	r.dist = append(r.dist, append([]int64(nil), t.Dist[:]...))
	r.baseline, r.seen, r.sustain = append(r.baseline, k.Baseline), append(r.seen, k.Seen), append(r.sustain, k.Sustain)
	r.episodeCount, r.episodeSum = append(r.episodeCount, k.EpisodeCount), append(r.episodeSum, k.EpisodeSum)
	r.newCount, r.newSum, r.newSustain = append(r.newCount, k.NewCount), append(r.newSum, k.NewSum), append(r.newSustain, k.NewSustain)
	r.first, r.current = append(r.first, k.First), append(r.current, k.Current)
	r.pending = append(r.pending, timestampArray(k.Pending))
	r.heldSince, r.heldLast = append(r.heldSince, orNullTime(k.HeldSince)), append(r.heldLast, orNullTime(k.HeldLast))
}

func orNullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// AddTotals appends a stored post whose tracker and partition are as
// stored: only its totals are written.
func (r *PostRows) AddTotals(id int64, p *fold.Post) {
	t, x := p.Totals, &r.totals
	x.post, x.sum, x.count = append(x.post, id), append(x.sum, t.Sum), append(x.count, t.Count)
	x.weightedSum, x.weight = append(x.weightedSum, t.WeightedSum), append(x.weight, t.Weight)
	for i := range x.dist {
		x.dist[i] = append(x.dist[i], t.Dist[i])
	}
	r.totals.partitions = append(r.totals.partitions, int32(p.Partition))
}

// AddNew appends a post that was not stored when the batch read its
// posts. It is inserted, never merged into a row another transaction
// stored meanwhile: that insert fails with a unique violation on
// post_stats_pkey (PostRaced), and the batch must run again.
func (r *PostRows) AddNew(id int64, p *fold.Post) {
	if r.created == nil {
		r.created = &PostRows{}
	}
	r.created.Add(id, p)
}

// Len is the number of posts.
func (r *PostRows) Len() int {
	n := len(r.post) + len(r.totals.post)
	if r.created != nil {
		n += r.created.Len()
	}
	return n
}

// timestampArray writes times as a PostgreSQL array literal.
func timestampArray(ts []time.Time) string {
	b := []byte{'{'}
	for i, t := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.999999Z07:00")
		b = append(b, '"')
	}
	return string(append(b, '}'))
}

// QueuePosts stores the posts, replacing stored ones, marks them for the
// scorer and wakes it with the partition that changed them.
func QueuePosts(b *pgx.Batch, r *PostRows, partition int) {
	if r.Len() == 0 {
		return
	}
	queueWhole(b, r, "ON CONFLICT (post_id) DO UPDATE SET"+`
		  rating_sum = excluded.rating_sum, rating_count = excluded.rating_count,
		  weighted_sum = excluded.weighted_sum, weight = excluded.weight, dist = excluded.dist,
		  baseline = excluded.baseline, baseline_seen = excluded.baseline_seen, sustain = excluded.sustain,
		  episode_count = excluded.episode_count, episode_sum = excluded.episode_sum,
		  new_count = excluded.new_count, new_sum = excluded.new_sum, new_sustain = excluded.new_sustain,
		  first_window = excluded.first_window, current_window = excluded.current_window, pending = excluded.pending,
		  held_since = excluded.held_since, held_last = excluded.held_last`)
	if r.created != nil {
		queueWhole(b, r.created, "")
	}
	if x := &r.totals; len(x.post) > 0 {
		// A nested loop of primary-key probes: the planner takes an
		// unnest of parameters for a few rows.
		b.Queue(`
		UPDATE post_stats s SET rating_sum = t.s, rating_count = t.c, weighted_sum = t.ws, weight = t.w,
		  dist = ARRAY[t.d0, t.d1, t.d2, t.d3, t.d4, t.d5]
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
		            $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])
		  AS t(id, s, c, ws, w, d0, d1, d2, d3, d4, d5)
		WHERE s.post_id = t.id`,
			x.post, x.sum, x.count, x.weightedSum, x.weight, x.dist[0], x.dist[1], x.dist[2], x.dist[3], x.dist[4], x.dist[5])
	}
	ids, parts := append(slices.Clone(r.post), r.totals.post...), append(slices.Clone(r.partition), r.totals.partitions...)
	if r.created != nil {
		ids, parts = append(ids, r.created.post...), append(parts, r.created.partition...)
	}
	b.Queue(`
		INSERT INTO rescore_queue (post_id, partition)
		SELECT * FROM unnest($1::bigint[], $2::int[])
		ON CONFLICT (post_id) DO NOTHING`, ids, parts)
	b.Queue(`SELECT pg_notify($1, $2)`, contract.ChannelRescore, fmt.Sprint(partition))
}

// queueWhole writes r's whole rows, then onConflict.
func queueWhole(b *pgx.Batch, r *PostRows, onConflict string) {
	if len(r.post) == 0 {
		return
	}
	dist := make([][6]int64, len(r.dist))
	for i, d := range r.dist {
		copy(dist[i][:], d)
	}
	b.Queue(`
		INSERT INTO post_stats (post_id, `+postColumns+`)
		SELECT id, part, s, c, ws, w, ARRAY[d0, d1, d2, d3, d4, d5], bl, seen, sus, ec, es, nc, ns, nsus, first, cur, pend::timestamptz[], hs, hl
		FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
		            $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[],
		            $13::float8[], $14::float8[], $15::float8[], $16::float8[], $17::float8[], $18::float8[], $19::float8[], $20::float8[],
		            $21::timestamptz[], $22::timestamptz[], $23::text[], $24::timestamptz[], $25::timestamptz[])
		  AS t(id, part, s, c, ws, w, d0, d1, d2, d3, d4, d5, bl, seen, sus, ec, es, nc, ns, nsus, first, cur, pend, hs, hl)
		`+onConflict,
		r.post, r.partition, r.sum, r.count, r.weightedSum, r.weight,
		column(dist, 0), column(dist, 1), column(dist, 2), column(dist, 3), column(dist, 4), column(dist, 5),
		r.baseline, r.seen, r.sustain, r.episodeCount, r.episodeSum, r.newCount, r.newSum, r.newSustain,
		r.first, r.current, r.pending, r.heldSince, r.heldLast)
}

// PostRaced reports whether err is a batch's insert of a post that
// another transaction stored after the batch read its posts.
func PostRaced(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505" && pg.ConstraintName == "post_stats_pkey"
}

func column(d [][6]int64, i int) []int64 {
	out := make([]int64, len(d))
	for j := range d {
		out[j] = d[j][i]
	}
	return out
}

// CountPosts counts the posts with stats among ids lo..hi.
func CountPosts(ctx context.Context, db DB, lo, hi int64) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, `SELECT count(*) FROM post_stats WHERE post_id BETWEEN $1 AND $2`, lo, hi).Scan(&n)
	return n, err
}

// WriteState stores every vote, window and post of st as they are, as the
// windower would have (without its offsets): for tests and benchmarks that
// need a post's state without running the pipeline.
func WriteState(ctx context.Context, db DB, st *fold.State, partition int) error {
	var votes VoteRows
	for k, v := range st.Votes {
		votes.Add(k, v)
	}
	var windows WindowRows
	for k, w := range st.Windows {
		windows.Add(k, w)
	}
	var posts PostRows
	for id, p := range st.Posts {
		posts.Add(id, p)
	}
	b := &pgx.Batch{}
	QueueVotes(b, &votes)
	QueueWindows(b, &windows)
	QueuePosts(b, &posts, partition)
	return db.SendBatch(ctx, b).Close()
}
