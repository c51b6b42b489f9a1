package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/tally"
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
			r, err := verify(ctx, a, b, groupA, cmp.Or(groupB, groupA), topic)
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
	f.StringVar(&a, "database", "", "one database (URL), usually the live one")
	f.StringVar(&b, "against", "", "the other database (URL)")
	f.StringVar(&groupA, "group", "ratestream-windower", "the consumer key of the stored offsets in --database")
	f.StringVar(&groupB, "against-group", "", "the consumer key in --against (default: --group)")
	f.StringVar(&topic, "topic", "ratings.v1", "the rating topic")
	f.StringVarP(&output, "output", "o", "text", "text or json")
	sharedSetting(f, "database", "DATABASE_URL")
	sharedSetting(f, "group", "WINDOWER_GROUP")
	sharedSetting(f, "topic", "KAFKA_TOPIC")
	return c
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

	oa, err := tally.Offsets(ctx, pa, tally.Key{Consumer: groupA, Topic: topic})
	if err != nil {
		return r, err
	}
	ob, err := tally.Offsets(ctx, pb, tally.Key{Consumer: groupB, Topic: topic})
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
	partA, err := tally.PostPartitions(ctx, pa)
	if err != nil {
		return r, err
	}
	partB, err := tally.PostPartitions(ctx, pb)
	if err != nil {
		return r, err
	}
	inScope := func(post int64) bool {
		for _, parts := range []map[int64]int{partA, partB} {
			if p, ok := parts[post]; ok {
				return comparable[p]
			}
		}
		return true // no totals on either side: compare what there is
	}
	digA, err := tally.Digest(ctx, pa)
	if err != nil {
		return r, fmt.Errorf("--database: %w", err)
	}
	digB, err := tally.Digest(ctx, pb)
	if err != nil {
		return r, fmt.Errorf("--against: %w", err)
	}
	posts := map[int64]bool{}
	for _, part := range tally.DigestParts() {
		da, db := digA[part], digB[part]
		for _, post := range slices.Sorted(maps.Keys(union(da, db))) {
			if !inScope(post) {
				continue
			}
			posts[post] = true
			x, okA := da[post]
			y, okB := db[post]
			switch {
			case !okA:
				r.Differences = append(r.Differences, fmt.Sprintf("post %d: %s only in --against: %s", post, part, y))
			case !okB:
				r.Differences = append(r.Differences, fmt.Sprintf("post %d: %s only in --database: %s", post, part, x))
			case x != y:
				r.Differences = append(r.Differences, fmt.Sprintf("post %d: %s differ: %s | %s", post, part, x, y))
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
