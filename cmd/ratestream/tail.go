package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/postscore"
	"github.com/ratestream/ratestream/pkg/rating"
)

// tailLine is one event as `ratestream tail` prints it.
type tailLine struct {
	Partition int               `json:"partition"`
	Offset    int64             `json:"offset"`
	Event     *rating.Event     `json:"event,omitempty"`
	Score     *postscore.Record `json:"score,omitempty"` // --scores
	Error     string            `json:"error,omitempty"` // not a valid event: why
	Raw       string            `json:"raw,omitempty"`   // its value, when not valid
}

func tailCmd() *cobra.Command {
	var (
		post, partition int64
		from            string
		follow, scores  bool
	)
	c := &cobra.Command{
		Use:   "tail [--scores] [--post ID | --partition N] [--from OFFSET|TIME] [--follow=false]",
		Short: "Print rating events, or with --scores score records, as JSON lines",
		Long: `Print the rating topic's events as JSON lines (partition, offset, the
decoded event, or why a message is not one); with --scores the score
topic's records instead (KAFKA_SCORE_TOPIC, post-scores.v1: every change
of a post's score). --post reads only the partition that post lives on
and keeps only its events (and erasures, which concern every post);
--from starts at an offset or at an RFC 3339 time (looked up by the
broker), by default at the end; --follow=false stops at the end present
at the start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := kafkaSettings()
			if err != nil {
				return err
			}
			if scores {
				cfg.Topic = cfg.ScoreTopic
			}
			ctx := cmd.Context()
			parts, err := broker.Partitions(ctx, cfg, cfg.Topic)
			if err != nil {
				return err
			}
			switch {
			case post > 0:
				parts = []int{broker.PartitionOf(post, len(parts))}
			case partition >= 0:
				parts = []int{int(partition)}
			}
			return tail(ctx, cmd.OutOrStdout(), cfg, parts, from, follow, post, scores)
		},
	}
	c.Flags().Int64Var(&post, "post", 0, "only this post's events")
	c.Flags().Int64Var(&partition, "partition", -1, "only this partition")
	c.Flags().StringVar(&from, "from", "end", "first offset, an RFC 3339 time, 'start' or 'end'")
	c.Flags().BoolVar(&follow, "follow", true, "keep printing new events")
	c.Flags().BoolVar(&scores, "scores", false, "the score topic's records instead of rating events")
	return c
}

func tail(ctx context.Context, w io.Writer, cfg broker.Config, parts []int, from string, follow bool, post int64, scores bool) error {
	ends, err := broker.LogBounds(ctx, cfg, cfg.Topic)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	errc := make(chan error, len(parts))
	for _, p := range parts {
		go func() {
			errc <- func() error {
				start, err := startOffset(ctx, cfg, p, from, ends[p])
				if err != nil {
					return err
				}
				end := ends[p].End
				if !follow && start >= end {
					return nil
				}
				r, err := broker.NewPartitionReader(cfg, cfg.Topic, p, start, broker.Fetch{MaxWait: 100 * time.Millisecond})
				if err != nil {
					return err
				}
				defer r.Close()
				for {
					m, err := r.FetchMessage(ctx)
					if err != nil {
						if errors.Is(err, context.Canceled) {
							return nil
						}
						return err
					}
					line := tailLine{Partition: m.Partition, Offset: m.Offset}
					var of int64 // the post it concerns; 0: every post
					if scores {
						if r, err := postscore.Unmarshal(m.Value); err != nil {
							line.Error, line.Raw = err.Error(), string(m.Value)
						} else {
							line.Score, of = &r, r.PostID
						}
					} else if e, err := rating.Unmarshal(m.Value); err != nil {
						line.Error, line.Raw = err.Error(), string(m.Value)
					} else {
						line.Event, of = &e, e.PostID
					}
					if post == 0 || (line.Error == "" && (of == post || of == 0)) {
						mu.Lock()
						err = enc.Encode(line)
						mu.Unlock()
						if err != nil {
							return err
						}
					}
					if !follow && m.Offset >= end-1 {
						return nil
					}
				}
			}()
		}()
	}
	var first error
	for range parts {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func startOffset(ctx context.Context, cfg broker.Config, partition int, from string, b broker.Bounds) (int64, error) {
	switch from {
	case "end", "":
		return b.End, nil
	case "start":
		return b.First, nil
	}
	if n, err := strconv.ParseInt(from, 10, 64); err == nil {
		return max(n, b.First), nil
	}
	t, err := time.Parse(time.RFC3339Nano, from)
	if err != nil {
		return 0, fmt.Errorf("--from %q: want an offset, an RFC 3339 time, start or end", from)
	}
	return broker.OffsetAt(ctx, cfg, cfg.Topic, partition, t)
}
