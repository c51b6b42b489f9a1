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
}

func lagCmd() *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "lag [-o table|json]",
		Short: "Per partition: log end, the windower's stored offset and lag, the group's committed offset, the watermark",
		Long: `Per partition of the rating topic: the log end (broker), the windower's
stored offset and lag (PostgreSQL, the source of truth), the offset its
consumer group has committed (what kcat, kafka-consumer-groups, Burrow or
KEDA see), and the watermark. Settings: KAFKA_*, DATABASE_URL,
WINDOWER_GROUP, as the services.`,
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
	return out, nil
}

func printLag(w io.Writer, format string, rows []partitionLag) error {
	switch format {
	case "json":
		return printJSON(w, rows)
	case "table":
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tLOG END\tSTORED\tLAG\tGROUP COMMITTED\tWATERMARK")
		for _, r := range rows {
			wm := "-"
			if r.Watermark != nil {
				wm = r.Watermark.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%s\n", r.Partition, r.LogEnd, r.Stored, r.Lag, r.Group, wm)
		}
		return tw.Flush()
	}
	return fmt.Errorf("-o %q: want table or json", format)
}
