package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/tally"
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
	// scored, how long the oldest has waited, and posts whose score may
	// still change (a flag) and is behind the watermark.
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
new score and the oldest one's wait, and posts whose score may still
change (a campaign flag that ages) and is behind the watermark. Settings: KAFKA_*, DATABASE_URL, WINDOWER_GROUP,
as the services.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg struct {
				Group tally.Group
				Kafka broker.Config
				DB    database.Config
			}
			if err := config.Load(&cfg, nil, io.Discard); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			rows, err := lagRows(ctx, cfg.Kafka, cfg.DB, cfg.Group.Name)
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
	key := tally.Key{Consumer: group, Topic: kcfg.Topic}
	stored, err := tally.Positions(ctx, pool, key)
	if err != nil {
		return nil, err
	}
	backlog, err := tally.BacklogByPartition(ctx, pool, key)
	if err != nil {
		return nil, err
	}
	out := make([]partitionLag, 0, len(parts))
	for _, p := range parts {
		r := partitionLag{Partition: p, LogEnd: ends[p].End, Stored: ends[p].First, Group: -1}
		if g, ok := committed[p]; ok {
			r.Group = g
		}
		if s, ok := stored[p]; ok { // no row: not consumed yet
			r.Stored = s.Next
			if !s.Watermark.IsZero() {
				wm := s.Watermark
				r.Watermark = &wm
			}
		}
		r.Lag = max(0, r.LogEnd-r.Stored)
		b := backlog[p]
		r.ScorerQueued, r.ScorerWait, r.ScorerDue = b.Queued, b.OldestWait.Seconds(), b.Due
		out = append(out, r)
	}
	return out, nil
}

func printLag(w io.Writer, format string, rows []partitionLag) error {
	return printRows(w, format, rows, []string{"PARTITION", "LOG END", "STORED", "LAG", "GROUP COMMITTED", "WATERMARK", "SCORER QUEUED", "OLDEST WAIT", "MATURING DUE"},
		func(r partitionLag) []string {
			wm := "-"
			if r.Watermark != nil {
				wm = r.Watermark.UTC().Format(time.RFC3339)
			}
			return []string{fmt.Sprint(r.Partition), fmt.Sprint(r.LogEnd), fmt.Sprint(r.Stored), fmt.Sprint(r.Lag), fmt.Sprint(r.Group), wm,
				fmt.Sprint(r.ScorerQueued), fmt.Sprintf("%.1fs", r.ScorerWait), fmt.Sprint(r.ScorerDue)}
		})
}
