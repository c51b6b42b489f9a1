package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
)

// The exported rows. Parquet schema: integers as INT64/INT32, texts as
// UTF-8 strings, times as TIMESTAMP(MICROS) in UTC; CSV has the same
// columns with times in RFC 3339, UTC.

// ratingRow is a user's latest rating of a post (table ratings).
type ratingRow struct {
	PostID      int64  `parquet:"post_id"`
	UserID      string `parquet:"user_id,dict"`
	Score       int32  `parquet:"score"`
	RatedAt     int64  `parquet:"rated_at,timestamp(microsecond)"`
	EventID     string `parquet:"event_id"`
	WindowStart int64  `parquet:"window_start,timestamp(microsecond)"`
	Rerate      bool   `parquet:"rerate"`
}

// windowRow is one window of a post (table rating_averages): its votes,
// the changed votes among them, and what it was judged against when it
// opened: the post's typical activity, the threshold above which its
// activity was anomalous (+Inf for windows from before that was judged),
// and the post's opinion (null: none yet).
type windowRow struct {
	PostID      int64    `parquet:"post_id"`
	WindowStart int64    `parquet:"window_start,timestamp(microsecond)"`
	RatingSum   int64    `parquet:"rating_sum"`
	RatingCount int64    `parquet:"rating_count"`
	RerateCount int64    `parquet:"rerate_count"`
	RerateSum   int64    `parquet:"rerate_sum"`
	Expected    float64  `parquet:"typical_activity"`
	Threshold   float64  `parquet:"threshold"`
	Against     *float64 `parquet:"judged_against,optional"`
}

// scoreRow is a post's score (table post_scores); score and mean are
// null before the first rating counts.
type scoreRow struct {
	PostID    int64    `parquet:"post_id"`
	Score     *float64 `parquet:"score,optional"`
	UserCount int64    `parquet:"user_count"`
	Mean      *float64 `parquet:"mean,optional"`
	Strategy  string   `parquet:"strategy,dict"`
	AsOf      int64    `parquet:"as_of,timestamp(microsecond)"`
}

// eventRow is one event of the topic, as it is there.
type eventRow struct {
	Partition int32  `parquet:"partition"`
	Offset    int64  `parquet:"offset"`
	EventID   string `parquet:"event_id"`
	PostID    *int64 `parquet:"post_id,optional"` // null in an erasure
	UserID    string `parquet:"user_id,dict"`     // the user's pseudonym
	Op        string `parquet:"op,dict"`          // rate, retract or erase
	Score     *int32 `parquet:"score,optional"`   // null in a retraction
	RatedAt   int64  `parquet:"rated_at,timestamp(microsecond)"`
}

// exportFilter narrows an export.
type exportFilter struct {
	since, until time.Time // on rated_at (window_start for windows, as_of for scores)
	lo, hi       int64     // post ids, inclusive (postRange)
}

func (f exportFilter) post(id int64) bool { return id >= f.lo && id <= f.hi }
func (f exportFilter) at(t time.Time) bool {
	return (f.since.IsZero() || !t.Before(f.since)) && (f.until.IsZero() || t.Before(f.until))
}

