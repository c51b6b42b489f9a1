package tally

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/scoring"
)

// ClaimMarked takes up to limit posts off the rescore queue, longest
// marked first, skipping those another transaction holds.
func ClaimMarked(ctx context.Context, tx pgx.Tx, limit int) ([]int64, error) {
	// The ids are chosen once (ARRAY runs its subquery once, in
	// rescore_queue_marked_at's order), then deleted: with the subquery
	// joined to the DELETE instead, the claim returned more rows than its
	// LIMIT under load.
	rows, err := tx.Query(ctx, `
		DELETE FROM rescore_queue q USING unnest(ARRAY(
		  SELECT post_id FROM rescore_queue ORDER BY marked_at LIMIT $1 FOR UPDATE SKIP LOCKED)) AS c(id)
		WHERE q.post_id = c.id
		RETURNING q.post_id`, limit)
	if err != nil {
		return nil, fmt.Errorf("claim marked posts: %w", err)
	}
	// Not nil: pgx sends a nil slice as NULL, and NOT (id = ANY(NULL))
	// excludes every row.
	ids, err := pgx.AppendRows(make([]int64, 0, limit), rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("claim marked posts: %w", err)
	}
	return ids, nil
}

// ClaimDue claims up to limit posts, other than those in skip, whose
// score is not yet stable and whose partition's watermark moved past the
// end of the window of their score, or which were scored at least
// revisit ago while it moved on: furthest behind first.
func ClaimDue(ctx context.Context, tx pgx.Tx, k Key, skip []int64, limit int, window, revisit time.Duration) ([]int64, error) {
	if skip == nil {
		skip = []int64{}
	}
	rows, err := tx.Query(ctx, `
		SELECT ps.post_id FROM post_scores ps
		JOIN consumer_offsets co
		  ON co.partition = ps.partition AND co.consumer = $1 AND co.topic = $2
		WHERE ps.as_of < ps.stable_at AND ps.as_of < co.watermark AND NOT (ps.post_id = ANY($3))
		  AND (date_bin($5::interval, ps.as_of, timestamptz 'epoch') + $5::interval <= co.watermark
		       OR ps.updated_at <= now() - $6::interval)
		ORDER BY co.watermark - ps.as_of DESC
		LIMIT $4 FOR UPDATE OF ps SKIP LOCKED`, k.Consumer, k.Topic, skip, limit, window, revisit)
	if err != nil {
		return nil, fmt.Errorf("claim maturing posts: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("claim maturing posts: %w", err)
	}
	return ids, nil
}

// Watermarks reads the watermark of every partition of a group that has
// one.
func Watermarks(ctx context.Context, db DB, k Key) (map[int]time.Time, error) {
	pos, err := Positions(ctx, db, k)
	if err != nil {
		return nil, fmt.Errorf("read watermarks: %w", err)
	}
	out := make(map[int]time.Time, len(pos))
	for p, s := range pos {
		if !s.Watermark.IsZero() {
			out[p] = s.Watermark
		}
	}
	return out, nil
}

// ScoringPost is what scoring one post needs: its stats, the event time
// to score it at (its partition's watermark, or its newest window before
// there is one) and the windows the strategy reads.
type ScoringPost struct {
	ID        int64
	Partition int
	Stats     scoring.Stats
	Now       time.Time
	Reached   time.Time // the partition's newest event time (zero: none stored)
	Windows   []scoring.Window
}

// Input is what the strategy sees of the post.
func (s *ScoringPost) Input(p scoring.Params) scoring.Input {
	in := scoring.NewInput(s.Stats, s.Windows, s.Now, p)
	in.Reached = s.Reached
	return in
}

// LoadForScoring reads what scoring the posts ids needs, by post id:
// every window when history is set (a strategy that reads the whole
// history), otherwise the windows still open at the partition's
// watermark or not finished (scoring.Unfinished) and those awaiting
// review.
func LoadForScoring(ctx context.Context, db DB, k Key, ids []int64, p scoring.Params, history bool) ([]*ScoringPost, error) {
	rows, err := db.Query(ctx, `
		SELECT s.post_id, `+prefixed("s.", postColumns)+`, co.watermark, co.max_event_time
		FROM post_stats s
		LEFT JOIN consumer_offsets co
		  ON co.partition = s.partition AND co.consumer = $2 AND co.topic = $3
		WHERE s.post_id = ANY($1)
		ORDER BY s.post_id`, ids, k.Consumer, k.Topic)
	if err != nil {
		return nil, fmt.Errorf("load post stats: %w", err)
	}
	var wm, reached *time.Time
	sc := newPostScan(&wm, &reached)
	var posts []*ScoringPost
	if _, err := pgx.ForEachRow(rows, sc.dest, func() error {
		x := sc.post()
		sp := &ScoringPost{ID: sc.id, Partition: x.Partition, Stats: x.Stats, Now: x.Tracker.Current}
		if wm != nil {
			sp.Now = wm.UTC()
		}
		if reached != nil {
			sp.Reached = reached.UTC()
		}
		posts = append(posts, sp)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load post stats: %w", err)
	}
	spans := make([]Span, len(posts))
	var pending []fold.WindowKey
	for i, sp := range posts {
		after := scoring.Unfinished(sp.Stats.Tracker, sp.Now, p).Add(-time.Nanosecond)
		if history {
			after = time.Unix(0, 0)
		}
		spans[i] = Span{Post: sp.ID, After: after}
		for _, t := range sp.Stats.Tracker.Pending {
			if !history && !t.After(after) {
				pending = append(pending, fold.WindowKey{PostID: sp.ID, Start: t})
			}
		}
	}
	ws, err := WindowsIn(ctx, db, spans)
	if err != nil {
		return nil, err
	}
	if err := LoadWindows(ctx, db, pending, func(k fold.WindowKey, w scoring.Window) { ws[k.PostID] = append(ws[k.PostID], w) }); err != nil {
		return nil, err
	}
	for id, w := range ws {
		scoring.SortWindows(w)
		ws[id] = w
	}
	for _, sp := range posts {
		sp.Windows = ws[sp.ID]
	}
	return posts, nil
}

// Score is a post's row of post_scores.
type Score struct {
	PostID        int64
	Score         *float64 // nil before any vote counts
	UserCount     int64
	Mean          *float64
	Strategy      string
	Partition     int
	AsOf          time.Time // the event time it holds for
	StableAt      time.Time // when it stops changing without new votes
	CampaignSince *time.Time
	// Dist counts the current ratings by score (it adds up to UserCount).
	Dist [6]int64
	// Activity is the post's typical honest votes per window as of the
	// window ActivityAt (the tracker's baseline; zero time: none yet).
	Activity   float64
	ActivityAt time.Time
}

// scoreRecord builds a post-scores.v1 record (pkg/postscore) from a
// written post_scores row: times in RFC 3339 UTC, a NaN (which JSON
// cannot carry) as null.
const scoreRecord = `json_build_object('v', 1, 'post_id', post_id, 'version', version,
	'score', nullif(score, 'NaN'), 'user_count', user_count, 'mean', nullif(mean, 'NaN'), 'distribution', dist,
	'flags', json_build_object('under_campaign', campaign_since IS NOT NULL,
	  'since', to_char(campaign_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
	'as_of', to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'strategy', strategy,
	'activity', COALESCE(nullif(activity, 'NaN'), 0),
	'activity_at', to_char(activity_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))`

// scoreVersion is a new score row's version, and the least an updated
// row's can be: the write's time in microseconds. A post's version grows
// with every write (one more than before at least) and also across a
// restore of PostgreSQL from a backup: the versions written after it are
// above every version published before it, which the score topic's
// readers would otherwise take for old records and ignore.
const scoreVersion = `(extract(epoch FROM statement_timestamp()) * 1000000)::bigint`

// WriteScores stores the scores and queues their records for the score
// topic (which is what readers of scores follow).
func WriteScores(ctx context.Context, db DB, scores []Score) error {
	n := len(scores)
	ids, parts, counts := make([]int64, n), make([]int32, n), make([]int64, n)
	vals, means := make([]*float64, n), make([]*float64, n)
	strategies := make([]string, n)
	asOf, stable := make([]time.Time, n), make([]time.Time, n)
	campaign := make([]*time.Time, n)
	var dist [6][]int64
	activity, activityAt := make([]float64, n), make([]*time.Time, n)
	for i, s := range scores {
		ids[i], parts[i], counts[i], vals[i], means[i] = s.PostID, int32(s.Partition), s.UserCount, s.Score, s.Mean
		strategies[i], asOf[i], stable[i], campaign[i] = s.Strategy, s.AsOf, s.StableAt, s.CampaignSince
		for k := range dist {
			dist[k] = append(dist[k], s.Dist[k])
		}
		activity[i] = s.Activity
		if !s.ActivityAt.IsZero() {
			activityAt[i] = &scores[i].ActivityAt
		}
	}
	// The scores, and in the same statement the records of the score
	// topic (post-scores.v1, pkg/postscore) into the outbox that the
	// scorer's relay publishes: both commit or neither.
	_, err := db.Exec(ctx, `
		WITH w AS (
		  INSERT INTO post_scores (post_id, score, user_count, mean, strategy, partition, as_of, stable_at, campaign_since,
		                           dist, activity, activity_at, version, updated_at)
		  SELECT id, score, cnt, mean, strat, part, as_of, stable_at, campaign_since,
		         ARRAY[d0, d1, d2, d3, d4, d5], activity, activity_at, `+scoreVersion+`, now()
		  FROM unnest($1::bigint[], $2::float8[], $3::bigint[], $4::float8[], $5::text[], $6::int[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[],
		              $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], $16::float8[], $17::timestamptz[])
		    AS t(id, score, cnt, mean, strat, part, as_of, stable_at, campaign_since, d0, d1, d2, d3, d4, d5, activity, activity_at)
		  ON CONFLICT (post_id) DO UPDATE SET
		    score = excluded.score, user_count = excluded.user_count, mean = excluded.mean,
		    strategy = excluded.strategy, partition = excluded.partition,
		    as_of = excluded.as_of, stable_at = excluded.stable_at,
		    campaign_since = excluded.campaign_since, dist = excluded.dist,
		    activity = excluded.activity, activity_at = excluded.activity_at,
		    version = GREATEST(post_scores.version + 1, `+scoreVersion+`), updated_at = now()
		  RETURNING post_id, version, score, user_count, mean, dist, campaign_since, as_of, strategy, activity, activity_at)
		INSERT INTO score_outbox (post_id, version, record)
		SELECT post_id, version, `+scoreRecord+`::text FROM w ORDER BY post_id`,
		ids, vals, counts, means, strategies, parts, asOf, stable, campaign,
		dist[0], dist[1], dist[2], dist[3], dist[4], dist[5], activity, activityAt)
	if err != nil {
		return fmt.Errorf("write scores: %w", err)
	}
	return nil
}

// QueueUnpublished queues a record for every score row that has never
// had one (version 0: written before the score topic existed, or made up
// by a benchmark), so that readers of the topic see every scored post
// after an upgrade. It returns how many it queued.
func QueueUnpublished(ctx context.Context, db DB) (int64, error) {
	tag, err := db.Exec(ctx, `
		WITH w AS (
		  UPDATE post_scores SET version = `+scoreVersion+` WHERE version = 0
		  RETURNING post_id, version, score, user_count, mean, dist, campaign_since, as_of, strategy, activity, activity_at)
		INSERT INTO score_outbox (post_id, version, record)
		SELECT post_id, version, `+scoreRecord+`::text FROM w ORDER BY post_id`)
	if err != nil {
		return 0, fmt.Errorf("queue unpublished scores: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Backlog is the scorer's work left: posts marked and how long the
// oldest waited, and how far in event time the furthest score still
// maturing lags its partition's watermark.
type Backlog struct {
	Queued       int64
	OldestWait   time.Duration
	BehindEvents time.Duration
	// Due counts the maturing scores behind their partition's watermark.
	Due int64
}

// ReadBacklog reads the scorer's backlog of a group.
func ReadBacklog(ctx context.Context, db DB, k Key) (Backlog, error) {
	var b Backlog
	var oldest, behind float64
	err := db.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM rescore_queue),
		       COALESCE((SELECT EXTRACT(epoch FROM now() - min(marked_at))::float8 FROM rescore_queue), 0),
		       COALESCE((SELECT EXTRACT(epoch FROM max(co.watermark - ps.as_of))::float8
		                 FROM post_scores ps
		                 JOIN consumer_offsets co ON co.partition = ps.partition AND co.consumer = $1 AND co.topic = $2
		                 WHERE ps.as_of < ps.stable_at AND ps.as_of < co.watermark), 0),
		       (SELECT count(*) FROM post_scores ps
		        JOIN consumer_offsets co ON co.partition = ps.partition AND co.consumer = $1 AND co.topic = $2
		        WHERE ps.as_of < ps.stable_at AND ps.as_of < co.watermark)`,
		k.Consumer, k.Topic).Scan(&b.Queued, &oldest, &behind, &b.Due)
	b.OldestWait, b.BehindEvents = time.Duration(oldest*float64(time.Second)), time.Duration(behind*float64(time.Second))
	return b, err
}

// PartitionBacklog is the scorer's backlog in one partition.
type PartitionBacklog struct {
	Queued     int64
	OldestWait time.Duration
	Due        int64
}

// BacklogByPartition reads the scorer's backlog of a group per partition.
func BacklogByPartition(ctx context.Context, db DB, k Key) (map[int]PartitionBacklog, error) {
	out := map[int]PartitionBacklog{}
	rows, err := db.Query(ctx, `
		SELECT partition, count(*), EXTRACT(epoch FROM now() - min(marked_at))::float8 FROM rescore_queue GROUP BY partition`)
	if err != nil {
		return nil, fmt.Errorf("the scorer's queue: %w", err)
	}
	var p int
	var n int64
	var wait float64
	if _, err := pgx.ForEachRow(rows, []any{&p, &n, &wait}, func() error {
		x := out[p]
		x.Queued, x.OldestWait = n, time.Duration(wait*float64(time.Second))
		out[p] = x
		return nil
	}); err != nil {
		return nil, fmt.Errorf("the scorer's queue: %w", err)
	}
	rows, err = db.Query(ctx, `
		SELECT ps.partition, count(*) FROM post_scores ps
		JOIN consumer_offsets co ON co.consumer = $1 AND co.topic = $2 AND co.partition = ps.partition
		WHERE ps.as_of < ps.stable_at AND ps.as_of < co.watermark
		GROUP BY ps.partition`, k.Consumer, k.Topic)
	if err != nil {
		return nil, fmt.Errorf("the scorer's maturing posts: %w", err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&p, &n}, func() error {
		x := out[p]
		x.Due = n
		out[p] = x
		return nil
	}); err != nil {
		return nil, fmt.Errorf("the scorer's maturing posts: %w", err)
	}
	return out, nil
}

// EachScore calls fn for every score in r (by as_of), by post, streaming.
func EachScore(ctx context.Context, db DB, r Range, fn func(Score) error) error {
	rows, err := db.Query(ctx, `SELECT post_id, score, user_count, mean, strategy, partition, as_of, stable_at, campaign_since FROM post_scores
		WHERE post_id BETWEEN $1 AND $2 AND as_of >= $3 AND as_of < $4 ORDER BY post_id`, r.args()...)
	if err != nil {
		return err
	}
	var s Score
	_, err = pgx.ForEachRow(rows, []any{&s.PostID, &s.Score, &s.UserCount, &s.Mean, &s.Strategy, &s.Partition, &s.AsOf, &s.StableAt, &s.CampaignSince},
		func() error {
			s.AsOf, s.StableAt = s.AsOf.UTC(), s.StableAt.UTC()
			return fn(s)
		})
	return err
}

// PostView is a post with what the scorer wrote about it, as the query
// service serves it and the web page explains it.
type PostView struct {
	ID            int64
	Title         string
	Score         *float64
	Mean          *float64
	UserCount     int64
	AsOf          *time.Time
	CampaignSince *time.Time
	// Dist, Activity and ActivityAt are the score row's (Score).
	Dist       [6]int64
	Activity   float64
	ActivityAt *time.Time
	// Stats are the post's running totals and tracker (nil before its
	// first vote).
	Stats *fold.Post
}

// ViewQuery selects every post with its score, for an in-memory view
// (pkg/mirror): with " WHERE " + ViewID + " = ANY($1)" appended it selects
// the posts a notification names. ScanView reads one row of it.
const (
	ViewQuery = `
	SELECT p.id, p.title, s.score, COALESCE(s.user_count, 0), s.campaign_since,
	       COALESCE(s.dist, '{0,0,0,0,0,0}'), COALESCE(s.activity, 0), s.activity_at
	FROM posts p LEFT JOIN post_scores s ON s.post_id = p.id`
	ViewID = "p.id"
)

// ScanView reads one row of ViewQuery.
func ScanView(r pgx.Row) (PostView, error) {
	var p PostView
	var dist []int64
	err := r.Scan(&p.ID, &p.Title, &p.Score, &p.UserCount, &p.CampaignSince, &dist, &p.Activity, &p.ActivityAt)
	copy(p.Dist[:], dist)
	return p, err
}

// View reads one post with its score, its stats and its score's event
// time; ok is false when there is no such post.
func View(ctx context.Context, db DB, id int64) (PostView, bool, error) {
	rows, err := db.Query(ctx, `
		SELECT p.id, p.title, s.score, s.mean, COALESCE(s.user_count, 0), s.as_of, s.campaign_since
		FROM posts p LEFT JOIN post_scores s ON s.post_id = p.id
		WHERE p.id = $1`, id)
	if err != nil {
		return PostView{}, false, err
	}
	v, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (PostView, error) {
		var v PostView
		err := r.Scan(&v.ID, &v.Title, &v.Score, &v.Mean, &v.UserCount, &v.AsOf, &v.CampaignSince)
		return v, err
	})
	if err == pgx.ErrNoRows {
		return PostView{}, false, nil
	}
	if err != nil {
		return PostView{}, false, err
	}
	if v.AsOf != nil {
		t := v.AsOf.UTC()
		v.AsOf = &t
	}
	stats, err := Posts(ctx, db, []int64{id})
	if err != nil {
		return PostView{}, false, err
	}
	v.Stats = stats[id]
	return v, true, nil
}

// ScoredAt reads the event time each post's score holds for, for posts
// among ids that have a score.
func ScoredAt(ctx context.Context, db DB, ids []int64) (map[int64]time.Time, error) {
	rows, err := db.Query(ctx, `SELECT post_id, as_of FROM post_scores WHERE post_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	out := map[int64]time.Time{}
	var id int64
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error { out[id] = at.UTC(); return nil })
	return out, err
}

// Unscored counts the posts with stats but no score yet.
func Unscored(ctx context.Context, db DB) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, `SELECT count(*) FROM post_stats s WHERE NOT EXISTS (SELECT 1 FROM post_scores ps WHERE ps.post_id = s.post_id)`).Scan(&n)
	return n, err
}

// Scores reads the scores of posts lo..hi (0: no bound), by post id.
func Scores(ctx context.Context, db DB, lo, hi int64) (map[int64]Score, error) {
	out := map[int64]Score{}
	err := EachScore(ctx, db, Range{From: lo, To: hi}, func(s Score) error { out[s.PostID] = s; return nil })
	return out, err
}

// Outboxed is a record waiting in the outbox for the score topic.
type Outboxed struct {
	Seq    int64
	PostID int64
	Record []byte
}

// ReadOutbox reads up to limit records waiting to be published, oldest
// first: the order in which their scores committed, for each post.
func ReadOutbox(ctx context.Context, db DB, limit int) ([]Outboxed, error) {
	rows, err := db.Query(ctx, `SELECT seq, post_id, record FROM score_outbox ORDER BY seq LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("read the score outbox: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Outboxed, error) {
		var o Outboxed
		err := r.Scan(&o.Seq, &o.PostID, &o.Record)
		return o, err
	})
}

// DeleteOutbox deletes published records.
func DeleteOutbox(ctx context.Context, db DB, seqs []int64) error {
	if _, err := db.Exec(ctx, `DELETE FROM score_outbox WHERE seq = ANY($1)`, seqs); err != nil {
		return fmt.Errorf("delete published score records: %w", err)
	}
	return nil
}

// OutboxBacklog is how many records wait and how old the oldest is.
func OutboxBacklog(ctx context.Context, db DB) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, `SELECT count(*) FROM score_outbox`).Scan(&n)
	return n, err
}

// ScoreRecords reads every post's record as the
// outbox would build it now: what the latest record of each post on the
// score topic must be once the outbox is empty.
func ScoreRecords(ctx context.Context, db DB) (map[int64][]byte, error) {
	rows, err := db.Query(ctx, `SELECT post_id, `+scoreRecord+`::text FROM post_scores`)
	if err != nil {
		return nil, err
	}
	out := map[int64][]byte{}
	var id int64
	var rec []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &rec}, func() error { out[id] = rec; return nil })
	return out, err
}
