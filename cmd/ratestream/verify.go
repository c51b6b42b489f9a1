package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/ratestream/ratestream/pkg/database"
)

// errDiffer makes verify exit 1: the databases differ.
var errDiffer = errors.New("the databases differ")

// verifyReport is what verify found.
type verifyReport struct {
	Posts       int      `json:"posts_compared"`
	Partitions  []int    `json:"partitions_compared"`
	Skipped     []string `json:"partitions_not_comparable"` // offsets differ
	Differences []string `json:"differences"`
}

func verifyCmd() *cobra.Command {
	var a, b, groupA, groupB, topic, output string
	c := &cobra.Command{
		Use:   "verify --database URL --against URL",
		Short: "Compare the derived state of two databases post by post (exit 1 on any difference)",
		Long: `Compare, post by post, the derived state of two databases: each user's
latest rating, the windows, the post's running totals and its score. Only
partitions both have consumed to the same offset are compared (the others
are listed as not comparable). Prints 'identical' or every difference;
exit status 0 when identical, 1 on a difference, 2 on an error.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true, // a difference is not a usage error
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a == "" || b == "" {
				return errors.New("--database and --against are both required")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Minute)
			defer cancel()
			r, err := verify(ctx, a, b, groupA, cmpOr(groupB, groupA), topic)
			if err != nil {
				return err
			}
			if err := printVerify(cmd.OutOrStdout(), output, r); err != nil {
				return err
			}
			if len(r.Differences) > 0 {
				return errDiffer
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&a, "database", "", "one database (URL)")
	f.StringVar(&b, "against", "", "the other database (URL)")
	f.StringVar(&groupA, "group", "ratestream-windower", "the consumer key of the stored offsets in --database")
	f.StringVar(&groupB, "against-group", "", "the consumer key in --against (default: --group)")
	f.StringVar(&topic, "topic", "ratings.v1", "the rating topic")
	f.StringVarP(&output, "output", "o", "text", "text or json")
	return c
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// fingerprints are the per-post digests verify compares, each computed in
// SQL so that millions of rows never leave the server; times in UTC so
// that the servers' time zones do not matter.
var fingerprints = []struct{ name, sql string }{
	{"ratings", `SELECT post_id, count(*) || ' ratings summing ' || sum(score) || ', digest ' ||
		md5(string_agg(user_id || ':' || score || ':' || event_id || ':' || (rated_at AT TIME ZONE 'UTC') || ':' || (window_start AT TIME ZONE 'UTC') || ':' || rerate, ',' ORDER BY user_id COLLATE "C"))
		FROM ratings GROUP BY post_id`},
	{"windows", `SELECT post_id, count(*) || ' windows summing ' || sum(rating_sum) || '/' || sum(rating_count) || ', digest ' ||
		md5(string_agg((window_start AT TIME ZONE 'UTC') || ':' || rating_sum || ':' || rating_count || ':' || rerate_count || ':' || late_count || ':' || threshold, ',' ORDER BY window_start))
		FROM rating_averages GROUP BY post_id`},
	{"totals", `SELECT post_id, concat_ws(' ', 'partition', partition, 'sum', rating_sum, 'count', rating_count,
		'weighted', weighted_sum, weight, 'baseline', baseline, baseline_seen, 'current', current_window AT TIME ZONE 'UTC', current_count, current_threshold)
		FROM post_stats`},
	{"score", `SELECT post_id, concat_ws(' ', 'score', coalesce(score::text, 'null'), 'raters', user_count, 'mean', coalesce(mean::text, 'null'),
		strategy, 'as of', as_of AT TIME ZONE 'UTC', 'stable at', stable_at AT TIME ZONE 'UTC',
		'campaign since', coalesce((campaign_since AT TIME ZONE 'UTC')::text, 'null')) FROM post_scores`},
}

func verify(ctx context.Context, urlA, urlB, groupA, groupB, topic string) (verifyReport, error) {
	var r verifyReport
	pa, err := database.Open(ctx, database.Config{URL: urlA, MaxConns: 2})
	if err != nil {
		return r, err
	}
	defer pa.Close()
	pb, err := database.Open(ctx, database.Config{URL: urlB, MaxConns: 2})
	if err != nil {
		return r, err
	}
	defer pb.Close()

	oa, err := storedOffsets(ctx, pa, groupA, topic)
	if err != nil {
		return r, err
	}
	ob, err := storedOffsets(ctx, pb, groupB, topic)
	if err != nil {
		return r, err
	}
	comparable := map[int]bool{}
	for _, p := range slices.Sorted(maps.Keys(union(oa, ob))) {
		if oa[p] == ob[p] {
			comparable[p] = true
			r.Partitions = append(r.Partitions, p)
		} else {
			r.Skipped = append(r.Skipped, fmt.Sprintf("partition %d: offset %d vs %d", p, oa[p], ob[p]))
		}
	}
	partA, err := column(ctx, pa, `SELECT post_id, partition::text FROM post_stats`)
	if err != nil {
		return r, err
	}
	partB, err := column(ctx, pb, `SELECT post_id, partition::text FROM post_stats`)
	if err != nil {
		return r, err
	}
	inScope := func(post int64) bool {
		for _, parts := range []map[int64]string{partA, partB} {
			if p, ok := parts[post]; ok {
				var n int
				_, _ = fmt.Sscan(p, &n)
				return comparable[n]
			}
		}
		return true // no totals on either side: compare what there is
	}
	posts := map[int64]bool{}
	for _, fp := range fingerprints {
		da, err := column(ctx, pa, fp.sql)
		if err != nil {
			return r, fmt.Errorf("%s of --database: %w", fp.name, err)
		}
		db, err := column(ctx, pb, fp.sql)
		if err != nil {
			return r, fmt.Errorf("%s of --against: %w", fp.name, err)
		}
		for _, post := range slices.Sorted(maps.Keys(union(da, db))) {
			if !inScope(post) {
				continue
			}
			posts[post] = true
			x, okA := da[post]
			y, okB := db[post]
			switch {
			case !okA:
				r.Differences = append(r.Differences, fmt.Sprintf("post %d: %s only in --against: %s", post, fp.name, y))
			case !okB:
				r.Differences = append(r.Differences, fmt.Sprintf("post %d: %s only in --database: %s", post, fp.name, x))
			case x != y:
				r.Differences = append(r.Differences, fmt.Sprintf("post %d: %s differ: %s | %s", post, fp.name, x, y))
			}
		}
	}
	r.Posts = len(posts)
	return r, nil
}

// union is the keys of a and b.
func union[K comparable, A, B any](a map[K]A, b map[K]B) map[K]bool {
	out := make(map[K]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func storedOffsets(ctx context.Context, pool *pgxpool.Pool, group, topic string) (map[int]int64, error) {
	rows, err := pool.Query(ctx, `SELECT partition, next_offset FROM consumer_offsets WHERE consumer = $1 AND topic = $2`, group, topic)
	if err != nil {
		return nil, fmt.Errorf("stored offsets: %w", err)
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var p int
		var n int64
		if err := rows.Scan(&p, &n); err != nil {
			return nil, err
		}
		out[p] = n
	}
	return out, rows.Err()
}

// column runs a query of (post_id, text) rows into a map.
func column(ctx context.Context, pool *pgxpool.Pool, sql string) (map[int64]string, error) {
	rows, err := pool.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]string{}
	for rows.Next() {
		var id int64
		var v string
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rows.Err()
}

func printVerify(w io.Writer, format string, r verifyReport) error {
	switch format {
	case "json":
		return printJSON(w, r)
	case "text":
		for _, s := range r.Skipped {
			fmt.Fprintf(w, "not comparable: %s\n", s)
		}
		if len(r.Differences) == 0 {
			fmt.Fprintf(w, "identical: %d posts over %d partitions\n", r.Posts, len(r.Partitions))
			return nil
		}
		for _, d := range r.Differences {
			fmt.Fprintln(w, d)
		}
		fmt.Fprintf(w, "%d differences over %d posts\n", len(r.Differences), r.Posts)
		return nil
	}
	return fmt.Errorf("-o %q: want text or json", format)
}
