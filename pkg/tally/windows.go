package tally

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/scoring"
)

// windowColumns are a rating_averages row after its post id, in the order
// scanWindow reads them.
const windowColumns = `window_start, rating_sum, rating_count, rerate_count, rerate_sum, late_count, retract_count,
	expected, threshold, sustained, ref_mean, ref_weight, episode_z, new_mean, new_weight, new_excess, reviewed`

// windowScan reads a row of windowColumns into w.
type windowScan struct {
	w                scoring.Window
	refMean, newMean *float64
	postID           int64
	dest             []any
}

func newWindowScan(withPost bool) *windowScan {
	s := &windowScan{}
	r := &s.w.Ref
	s.dest = []any{&s.w.Start, &s.w.Sum, &s.w.Count, &s.w.Rerates, &s.w.RerateSum, &s.w.Late, &s.w.Retracts,
		&r.Expected, &r.Threshold, &r.Sustained, &s.refMean, &r.MeanWeight, &r.Episode, &s.newMean, &r.NewWeight, &r.NewExcess, &r.Reviewed}
	if withPost {
		s.dest = append([]any{&s.postID}, s.dest...)
	}
	return s
}

// window is the row just scanned.
func (s *windowScan) window() scoring.Window {
	w := s.w
	w.Start = w.Start.UTC()
	w.Ref.Mean, w.Ref.NewMean = orNaN(s.refMean), orNaN(s.newMean)
	return w
}

func orNaN(f *float64) float64 {
	if f == nil {
		return math.NaN()
	}
	return *f
}

func orNull(f float64) *float64 {
	if math.IsNaN(f) {
		return nil
	}
	return &f
}

// LoadWindows reads the stored windows among keys and calls found for
// each that exists.
func LoadWindows(ctx context.Context, db DB, keys []fold.WindowKey, found func(fold.WindowKey, scoring.Window)) error {
	if len(keys) == 0 {
		return nil
	}
	posts, starts := make([]int64, len(keys)), make([]time.Time, len(keys))
	for i, k := range keys {
		posts[i], starts[i] = k.PostID, k.Start
	}
	rows, err := db.Query(ctx, `
		SELECT a.post_id, `+prefixed("a.", windowColumns)+`
		FROM unnest($1::bigint[], $2::timestamptz[]) AS k(post_id, window_start)
		CROSS JOIN LATERAL (
		  SELECT * FROM rating_averages a WHERE a.post_id = k.post_id AND a.window_start = k.window_start) a`, posts, starts)
	if err != nil {
		return fmt.Errorf("load windows: %w", err)
	}
	s := newWindowScan(true)
	if _, err := pgx.ForEachRow(rows, s.dest, func() error {
		w := s.window()
		found(fold.WindowKey{PostID: s.postID, Start: w.Start}, w)
		return nil
	}); err != nil {
		return fmt.Errorf("load windows: %w", err)
	}
	return nil
}

// WindowRows are windows as columns, for unnest.
type WindowRows struct {
	post, sum, count, rerates, rerateSum, late, retracts []int64
	start                                                []time.Time
	expected, threshold, refWeight, episode              []float64
	refMean, newMean                                     []*float64
	newWeight                                            []float64
	sustained, newExcess, reviewed                       []bool
	counts                                               countRows // stored windows whose Ref is as stored
}

// countRows are stored windows of which only the counts changed: a
// window's Ref changes once, on its review.
type countRows struct {
	post, sum, count, rerates, rerateSum, late, retracts []int64
	start                                                []time.Time
}

// Add appends one window.
func (r *WindowRows) Add(k fold.WindowKey, w scoring.Window) {
	f := w.Ref
	r.post, r.start = append(r.post, k.PostID), append(r.start, k.Start)
	r.sum, r.count, r.rerates, r.rerateSum, r.late = append(r.sum, w.Sum), append(r.count, w.Count), append(r.rerates, w.Rerates),
		append(r.rerateSum, w.RerateSum), append(r.late, w.Late)
	r.retracts = append(r.retracts, w.Retracts)
	r.expected, r.threshold, r.sustained = append(r.expected, f.Expected), append(r.threshold, f.Threshold), append(r.sustained, f.Sustained)
	r.refMean, r.refWeight, r.episode = append(r.refMean, orNull(f.Mean)), append(r.refWeight, f.MeanWeight), append(r.episode, f.Episode)
	r.newMean, r.newWeight, r.newExcess = append(r.newMean, orNull(f.NewMean)), append(r.newWeight, f.NewWeight), append(r.newExcess, f.NewExcess)
	r.reviewed = append(r.reviewed, f.Reviewed)
}