func exportCmd() *cobra.Command {
	var format, out, since, until, posts string
	c := &cobra.Command{
		Use:   "export ratings|windows|scores|events [-o parquet|csv] --file FILE [--since TIME] [--until TIME] [--posts LO-HI]",
		Short: "Export derived state or the raw topic to Parquet or CSV, streaming",
		Long: `Export, streaming with bounded memory, one of: ratings (each user's
latest rating of each post), windows, scores (from DATABASE_URL), or events
(the rating topic as it is, from KAFKA_*). Parquet columns: integers,
UTF-8 strings, times as TIMESTAMP(MICROS) in UTC; CSV: the same columns
with a header, times in RFC 3339 UTC. --since and --until bound rated_at
(window_start for windows, as_of for scores); --posts a range of post ids.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"ratings", "windows", "scores", "events"},
		RunE: func(cmd *cobra.Command, args []string) error {
			var f exportFilter
			var err error
			if f.since, err = optTime("--since", since); err != nil {
				return err
			}
			if f.until, err = optTime("--until", until); err != nil {
				return err
			}
			if f.lo, f.hi, err = postRange(posts); err != nil {
				return err
			}
			if out == "" {
				return errors.New("--file FILE is required")
			}
			if format != "parquet" && format != "csv" {
				return fmt.Errorf("-o %q: want parquet or csv", format)
			}
			file, err := os.Create(out)
			if err != nil {
				return err
			}
			n, err := export(cmd.Context(), args[0], format, file, f, cmd.ErrOrStderr())
			if cerr := file.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exported %d %s to %s\n", n, args[0], out)
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&format, "output", "o", "parquet", "the format: parquet or csv (-o is the output format in every subcommand)")
	fl.StringVar(&out, "file", "", "the file to write")
	fl.StringVar(&since, "since", "", "from this RFC 3339 time on")
	fl.StringVar(&until, "until", "", "before this RFC 3339 time")
	fl.StringVar(&posts, "posts", "", "only post ids LO-HI")
	return c
}

func optTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time", flag, s)
	}
	return t, nil
}

func export(ctx context.Context, what, format string, w io.Writer, f exportFilter, status io.Writer) (int64, error) {
	switch what {
	case "events":
		cfg, err := kafkaSettings()
		if err != nil {
			return 0, err
		}
		bounds, err := broker.LogBounds(ctx, cfg, cfg.Topic)
		if err != nil {
			return 0, err
		}
		var total int64
		for _, b := range bounds {
			total += b.End - b.First
		}
		bar := newProgress(status, "events", total)
		defer bar.finish()
		return sink(format, w, bar, []string{"partition", "offset", "event_id", "post_id", "user_id", "op", "score", "rated_at"},
			func(r eventRow) []string {
				score := ""
				if r.Score != nil {
					score = itoa(int64(*r.Score))
				}
				post := ""
				if r.PostID != nil {
					post = itoa(*r.PostID)
				}
				return []string{itoa(int64(r.Partition)), itoa(r.Offset), r.EventID, post, asText(r.UserID), r.Op, score, us(r.RatedAt)}
			}, func(emit func(eventRow) error) error { return topicEvents(ctx, cfg, f, emit) })
	case "ratings", "windows", "scores":
	default:
		return 0, fmt.Errorf("export %q: want ratings, windows, scores or events", what)
	}
	var cfg struct{ DB database.Config }
	if err := config.Load(&cfg, nil, io.Discard); err != nil {
		return 0, err
	}
	pool, err := database.Open(ctx, cfg.DB)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	table := map[string]string{"ratings": "ratings", "windows": "rating_averages", "scores": "post_scores"}[what]
	estimate, err := tally.Estimate(ctx, pool, table) // enough for an ETA
	if err != nil {
		return 0, err
	}
	bar := newProgress(status, what, estimate)
	defer bar.finish()
	r := tally.Range{From: f.lo, To: f.hi, Since: f.since, Until: f.until}
	switch what {
	case "ratings":
		return sink(format, w, bar, []string{"post_id", "user_id", "score", "rated_at", "event_id", "window_start", "rerate"},
			func(r ratingRow) []string {
				return []string{itoa(r.PostID), asText(r.UserID), itoa(int64(r.Score)), us(r.RatedAt), r.EventID, us(r.WindowStart), strconv.FormatBool(r.Rerate)}
			}, func(emit func(ratingRow) error) error {
				return tally.EachVote(ctx, pool, r, func(v tally.Vote) error {
					return emit(ratingRow{PostID: v.PostID, UserID: v.UserID, Score: int32(v.Score), RatedAt: v.RatedAt.UnixMicro(),
						EventID: v.EventID, WindowStart: v.WindowStart.UnixMicro(), Rerate: v.Rerate})
				})
			})
	case "windows":
		return sink(format, w, bar, []string{"post_id", "window_start", "rating_sum", "rating_count", "rerate_count", "rerate_sum", "typical_activity", "threshold", "judged_against"},
			func(r windowRow) []string {
				return []string{itoa(r.PostID), us(r.WindowStart), itoa(r.RatingSum), itoa(r.RatingCount), itoa(r.RerateCount), itoa(r.RerateSum),
					strconv.FormatFloat(r.Expected, 'g', -1, 64), strconv.FormatFloat(r.Threshold, 'g', -1, 64), optFloat(r.Against)}
			}, func(emit func(windowRow) error) error {
				return tally.EachWindow(ctx, pool, r, func(post int64, x scoring.Window) error {
					row := windowRow{PostID: post, WindowStart: x.Start.UnixMicro(), RatingSum: x.Sum, RatingCount: x.Count,
						RerateCount: x.Rerates, RerateSum: x.RerateSum, Expected: x.Ref.Expected, Threshold: x.Ref.Threshold}
					if !math.IsNaN(x.Ref.Mean) {
						m := x.Ref.Mean
						row.Against = &m
					}
					return emit(row)
				})
			})
	default: // scores
		return sink(format, w, bar, []string{"post_id", "score", "user_count", "mean", "strategy", "as_of"},
			func(r scoreRow) []string {
				return []string{itoa(r.PostID), optFloat(r.Score), itoa(r.UserCount), optFloat(r.Mean), r.Strategy, us(r.AsOf)}
			}, func(emit func(scoreRow) error) error {
				return tally.EachScore(ctx, pool, r, func(s tally.Score) error {
					return emit(scoreRow{PostID: s.PostID, Score: s.Score, UserCount: s.UserCount, Mean: s.Mean, Strategy: s.Strategy, AsOf: s.AsOf.UnixMicro()})
				})
			})
	}
}

func topicEvents(ctx context.Context, cfg broker.Config, f exportFilter, emit func(eventRow) error) error {
	parts, err := broker.Partitions(ctx, cfg, cfg.Topic)
	if err != nil {
		return err
	}
	for _, p := range parts {
		err := broker.ReadPartition(ctx, cfg, cfg.Topic, p, func(m kafka.Message) error {
			e, err := rating.Unmarshal(m.Value)
			// An erasure concerns every post: it is in every range.
			if err != nil || (!e.Erase && !f.post(e.PostID)) || !f.at(e.RatedAt) {
				return nil // not an event (see ratestream dlq), or filtered out
			}
			row := eventRow{Partition: int32(m.Partition), Offset: m.Offset, EventID: e.EventID.String(),
				UserID: e.UserID, Op: e.Op(), RatedAt: e.RatedAt.UnixMicro()}
			if !e.Erase {
				row.PostID = &e.PostID
			}
			if !e.Retract && !e.Erase {
				score := int32(e.Score)
				row.Score = &score
			}
			return emit(row)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// asText writes a client's text for a CSV cell that a spreadsheet shows as
// text, never runs: a value starting with = + - @, a tab or a carriage
// return (a formula to Excel, LibreOffice and Google Sheets) gets a
// leading apostrophe, and so does one already starting with an
// apostrophe, so that removing one leading apostrophe from such a cell
// always gives the value back (docs/data.md).
func asText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r'", rune(s[0])) {
		return "'" + s
	}
	return s
}

// rowGroupRows is how many rows a Parquet row group holds.
const rowGroupRows = 128 << 10

// sink writes the rows that produce emits, in chunks: memory stays
// bounded whatever the number of rows.
func sink[T any](format string, w io.Writer, bar *progress, header []string, record func(T) []string, produce func(emit func(T) error) error) (int64, error) {
	var n int64
	if format == "csv" {
		bw := bufio.NewWriterSize(w, 1<<16)
		cw := csv.NewWriter(bw)
		if err := cw.Write(header); err != nil {
			return 0, err
		}
		err := produce(func(r T) error {
			n++
			if n%4096 == 0 {
				bar.update(n, nil)
			}
			return cw.Write(record(r))
		})
		cw.Flush()
		if err == nil {
			err = cw.Error()
		}
		if err == nil {
			err = bw.Flush()
		}
		return n, err
	}
	pw := parquet.NewGenericWriter[T](w, parquet.Compression(&parquet.Zstd))
	buf := make([]T, 0, 8192)
	inGroup := 0
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := pw.Write(buf); err != nil {
			return err
		}
		inGroup += len(buf)
		buf = buf[:0]
		// A row group is held in memory until it is written out: close
		// one every rowGroupRows rows so that memory stays bounded.
		if inGroup >= rowGroupRows {
			inGroup = 0
			return pw.Flush()
		}
		return nil
	}
	err := produce(func(r T) error {
		n++
		if n%4096 == 0 {
			bar.update(n, nil)
		}
		buf = append(buf, r)
		if len(buf) == cap(buf) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if cerr := pw.Close(); err == nil {
		err = cerr
	}
	return n, err
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func us(micros int64) string { return time.UnixMicro(micros).UTC().Format(time.RFC3339Nano) }

func optFloat(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'g', -1, 64)
}
