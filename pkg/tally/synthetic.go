package tally

import (
	"context"
	"fmt"
	"time"
)

// Synthetic is derived state made up in bulk, in SQL, for benchmarks that
// need millions of stored rows without running the pipeline: Votes votes
// (i = 0 .. Votes-1) on Posts posts from FirstPost on, vote i on post
// FirstPost + i / (Votes/Posts) by user "device-id-<i mod Votes/Posts>",
// with score (i*7) mod 6, at Start + i*Step.
type Synthetic struct {
	FirstPost   int64
	Posts       int64
	Votes       int64
	Start       time.Time
	Step        time.Duration
	WindowWidth time.Duration // the windows' length (WINDOW)
	// Windows also stores the windows and the posts' totals those votes
	// make, every window counting fully (as windows from before activity
	// and opinion were judged do), the posts on partition 0.
	Windows bool
}

// Synthesize writes s.
func Synthesize(ctx context.Context, db DB, s Synthetic) error {
	per := max(s.Votes/max(s.Posts, 1), 1)
	stmts := []string{`
		INSERT INTO ratings (post_id, user_id, score, rated_at, event_id, window_start)
		SELECT $1 + i / $2, 'device-id-' || (i % $2), (i * 7) % 6, $4::timestamptz + i * $5::interval, gen_random_uuid(),
		       date_bin($6::interval, $4::timestamptz + i * $5::interval, timestamptz 'epoch')
		FROM generate_series(0, $3 - 1) AS i`}
	if s.Windows {
		stmts = append(stmts, `
		INSERT INTO rating_averages (post_id, window_start, rating_sum, rating_count, threshold)
		SELECT post_id, window_start, sum(score), count(*), 'Infinity' FROM ratings
		WHERE post_id BETWEEN $1 AND $1 + $3 / $2 GROUP BY 1, 2`, `
		INSERT INTO post_stats (post_id, partition, rating_sum, rating_count, weighted_sum, weight, dist,
		                        baseline, baseline_seen, first_window, current_window)
		SELECT a.post_id, 0, sum(a.rating_sum), sum(a.rating_count), sum(a.rating_sum) * 1000000, sum(a.rating_count) * 1000000,
		       (SELECT ARRAY[count(*) FILTER (WHERE score = 0), count(*) FILTER (WHERE score = 1), count(*) FILTER (WHERE score = 2),
		                     count(*) FILTER (WHERE score = 3), count(*) FILTER (WHERE score = 4), count(*) FILTER (WHERE score = 5)]
		        FROM ratings r WHERE r.post_id = a.post_id),
		       avg(a.rating_count), 1, min(a.window_start), max(a.window_start)
		FROM rating_averages a WHERE a.post_id BETWEEN $1 AND $1 + $3 / $2 GROUP BY 1`)
	}
	for _, q := range stmts {
		if _, err := db.Exec(ctx, q, s.FirstPost, per, s.Votes, s.Start, s.Step.String(), s.WindowWidth.String()); err != nil {
			return fmt.Errorf("synthesize: %w", err)
		}
	}
	_, err := db.Exec(ctx, `ANALYZE`)
	return err
}

// SynthesizeScores gives posts first .. first+n-1 made-up scores: post g
// scores 1 + (g mod 400)/100 from 10 + g mod 3000 raters, all of whom
// rated the score rounded down, and has g mod 50 honest votes per window
// until the current minute.
func SynthesizeScores(ctx context.Context, db DB, first, n int64) error {
	_, err := db.Exec(ctx, `
		INSERT INTO post_scores (post_id, score, user_count, mean, strategy, partition, as_of, stable_at, dist, activity, activity_at)
		SELECT g, 1 + (g % 400) / 100.0, 10 + g % 3000, 1 + (g % 400) / 100.0, 'surge-guard', 0, now(), now(),
		       ARRAY(SELECT CASE WHEN i = 1 + (g % 400) / 100 THEN 10 + g % 3000 ELSE 0 END FROM generate_series(0, 5) i),
		       g % 50, date_trunc('minute', now())
		FROM generate_series($1::bigint, $1 + $2 - 1) g`, first, n)
	if err != nil {
		return fmt.Errorf("synthesize scores: %w", err)
	}
	return nil
}
