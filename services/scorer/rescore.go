package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/scoring"
)

// rescorer claims posts that need a new score and writes it.
type rescorer struct {
	pool     *pgxpool.Pool
	strategy scoring.Strategy
	params   scoring.Params
	consumer string // the windower group whose watermarks give event time
	topic    string
	limit    int
	// revisit is how often a post whose score is still maturing is
	// rescored while no window closed since its score: under load every
	// partition's watermark moves several times a second, and rescoring
	// every unstable post each time filled every round, so that posts
	// whose window had just closed waited behind them.
	revisit time.Duration
	// looked is the last look for maturing posts that committed.
	looked look
}

// look is a search for maturing posts: when, the window each partition's
// watermark was in, and whether it left some behind (it found a full
// round). Searching scans every maturing score, so a round searches only
// when it may find one that is due: a partition's watermark entered a new
// window since the last search (the scores of posts rated in the window
// that closed are then claimed at once), half of revisit went by, or the
// last search left some behind.
type look struct {
	at      time.Time
	windows map[int]time.Time
	more    bool
}

// post is what scoring one post needs.
type post struct {
	id        int64
	partition int
	totals    scoring.Totals
	latest    time.Time
	now       time.Time
	windows   []scoring.Window
}

// round claims up to limit posts (marked ones first, then ones whose
// score is still maturing while event time moved on past the end of the
// window of their score, or for longer than revisit), scores them and
// writes the scores, all in one transaction. It returns how many it did.
func (r *rescorer) round(ctx context.Context) (int, error) {
	var done int
	var looked *look
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		ids, l, err := r.claim(ctx, tx)
		if err != nil {
			return err
		}
		looked = l
		if len(ids) == 0 {
			return nil
		}
		posts, err := r.load(ctx, tx, ids)
		if err != nil {
			return err
		}
		if err := r.write(ctx, tx, posts); err != nil {
			return err
		}
		done = len(posts)
		return nil
	})
	if err == nil && looked != nil {
		r.looked = *looked
	}
	return done, err
}

// claim claims the round's posts: marked ones first, then, when a search
// is due, maturing ones. It returns the search it made, if any, for round
// to keep once the claim committed.
func (r *rescorer) claim(ctx context.Context, tx pgx.Tx) ([]int64, *look, error) {
	// Not nil: pgx sends a nil slice as NULL, and NOT (id = ANY(NULL))
	// excludes every row, so that with nothing marked no maturing post
	// was ever claimed.
	ids := make([]int64, 0, r.limit)
	// The ids are chosen once (ARRAY runs its subquery once, in
	// rescore_queue_marked_at's order), then deleted: with the subquery
	// joined to the DELETE instead, the claim returned more rows than its
	// LIMIT under load.
	rows, err := tx.Query(ctx, `
		DELETE FROM rescore_queue q USING unnest(ARRAY(
		  SELECT post_id FROM rescore_queue ORDER BY marked_at LIMIT $1 FOR UPDATE SKIP LOCKED)) AS c(id)
		WHERE q.post_id = c.id
		RETURNING q.post_id`, r.limit)
	if err != nil {
		return nil, nil, fmt.Errorf("claim marked posts: %w", err)
	}
	ids, err = pgx.AppendRows(ids, rows, pgx.RowTo[int64])
	if err != nil {
		return nil, nil, fmt.Errorf("claim marked posts: %w", err)
	}
	left := r.limit - len(ids)
	if left <= 0 {
		return ids, nil, nil
	}
	l, err := r.due(ctx, tx, time.Now())
	if err != nil || l == nil {
		return ids, nil, err
	}
	marked := len(ids)
	rows, err = tx.Query(ctx, `
		SELECT ps.post_id FROM post_scores ps
		JOIN consumer_offsets co
		  ON co.partition = ps.partition AND co.consumer = $1 AND co.topic = $2
		WHERE ps.as_of < ps.stable_at AND ps.as_of < co.watermark AND NOT (ps.post_id = ANY($3))
		  AND (date_bin($5::interval, ps.as_of, timestamptz 'epoch') + $5::interval <= co.watermark
		       OR ps.updated_at <= now() - $6::interval)
		ORDER BY co.watermark - ps.as_of DESC
		LIMIT $4 FOR UPDATE OF ps SKIP LOCKED`, r.consumer, r.topic, ids, left, r.params.Window, r.revisit)
	if err != nil {
		return nil, nil, fmt.Errorf("claim maturing posts: %w", err)
	}
	ids, err = pgx.AppendRows(ids, rows, pgx.RowTo[int64])
	if err != nil {
		return nil, nil, fmt.Errorf("claim maturing posts: %w", err)
	}
	l.more = len(ids)-marked == left
	return ids, l, nil
}

