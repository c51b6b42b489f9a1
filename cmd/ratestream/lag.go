package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/database"
)

// partitionLag is one row of `ratestream lag`.
type partitionLag struct {
	Partition int `json:"partition"`
	// LogEnd is the offset the next event on the partition will get.
	LogEnd int64 `json:"log_end"`
	// Stored is the windower's position in PostgreSQL (the truth).
	Stored int64 `json:"stored"`
	Lag    int64 `json:"lag"`
	// Group is the offset the windower's consumer group shows Kafka's
	// tools (copied from Stored within a second; -1: none yet).
	Group int64 `json:"group_committed"`
	// Watermark is the event time up to which the partition's windows
	// are closed (null before the first event).
	Watermark *time.Time `json:"watermark"`
	// The scorer's position: posts whose windows changed and wait to be
	// scored, how long the oldest has waited, and posts whose score is
	// still maturing and is behind the watermark.
	ScorerQueued int64   `json:"scorer_queued"`
	ScorerWait   float64 `json:"scorer_oldest_wait_seconds"`
	ScorerDue    int64   `json:"scorer_maturing_due"`
}

func lagCmd() *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "lag [-o table|json]",
		Short: "Per partition: log end, the windower's stored offset and lag, the group's committed offset, the watermark, the scorer's backlog",
		Long: `Per partition of the rating topic: the log end (broker), the windower's
stored offset and lag (PostgreSQL, the source of truth), the offset its
consumer group has committed (what kcat, kafka-consumer-groups, Burrow or
KEDA see), the watermark, and the scorer's position: posts queued for a
new score and the oldest one's wait, and maturing posts whose score is
behind the watermark. Settings: KAFKA_*, DATABASE_URL, WINDOWER_GROUP,
as the services.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg struct {
				Group string `env:"WINDOWER_GROUP" default:"ratestream-windower" help:"the windower's consumer group"`
				Kafka broker.Config
				DB    database.Config
			}
			if err := config.Load(&cfg, nil, io.Discard); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			rows, err := lagRows(ctx, cfg.Kafka, cfg.DB, cfg.Group)
			if err != nil {
				return err
			}
			return printLag(cmd.OutOrStdout(), output, rows)
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return c
}

func lagRows(ctx context.Context, kcfg broker.Config, dcfg database.Config, group string) ([]partitionLag, error) {
	ends, err := broker.LogBounds(ctx, kcfg, kcfg.Topic)
	if err != nil {
		return nil, err
	}
	parts := make([]int, 0, len(ends))
	for p := range ends {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	committed, err := broker.GroupOffsets(ctx, kcfg, group, kcfg.Topic, parts)
	if err != nil {
		return nil, err
	}
	pool, err := database.Open(ctx, dcfg)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	out := make([]partitionLag, 0, len(parts))
	for _, p := range parts {
		r := partitionLag{Partition: p, LogEnd: ends[p].End, Stored: ends[p].First, Group: -1}
		if g, ok := committed[p]; ok {
			r.Group = g
		}
		var next int64
		var wm *time.Time
		err := pool.QueryRow(ctx, `SELECT next_offset, watermark FROM consumer_offsets WHERE consumer = $1 AND topic = $2 AND partition = $3`,
			group, kcfg.Topic, p).Scan(&next, &wm)
		switch {
		case err == nil:
			r.Stored, r.Watermark = next, wm
		case !errors.Is(err, pgx.ErrNoRows): // no row: not consumed yet
			return nil, fmt.Errorf("stored offset of partition %d: %w", p, err)
		}
		r.Lag = max(0, r.LogEnd-r.Stored)
		out = append(out, r)
	}
	if err := scorerPosition(ctx, pool, group, kcfg.Topic, out); err != nil {
		return nil, err
	}
	return out, nil
}

// scorerPosition fills in the scorer's backlog per partition.
func scorerPosition(ctx context.Context, pool *pgxpool.Pool, group, topic string, rows []partitionLag) error {
	byPart := map[int]*partitionLag{}
	for i := range rows {
		byPart[rows[i].Partition] = &rows[i]
	}
	qrows, err := pool.Query(ctx, `
		SELECT partition, count(*), EXTRACT(epoch FROM now() - min(marked_at))::float8 FROM rescore_queue GROUP BY partition`)
	if err != nil {
		return fmt.Errorf("the scorer's queue: %w", err)
	}
	for qrows.Next() {
		var p int
		var n int64
		var wait float64
		if err := qrows.Scan(&p, &n, &wait); err != nil {
			qrows.Close()
			return err
		}
		if r := byPart[p]; r != nil {
			r.ScorerQueued, r.ScorerWait = n, wait
		}
	}
	qrows.Close()
	if err := qrows.Err(); err != nil {
		return err
	}
	drows, err := pool.Query(ctx, `
		SELECT ps.partition, count(*) FROM post_scores ps
		JOIN consumer_offsets co ON co.consumer = $1 AND co.topic = $2 AND co.partition = ps.partition
		WHERE ps.as_of < ps.stable_at AND ps.as_of < co.watermark
		GROUP BY ps.partition`, group, topic)
	if err != nil {
		return fmt.Errorf("the scorer's maturing posts: %w", err)
	}
	defer drows.Close()
	for drows.Next() {
		var p int
		var n int64
		if err := drows.Scan(&p, &n); err != nil {
			return err
		}
		if r := byPart[p]; r != nil {
			r.ScorerDue = n
		}
	}
	return drows.Err()
}

func printLag(w io.Writer, format string, rows []partitionLag) error {
	switch format {
	case "json":
		return printJSON(w, rows)
	case "table":
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tLOG END\tSTORED\tLAG\tGROUP COMMITTED\tWATERMARK\tSCORER QUEUED\tOLDEST WAIT\tMATURING DUE")
		for _, r := range rows {
			wm := "-"
			if r.Watermark != nil {
				wm = r.Watermark.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%s\t%d\t%.1fs\t%d\n", r.Partition, r.LogEnd, r.Stored, r.Lag, r.Group, wm,
				r.ScorerQueued, r.ScorerWait, r.ScorerDue)
		}
		return tw.Flush()
	}
	return fmt.Errorf("-o %q: want table or json", format)
}