// AddCounts appends a stored window whose Ref is as stored: only its
// counts are written.
func (r *WindowRows) AddCounts(k fold.WindowKey, w scoring.Window) {
	x := &r.counts
	x.post, x.start = append(x.post, k.PostID), append(x.start, k.Start)
	x.sum, x.count, x.rerates, x.rerateSum, x.late = append(x.sum, w.Sum), append(x.count, w.Count), append(x.rerates, w.Rerates),
		append(x.rerateSum, w.RerateSum), append(x.late, w.Late)
	x.retracts = append(x.retracts, w.Retracts)
}

// Len is the number of windows.
func (r *WindowRows) Len() int { return len(r.post) + len(r.counts.post) }

// QueueWindows stores the windows, replacing stored ones. What a window is
// judged against changes only on its review: a stored window keeps the
// rest of its Ref.
func QueueWindows(b *pgx.Batch, r *WindowRows) {
	if len(r.post) > 0 {
		b.Queue(`
		INSERT INTO rating_averages (post_id, `+windowColumns+`)
		SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
		                     $9::float8[], $10::float8[], $11::bool[], $12::float8[], $13::float8[], $14::float8[], $15::float8[], $16::float8[],
		                     $17::bool[], $18::bool[])
		ON CONFLICT (post_id, window_start) DO UPDATE SET
		  rating_sum = excluded.rating_sum, rating_count = excluded.rating_count,
		  rerate_count = excluded.rerate_count, rerate_sum = excluded.rerate_sum, late_count = excluded.late_count,
		  retract_count = excluded.retract_count,
		  ref_mean = excluded.ref_mean, ref_weight = excluded.ref_weight, episode_z = excluded.episode_z,
		  new_mean = excluded.new_mean, new_weight = excluded.new_weight, new_excess = excluded.new_excess,
		  reviewed = excluded.reviewed`,
			r.post, r.start, r.sum, r.count, r.rerates, r.rerateSum, r.late, r.retracts,
			r.expected, r.threshold, r.sustained, r.refMean, r.refWeight, r.episode, r.newMean, r.newWeight, r.newExcess, r.reviewed)
	}
	if x := &r.counts; len(x.post) > 0 {
		b.Queue(`
		UPDATE rating_averages a SET rating_sum = t.s, rating_count = t.c, rerate_count = t.rc, rerate_sum = t.rs, late_count = t.l,
		  retract_count = t.rt
		FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
		  AS t(id, start, s, c, rc, rs, l, rt)
		WHERE a.post_id = t.id AND a.window_start = t.start`,
			x.post, x.start, x.sum, x.count, x.rerates, x.rerateSum, x.late, x.retracts)
	}
}

// WindowsSince reads a post's windows that start at or after since,
// oldest first.
func WindowsSince(ctx context.Context, db DB, post int64, since time.Time) ([]scoring.Window, error) {
	rows, err := db.Query(ctx, `SELECT `+windowColumns+` FROM rating_averages
		WHERE post_id = $1 AND window_start >= $2 ORDER BY window_start`, post, since)
	if err != nil {
		return nil, fmt.Errorf("read windows of post %d: %w", post, err)
	}
	s := newWindowScan(false)
	var out []scoring.Window
	if _, err := pgx.ForEachRow(rows, s.dest, func() error { out = append(out, s.window()); return nil }); err != nil {
		return nil, fmt.Errorf("read windows of post %d: %w", post, err)
	}
	return out, nil
}

// Span names the windows of one post to read: those starting after After.
type Span struct {
	Post  int64
	After time.Time
}

