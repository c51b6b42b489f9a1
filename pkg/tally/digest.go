package tally

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Digests are a fingerprint of the derived state, per part and per post:
// two databases that hold the same state for a post have the same digests
// for it. Each is computed in SQL, so that millions of rows never leave
// the server, with times in UTC so that the servers' time zones do not
// matter. Wall-clock columns (when a row was written) are left out.
type Digests map[string]map[int64]string

// Parts of a digest, in the order they are computed.
var digestParts = []struct{ name, sql string }{
	{"ratings", `SELECT post_id, count(*) || ' ratings summing ' || sum(score) || ', digest ' ||
		md5(string_agg(user_id || ':' || score || ':' || event_id || ':' || (rated_at AT TIME ZONE 'UTC') || ':' || (window_start AT TIME ZONE 'UTC') || ':' || rerate || ':' || retracted, ',' ORDER BY user_id COLLATE "C"))
		FROM ratings GROUP BY post_id`},
	{"windows", `SELECT post_id, count(*) || ' windows summing ' || sum(rating_sum) || '/' || sum(rating_count) || ', digest ' ||
		md5(string_agg(((window_start AT TIME ZONE 'UTC'), rating_sum, rating_count, rerate_count, rerate_sum, late_count, retract_count,
		                expected, threshold, sustained, ref_mean, ref_weight, episode_z, new_mean, new_weight, new_excess, reviewed)::text, ',' ORDER BY window_start))
		FROM rating_averages GROUP BY post_id`},
	{"totals", `SELECT post_id, concat_ws(' ', 'partition', partition, 'sum', rating_sum, 'count', rating_count,
		'weighted', weighted_sum, weight, 'dist', dist::text, 'tracker',
		(baseline, baseline_seen, sustain, episode_count, episode_sum, new_count, new_sum, new_sustain,
		 first_window AT TIME ZONE 'UTC', current_window AT TIME ZONE 'UTC')::text,
		'pending', (SELECT string_agg((t AT TIME ZONE 'UTC')::text, ',') FROM unnest(pending) AS t),
		'held', (held_since AT TIME ZONE 'UTC')::text, (held_last AT TIME ZONE 'UTC')::text)
		FROM post_stats`},
	{"score", `SELECT post_id, concat_ws(' ', 'score', coalesce(score::text, 'null'), 'raters', user_count, 'mean', coalesce(mean::text, 'null'),
		strategy, 'as of', as_of AT TIME ZONE 'UTC', 'stable at', stable_at AT TIME ZONE 'UTC',
		'campaign since', coalesce((campaign_since AT TIME ZONE 'UTC')::text, 'null'),
		'dist', dist::text, 'activity', activity, coalesce((activity_at AT TIME ZONE 'UTC')::text, 'null')) FROM post_scores`},
}

// DigestParts names the parts of a digest, in order.
func DigestParts() []string {
	out := make([]string, len(digestParts))
	for i, p := range digestParts {
		out[i] = p.name
	}
	return out
}

// Digest fingerprints the derived state of every post.
func Digest(ctx context.Context, db DB) (Digests, error) {
	d := Digests{}
	for _, p := range digestParts {
		rows, err := db.Query(ctx, p.sql)
		if err != nil {
			return nil, fmt.Errorf("digest %s: %w", p.name, err)
		}
		m := map[int64]string{}
		var id int64
		var s string
		if _, err := pgx.ForEachRow(rows, []any{&id, &s}, func() error { m[id] = s; return nil }); err != nil {
			return nil, fmt.Errorf("digest %s: %w", p.name, err)
		}
		d[p.name] = m
	}
	return d, nil
}

// Sums folds each part into one digest over every post, for a test to
// compare two states at a glance.
func (d Digests) Sums() map[string]string {
	out := map[string]string{}
	for part, posts := range d {
		h := md5.New()
		for _, id := range slices.Sorted(maps.Keys(posts)) {
			fmt.Fprintf(h, "%d=%s\n", id, posts[id])
		}
		out[part] = fmt.Sprintf("%d posts %s", len(posts), hex.EncodeToString(h.Sum(nil)))
	}
	return out
}

// PostPartitions reads the partition each post with stats belongs to.
func PostPartitions(ctx context.Context, db DB) (map[int64]int, error) {
	rows, err := db.Query(ctx, `SELECT post_id, partition FROM post_stats`)
	if err != nil {
		return nil, err
	}
	out := map[int64]int{}
	var id int64
	var p int
	_, err = pgx.ForEachRow(rows, []any{&id, &p}, func() error { out[id] = p; return nil })
	return out, err
}
