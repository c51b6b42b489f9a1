package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/tally"
)

// offsetReset is one row of `ratestream reset-offsets`.
type offsetReset struct {
	Partition int   `json:"partition"`
	Stored    int64 `json:"stored"` // -1: none stored yet
	LogStart  int64 `json:"log_start"`
	LogEnd    int64 `json:"log_end"`
	New       int64 `json:"new"`
}

func resetOffsetsCmd() *cobra.Command {
	var (
		earliest, latest, execute bool
		toOffset                  int64 = -1
		toTime, partitions        string
		output                    string
	)
	c := &cobra.Command{
		Use:   "reset-offsets (--to-earliest | --to-latest | --to-offset N | --to-datetime TIME) [--partitions 0,3] [--execute]",
		Short: "Move the windower's stored offsets (a dry run unless --execute), after the topic was created again or retention removed events",
		Long: `Move the windower's stored offsets in PostgreSQL, the position it
resumes from, as Kafka's own kafka-consumer-groups --reset-offsets does for
a group. Without --execute it prints what it would do and changes
nothing. A windower stops a partition whose stored offset is outside its
log (windower_offset_outside_log, readiness): this is how an operator
says where it resumes.

  --to-earliest   the first offset in the log (a topic created again: its
                  events from the start; retention: the oldest kept)
  --to-latest     the log end (skip what is there now)
  --to-offset N   that offset, within the log
  --to-datetime T the first event at or after T (RFC 3339)

Going back is safe: the fold ignores a rating it already counted (same
event id, or an older one for the same user). Going forward skips
events for good: their ratings are not counted. Settings: KAFKA_*,
DATABASE_URL, WINDOWER_GROUP, as the services.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			chosen := 0
			for _, b := range []bool{earliest, latest, toOffset >= 0, toTime != ""} {
				if b {
					chosen++
				}
			}
			if chosen != 1 {
				return fmt.Errorf("say exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime TIME")
			}
			var at time.Time
			if toTime != "" {
				t, err := time.Parse(time.RFC3339Nano, toTime)
				if err != nil {
					return fmt.Errorf("--to-datetime %q: want RFC 3339, e.g. 2026-11-26T00:00:00Z", toTime)
				}
				at = t
			}
			var cfg struct {
				Group tally.Group
				Kafka broker.Config
				DB    database.Config
			}
			if err := config.Load(&cfg, nil, io.Discard); err != nil {
				return err
			}
			if err := cfg.Kafka.Check(); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			bounds, err := broker.LogBounds(ctx, cfg.Kafka, cfg.Kafka.Topic)
			if err != nil {
				return err
			}
			parts, err := choosePartitions(partitions, bounds)
			if err != nil {
				return err
			}
			pool, err := database.Open(ctx, cfg.DB)
			if err != nil {
				return err
			}
			defer pool.Close()
			key := tally.Key{Consumer: cfg.Group.Name, Topic: cfg.Kafka.Topic}
			stored, err := tally.Offsets(ctx, pool, key)
			if err != nil {
				return err
			}
			var rows []offsetReset
			next := map[int]int64{}
			for _, p := range parts {
				b := bounds[p]
				r := offsetReset{Partition: p, Stored: -1, LogStart: b.First, LogEnd: b.End}
				if s, ok := stored[p]; ok {
					r.Stored = s
				}
				switch {
				case earliest:
					r.New = b.First
				case latest:
					r.New = b.End
				case toOffset >= 0:
					if toOffset < b.First || toOffset > b.End {
						return fmt.Errorf("--to-offset %d: partition %d's log holds %d..%d", toOffset, p, b.First, b.End)
					}
					r.New = toOffset
				default:
					off, err := broker.OffsetAt(ctx, cfg.Kafka, cfg.Kafka.Topic, p, at)
					if err != nil {
						return err
					}
					r.New = max(off, b.First)
				}
				rows = append(rows, r)
				next[p] = r.New
			}
			if execute {
				if err := tally.SetOffsets(ctx, pool, key, next); err != nil {
					return err
				}
			}
			if err := printResets(cmd.OutOrStdout(), output, rows); err != nil {
				return err
			}
			if !execute && output != "json" {
				fmt.Fprintln(cmd.OutOrStdout(), "dry run: nothing changed; --execute stores the NEW offsets")
			}
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&earliest, "to-earliest", false, "the first offset in each log")
	f.BoolVar(&latest, "to-latest", false, "the end of each log")
	f.Int64Var(&toOffset, "to-offset", -1, "this offset")
	f.StringVar(&toTime, "to-datetime", "", "the first event at or after this time (RFC 3339)")
	f.StringVar(&partitions, "partitions", "all", "comma-separated partition ids, or all")
	f.BoolVar(&execute, "execute", false, "store the new offsets (without it: a dry run)")
	f.StringVarP(&output, "output", "o", "table", "table or json")
	return c
}

// choosePartitions parses --partitions against the topic's partitions.
func choosePartitions(s string, bounds map[int]broker.Bounds) ([]int, error) {
	if s == "all" || s == "" {
		out := make([]int, 0, len(bounds))
		for p := range bounds {
			out = append(out, p)
		}
		slices.Sort(out)
		return out, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("--partitions %q: want ids such as 0,3 or all", s)
		}
		if _, ok := bounds[p]; !ok {
			return nil, fmt.Errorf("--partitions: the topic has no partition %d", p)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

func printResets(w io.Writer, format string, rows []offsetReset) error {
	return printRows(w, format, rows, []string{"PARTITION", "STORED", "LOG START", "LOG END", "NEW"},
		func(r offsetReset) []string {
			stored := "-"
			if r.Stored >= 0 {
				stored = strconv.FormatInt(r.Stored, 10)
			}
			return []string{fmt.Sprint(r.Partition), stored, fmt.Sprint(r.LogStart), fmt.Sprint(r.LogEnd), fmt.Sprint(r.New)}
		})
}