// WindowsIn reads the windows of each span, oldest first, by post.
func WindowsIn(ctx context.Context, db DB, spans []Span) (map[int64][]scoring.Window, error) {
	out := make(map[int64][]scoring.Window, len(spans))
	if len(spans) == 0 {
		return out, nil
	}
	posts, after := make([]int64, len(spans)), make([]time.Time, len(spans))
	for i, s := range spans {
		posts[i], after[i] = s.Post, s.After
	}
	rows, err := db.Query(ctx, `
		SELECT a.post_id, `+prefixed("a.", windowColumns)+`
		FROM unnest($1::bigint[], $2::timestamptz[]) AS c(post_id, after)
		CROSS JOIN LATERAL (
		  SELECT * FROM rating_averages a WHERE a.post_id = c.post_id AND a.window_start > c.after
		  ORDER BY a.window_start) a`, posts, after)
	if err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	s := newWindowScan(true)
	if _, err := pgx.ForEachRow(rows, s.dest, func() error {
		out[s.postID] = append(out[s.postID], s.window())
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	return out, nil
}

// EachWindow calls fn for every window in r (by window start), by post
// and start, streaming.
func EachWindow(ctx context.Context, db DB, r Range, fn func(post int64, w scoring.Window) error) error {
	rows, err := db.Query(ctx, `SELECT post_id, `+windowColumns+` FROM rating_averages
		WHERE post_id BETWEEN $1 AND $2 AND window_start >= $3 AND window_start < $4 ORDER BY post_id, window_start`, r.args()...)
	if err != nil {
		return err
	}
	s := newWindowScan(true)
	_, err = pgx.ForEachRow(rows, s.dest, func() error { return fn(s.postID, s.window()) })
	return err
}

// PostsWithWindow returns the posts among ids that have a window starting
// at start.
func PostsWithWindow(ctx context.Context, db DB, ids []int64, start time.Time) ([]int64, error) {
	rows, err := db.Query(ctx, `SELECT post_id FROM rating_averages WHERE post_id = ANY($1) AND window_start = $2`, ids, start)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// prefixed qualifies each column of a list with a table alias.
func prefixed(alias, columns string) string {
	out := make([]byte, 0, len(columns)*2)
	start := true
	for i := 0; i < len(columns); i++ {
		c := columns[i]
		if start && c != ' ' && c != '\t' && c != '\n' {
			out = append(out, alias...)
			start = false
		}
		if c == ',' {
			start = true
		}
		out = append(out, c)
	}
	return string(out)
}

// BacktestPost is what a backtest reads of one post: its stats, its live
// score, the event time the score holds for (its partition's watermark,
// or its newest window) and every window, oldest first.
type BacktestPost struct {
	ID      int64
	Stats   scoring.Stats
	Live    *float64
	Now     time.Time
	Reached time.Time // the partition's newest event time (zero: none stored)
	Windows []scoring.Window
}

// ChunkForBacktest reads up to limit posts with ids after after and at
// most hi, by id, with every window of each.
func ChunkForBacktest(ctx context.Context, db DB, k Key, after, hi int64, limit int) ([]*BacktestPost, error) {
	rows, err := db.Query(ctx, `
		SELECT s.post_id, `+prefixed("s.", postColumns)+`, ps.score, co.watermark, co.max_event_time
		FROM post_stats s
		LEFT JOIN post_scores ps ON ps.post_id = s.post_id
		LEFT JOIN consumer_offsets co ON co.consumer = $1 AND co.topic = $2 AND co.partition = s.partition
		WHERE s.post_id > $3 AND s.post_id <= $4
		ORDER BY s.post_id LIMIT $5`, k.Consumer, k.Topic, after, hi, limit)
	if err != nil {
		return nil, fmt.Errorf("read posts: %w", err)
	}
	var live *float64
	var wm, reached *time.Time
	sc := newPostScan(&live, &wm, &reached)
	var posts []*BacktestPost
	byID := map[int64]*BacktestPost{}
	if _, err := pgx.ForEachRow(rows, sc.dest, func() error {
		x := sc.post()
		p := &BacktestPost{ID: sc.id, Stats: x.Stats, Now: x.Tracker.Current}
		if live != nil {
			v := *live
			p.Live = &v
		}
		if wm != nil {
			p.Now = wm.UTC()
		}
		if reached != nil {
			p.Reached = reached.UTC()
		}
		posts = append(posts, p)
		byID[p.ID] = p
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read posts: %w", err)
	}
	if len(posts) == 0 {
		return nil, nil
	}
	err = EachWindow(ctx, db, Range{From: posts[0].ID, To: posts[len(posts)-1].ID}, func(post int64, w scoring.Window) error {
		if p := byID[post]; p != nil {
			p.Windows = append(p.Windows, w)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read windows: %w", err)
	}
	return posts, nil
}