// due returns the search to make now, or nil when none is due.
func (r *rescorer) due(ctx context.Context, tx pgx.Tx, now time.Time) (*look, error) {
	rows, err := tx.Query(ctx, `
		SELECT partition, watermark FROM consumer_offsets
		WHERE consumer = $1 AND topic = $2 AND watermark IS NOT NULL`, r.consumer, r.topic)
	if err != nil {
		return nil, fmt.Errorf("read watermarks: %w", err)
	}
	l := &look{at: now, windows: map[int]time.Time{}}
	var p int
	var wm time.Time
	if _, err := pgx.ForEachRow(rows, []any{&p, &wm}, func() error {
		l.windows[p] = r.params.WindowStart(wm)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read watermarks: %w", err)
	}
	last := r.looked
	if last.more || now.Sub(last.at) >= r.revisit/2 {
		return l, nil
	}
	for p, w := range l.windows {
		if was, ok := last.windows[p]; !ok || w.After(was) {
			return l, nil
		}
	}
	return nil, nil
}

func (r *rescorer) load(ctx context.Context, tx pgx.Tx, ids []int64) ([]*post, error) {
	rows, err := tx.Query(ctx, `
		SELECT s.post_id, s.partition, s.rating_sum, s.rating_count, s.weighted_sum, s.weight,
		       s.current_window, co.watermark
		FROM post_stats s
		LEFT JOIN consumer_offsets co
		  ON co.partition = s.partition AND co.consumer = $2 AND co.topic = $3
		WHERE s.post_id = ANY($1)
		ORDER BY s.post_id`, ids, r.consumer, r.topic)
	if err != nil {
		return nil, fmt.Errorf("load post stats: %w", err)
	}
	var posts []*post
	byID := map[int64]*post{}
	for rows.Next() {
		p := &post{}
		var wm *time.Time
		if err := rows.Scan(&p.id, &p.partition, &p.totals.Sum, &p.totals.Count, &p.totals.WeightedSum, &p.totals.Weight, &p.latest, &wm); err != nil {
			rows.Close()
			return nil, err
		}
		p.latest = p.latest.UTC()
		p.now = p.latest
		if wm != nil {
			p.now = wm.UTC()
		}
		posts = append(posts, p)
		byID[p.id] = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load post stats: %w", err)
	}
	pids := make([]int64, len(posts))
	cutoffs := make([]time.Time, len(posts))
	for i, p := range posts {
		pids[i] = p.id
		cutoffs[i] = scoring.RecentCutoff(p.now, r.params).Add(-r.params.Window)
		if r.strategy.NeedsHistory() {
			cutoffs[i] = time.Unix(0, 0)
		}
	}
	rows, err = tx.Query(ctx, `
		SELECT a.post_id, a.window_start, a.rating_sum, a.rating_count, a.rerate_count, a.threshold
		FROM unnest($1::bigint[], $2::timestamptz[]) AS c(post_id, cutoff)
		CROSS JOIN LATERAL (
		  SELECT * FROM rating_averages a WHERE a.post_id = c.post_id AND a.window_start > c.cutoff
		  ORDER BY a.window_start) a`, pids, cutoffs)
	if err != nil {
		return nil, fmt.Errorf("load windows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var w scoring.Window
		if err := rows.Scan(&id, &w.Start, &w.Sum, &w.Count, &w.Rerates, &w.Threshold); err != nil {
			return nil, err
		}
		w.Start = w.Start.UTC()
		p := byID[id]
		p.windows = append(p.windows, w)
	}
	return posts, rows.Err()
}

func (r *rescorer) write(ctx context.Context, tx pgx.Tx, posts []*post) error {
	n := len(posts)
	ids, parts, counts := make([]int64, n), make([]int32, n), make([]int64, n)
	scores, means := make([]*float64, n), make([]*float64, n)
	asOf, stable := make([]time.Time, n), make([]time.Time, n)
	campaign := make([]*time.Time, n)
	for i, p := range posts {
		in := scoring.Input{Now: p.now, Params: r.params, Totals: p.totals, Latest: p.latest, Recent: p.windows, All: p.windows}
		res := r.strategy.Score(in)
		ids[i], parts[i], counts[i] = p.id, int32(p.partition), p.totals.Count
		if res.OK {
			s := res.Score
			scores[i] = &s
		}
		if p.totals.Count > 0 {
			m := float64(p.totals.Sum) / float64(p.totals.Count)
			means[i] = &m
		}
		asOf[i], stable[i] = scoring.AsOf(p.now, res), res.StableAt
		if since, ok := scoring.CampaignSince(p.windows, asOf[i], r.params); ok {
			campaign[i] = &since
		}
	}
	b := &pgx.Batch{}
	b.Queue(`
		INSERT INTO post_scores (post_id, score, user_count, mean, strategy, partition, as_of, stable_at, campaign_since, updated_at)
		SELECT id, score, cnt, mean, $5, part, as_of, stable_at, campaign_since, now()
		FROM unnest($1::bigint[], $2::float8[], $3::bigint[], $4::float8[], $6::int[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
		  AS t(id, score, cnt, mean, part, as_of, stable_at, campaign_since)
		ON CONFLICT (post_id) DO UPDATE SET
		  score = excluded.score, user_count = excluded.user_count, mean = excluded.mean,
		  strategy = excluded.strategy, partition = excluded.partition,
		  as_of = excluded.as_of, stable_at = excluded.stable_at,
		  campaign_since = excluded.campaign_since, updated_at = now()`,
		ids, scores, counts, means, r.strategy.Name(), parts, asOf, stable, campaign)
	for _, payload := range chunkIDs(ids, 7000) {
		b.Queue(`SELECT pg_notify($1, $2)`, contract.ChannelPostScores, payload)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write scores: %w", err)
	}
	return nil
}

// chunkIDs joins ids with commas in payloads under max bytes (NOTIFY
// payloads are limited to 8000 bytes).
func chunkIDs(ids []int64, max int) []string {
	var out []string
	var sb strings.Builder
	for _, id := range ids {
		s := strconv.FormatInt(id, 10)
		if sb.Len() > 0 && sb.Len()+1+len(s) > max {
			out = append(out, sb.String())
			sb.Reset()
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(s)
	}
	if sb.Len() > 0 {
		out = append(out, sb.String())
	}
	return out
}
