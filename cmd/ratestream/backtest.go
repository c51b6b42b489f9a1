package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/plot"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
)

// backtestRow is one post of a backtest (also the CSV and Parquet row).
type backtestRow struct {
	PostID    int64    `json:"post_id" parquet:"post_id"`
	UserCount int64    `json:"user_count" parquet:"user_count"`
	Mean      *float64 `json:"mean" parquet:"mean,optional"`
	// Live is the score the scorer stored; Backtest the one the tested
	// strategy and parameters give from the same windows, at the same
	// event time (the partition's watermark).
	Live     *float64 `json:"live_score" parquet:"live_score,optional"`
	Backtest *float64 `json:"backtest_score" parquet:"backtest_score,optional"`
	// Difference is Backtest - Live; MaxDifference the largest |difference|
	// between the two over the post's event time, window by window.
	Difference    *float64 `json:"difference" parquet:"difference,optional"`
	MaxDifference float64  `json:"max_abs_difference" parquet:"max_abs_difference"`
	// Windows held out, live and under the tested strategy and
	// parameters.
	HeldOutLive     int64 `json:"held_out_windows_live" parquet:"held_out_windows_live"`
	HeldOutBacktest int64 `json:"held_out_windows_backtest" parquet:"held_out_windows_backtest"`
	Windows         int64 `json:"windows" parquet:"windows"`
}

// backtestReport is the whole run, for -o json.
type backtestReport struct {
	LiveStrategy string            `json:"live_strategy"`
	Strategy     string            `json:"strategy"`
	Settings     map[string]string `json:"settings"`
	Posts        []backtestRow     `json:"posts"`
}

func backtestCmd() *cobra.Command {
	var strategy, posts, output, csvOut, parquetOut, plots string
	var sets []string
	c := &cobra.Command{
		Use:   "backtest [--strategy NAME] [--set SCORING_VOLUME_Z=4 ...] [--posts LO-HI] [--csv FILE] [--parquet FILE] [--plots DIR]",
		Short: "Score posts from their stored windows with another strategy or parameters, writing nothing live",
		Long: `Score posts from the windows stored in DATABASE_URL with another strategy
(--strategy) or other scoring parameters (--set NAME=VALUE, the scorer's
SCORING_* settings), at the same event time as the live score (the
partition's watermark), and compare: per post, the live score, the
backtest score, their difference and the largest difference over the
post's history, window by window. Nothing is written to the database.

The live settings are read from the environment as the scorer reads them.
A window keeps what it was judged against when it opened (the post's
typical activity and opinion then); when --set changes a setting, every
window is judged again, oldest first, through the same tracker the
windower keeps, from the windows' stored votes (as they are now, after
re-ratings moved between windows, each window's votes taken at once): an
approximation of what a replay with those settings (ratestream replay)
gives exactly. WINDOW cannot change: the windows are stored at its
length.

--csv and --parquet write the table; --plots writes DIR/post-ID.svg: the
live and backtest scores over event time against the plain mean, with
the windows held out under the tested parameters shaded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg struct {
				Group   tally.Group
				Scoring scoring.Config
				Kafka   broker.Config
				DB      database.Config
			}
			if err := config.Load(&cfg, nil, io.Discard); err != nil {
				return err
			}
			test := cfg.Scoring
			overrides := map[string]string{}
			for _, s := range sets {
				k, v, ok := strings.Cut(s, "=")
				if !ok {
					return fmt.Errorf("--set %q: want NAME=VALUE", s)
				}
				if k == "WINDOW" {
					return fmt.Errorf("--set WINDOW: the windows are stored at WINDOW=%s and cannot change in a backtest", cfg.Scoring.Window)
				}
				overrides[k] = v
			}
			if err := config.Override(&test, overrides); err != nil {
				return fmt.Errorf("--set: %w", err)
			}
			if strategy != "" {
				test.Strategy = strategy
			}
			lo, hi, err := postRange(posts)
			if err != nil {
				return err
			}
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			bt, err := newBacktest(cfg.Scoring, test)
			if err != nil {
				return err
			}
			if plots != "" {
				if err := os.MkdirAll(plots, 0o755); err != nil {
					return err
				}
				bt.plots = plots
			}
			pool, err := database.Open(cmd.Context(), cfg.DB)
			if err != nil {
				return err
			}
			defer pool.Close()
			total, err := tally.CountPosts(cmd.Context(), pool, lo, hi)
			if err != nil {
				return err
			}
			bar := newProgress(cmd.ErrOrStderr(), "posts", total)
			rows, err := bt.run(cmd.Context(), pool, tally.Key{Consumer: cfg.Group.Name, Topic: cfg.Kafka.Topic}, lo, hi, func(n int64) { bar.update(n, nil) })
			bar.finish()
			if err != nil {
				return err
			}
			for path, format := range map[string]string{csvOut: "csv", parquetOut: "parquet"} {
				if path == "" {
					continue
				}
				if err := writeBacktest(path, format, rows); err != nil {
					return err
				}
			}
			settings := config.Describe(test)
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), backtestReport{LiveStrategy: cfg.Scoring.Strategy, Strategy: test.Strategy, Settings: settings, Posts: rows})
			}
			return printBacktest(cmd.OutOrStdout(), cfg.Scoring.Strategy, test, overrides, rows)
		},
	}
	f := c.Flags()
	f.StringVar(&strategy, "strategy", "", "the strategy to test (default: the live one); one of "+strings.Join(scoring.Names(), ", "))
	f.StringArrayVar(&sets, "set", nil, "a scoring setting to change, NAME=VALUE (repeatable): SCORING_VOLUME_Z, SCORING_OPINION_Z, SCORING_FLOOR, SCORING_BASELINE_TAU, SCORING_NEW_POST_VOLUME")
	f.StringVar(&posts, "posts", "", "only post ids LO-HI")
	f.StringVarP(&output, "output", "o", "table", "table or json")
	f.StringVar(&csvOut, "csv", "", "also write the table to this CSV file")
	f.StringVar(&parquetOut, "parquet", "", "also write the table to this Parquet file")
	f.StringVar(&plots, "plots", "", "write an SVG plot per post into this directory")
	return c
}

// postRange parses --posts LO-HI; empty is every post.
func postRange(s string) (int64, int64, error) {
	if s == "" {
		return 0, math.MaxInt64, nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.ParseInt(lo, 10, 64)
	b, err2 := strconv.ParseInt(hi, 10, 64)
	if !ok || err1 != nil || err2 != nil || a > b {
		return 0, 0, fmt.Errorf("--posts %q: want LO-HI", s)
	}
	return a, b, nil
}

// backtest scores posts with the live and the tested strategy.
type backtest struct {
	live, test       scoring.Strategy
	liveP, testP     scoring.Params
	liveName, testID string
	rejudge          bool // the tested parameters judge windows otherwise
	plots            string
}

func newBacktest(live, test scoring.Config) (*backtest, error) {
	var bt backtest
	var err error
	if bt.live, bt.liveP, err = live.StrategyAndParams(); err != nil {
		return nil, err
	}
	if bt.test, bt.testP, err = test.StrategyAndParams(); err != nil {
		return nil, err
	}
	bt.rejudge = bt.liveP != bt.testP
	bt.liveName, bt.testID = "live: "+live.Strategy, "backtest: "+test.Strategy
	return &bt, nil
}

const backtestChunk = 500 // posts read per round trip

// run backtests the posts lo..hi, a chunk at a time, so that memory holds
// one chunk's windows whatever the number of posts.
func (bt *backtest) run(ctx context.Context, pool *pgxpool.Pool, key tally.Key, lo, hi int64, tick func(int64)) ([]backtestRow, error) {
	var out []backtestRow
	after := lo - 1
	for {
		posts, err := tally.ChunkForBacktest(ctx, pool, key, after, hi, backtestChunk)
		if err != nil {
			return nil, err
		}
		if len(posts) == 0 {
			return out, nil
		}
		for _, p := range posts {
			row, chart := bt.post(p)
			out = append(out, row)
			if bt.plots != "" {
				if err := os.WriteFile(filepath.Join(bt.plots, fmt.Sprintf("post-%d.svg", p.ID)), []byte(chart.SVG()), 0o644); err != nil {
					return nil, err
				}
			}
		}
		after = posts[len(posts)-1].ID
		tick(int64(len(out)))
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// maxEvaluations bounds the points of a post's history that are scored
// (strategies that read the whole history cost O(windows) each).
const maxEvaluations = 1000

// post backtests one post: the live and the tested strategy over the
// post's history, each window's end an evaluation point, and at the
// watermark (scoring.History).
func (bt *backtest) post(p *tally.BacktestPost) (backtestRow, plot.Chart) {
	liveW, liveS := p.Windows, p.Stats
	testW, testS := liveW, liveS
	if bt.rejudge {
		testW, testS = rejudge(liveW, bt.testP)
	}
	row := backtestRow{PostID: p.ID, Live: p.Live, Windows: int64(len(liveW))}
	chart := plot.Chart{
		Title:  fmt.Sprintf("post %d: %s against %s", p.ID, bt.testID, bt.liveName),
		Desc:   "Scores over event time, each recomputed from the stored windows, against the plain mean; shaded: windows held out under the tested strategy and parameters.",
		XLabel: "event time (UTC)", YLabel: "score", YMin: 0, YMax: 5, Clock: true, SpanLabel: "held out (backtest)",
	}
	for i := range liveW {
		if scoring.VerdictOf(bt.live, liveW[i], bt.liveP).HeldOut() {
			row.HeldOutLive++
		}
		if scoring.VerdictOf(bt.test, testW[i], bt.testP).HeldOut() {
			row.HeldOutBacktest++
			chart.Spans = append(chart.Spans, plot.Span{From: testW[i].Start, To: testW[i].Start.Add(bt.testP.Window)})
		}
	}
	if len(liveW) == 0 {
		return row, chart
	}
	// The same windows, the same evaluation points (each window's end and
	// the watermark), through the same code the web page draws with.
	live := scoring.History(bt.live, bt.liveP, liveS, liveW, p.Now, p.Reached, maxEvaluations)
	test := scoring.History(bt.test, bt.testP, testS, testW, p.Now, p.Reached, maxEvaluations)
	mean := plot.Line{Name: "plain mean", Color: "#000", Dash: "6 4", Width: 2}
	liveL := plot.Line{Name: bt.liveName, Color: plot.Palette[0]}
	testL := plot.Line{Name: bt.testID, Color: plot.Palette[1]}
	for i := range live {
		mean.Points = append(mean.Points, plot.Point{At: live[i].At, Y: live[i].Mean})
		liveL.Points = append(liveL.Points, plot.Point{At: live[i].At, Y: live[i].Score})
		testL.Points = append(testL.Points, plot.Point{At: test[i].At, Y: test[i].Score})
		if d := math.Abs(test[i].Score - live[i].Score); !math.IsNaN(d) {
			row.MaxDifference = math.Max(row.MaxDifference, d)
		}
	}
	row.UserCount = liveS.Totals.Count
	if liveS.Totals.Count > 0 {
		m := float64(liveS.Totals.Sum) / float64(liveS.Totals.Count)
		row.Mean = &m
	}
	if last := test[len(test)-1]; !math.IsNaN(last.Score) {
		s := last.Score
		row.Backtest = &s
		if p.Live != nil {
			d := s - *p.Live
			row.Difference = &d
		}
	}
	chart.Start, chart.End = liveW[0].Start, p.Now
	chart.Lines = []plot.Line{mean, liveL, testL}
	return row, chart
}

// rejudge judges the windows ws (oldest first) again under params p,
// through the same scoring.Stats the windower keeps, from the windows'
// stored votes, each window's at once; it returns them with what the
// post's stats would be.
func rejudge(ws []scoring.Window, p scoring.Params) ([]scoring.Window, scoring.Stats) {
	out := make([]scoring.Window, len(ws))
	at := make(map[time.Time]int, len(ws))
	var st scoring.Stats
	for i, w := range ws {
		var cur scoring.Window
		if j, ok := at[st.Tracker.Current]; ok {
			cur = out[j]
		}
		for _, due := range st.Rated(w.Start, cur, p) {
			if j, ok := at[due]; ok {
				out[j] = st.Review(out[j], p)
			}
		}
		out[i] = st.Change(scoring.Window{}, false, w.Start, scoring.Delta{Sum: w.Sum, Count: w.Count, Rerates: w.Rerates, RerateSum: w.RerateSum}, p)
		at[w.Start] = i
	}
	return out, st
}

func writeBacktest(path, format string, rows []backtestRow) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	i := 0
	_, err = sink(format, f, newProgress(io.Discard, "", 0),
		[]string{"post_id", "user_count", "mean", "live_score", "backtest_score", "difference", "max_abs_difference", "held_out_windows_live", "held_out_windows_backtest", "windows"},
		func(r backtestRow) []string {
			return []string{itoa(r.PostID), itoa(r.UserCount), optFloat(r.Mean), optFloat(r.Live), optFloat(r.Backtest), optFloat(r.Difference),
				strconv.FormatFloat(r.MaxDifference, 'g', -1, 64), itoa(r.HeldOutLive), itoa(r.HeldOutBacktest), itoa(r.Windows)}
		}, func(emit func(backtestRow) error) error {
			for ; i < len(rows); i++ {
				if err := emit(rows[i]); err != nil {
					return err
				}
			}
			return nil
		})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func printBacktest(w io.Writer, live string, test scoring.Config, overrides map[string]string, rows []backtestRow) error {
	var changed []string
	for k, v := range overrides {
		changed = append(changed, k+"="+v)
	}
	sort.Strings(changed)
	fmt.Fprintf(w, "live %s; backtest %s %s\n", live, test.Strategy, strings.Join(changed, " "))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POST\tRATERS\tMEAN\tLIVE\tBACKTEST\tDIFF\tMAX |DIFF|\tHELD OUT LIVE\tHELD OUT BACKTEST")
	var sum, worst float64
	var worstPost int64
	var n int
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%.4f\t%d\t%d\n", r.PostID, r.UserCount, num4(r.Mean), num4(r.Live), num4(r.Backtest), num4(r.Difference),
			r.MaxDifference, r.HeldOutLive, r.HeldOutBacktest)
		if r.Difference != nil {
			n++
			sum += math.Abs(*r.Difference)
			if d := math.Abs(*r.Difference); d >= worst {
				worst, worstPost = d, r.PostID
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n == 0 {
		_, err := fmt.Fprintf(w, "%d posts; none with both a live and a backtest score\n", len(rows))
		return err
	}
	_, err := fmt.Fprintf(w, "%d posts; mean |difference| %.4f; largest %.4f (post %d)\n", len(rows), sum/float64(n), worst, worstPost)
	return err
}

func num4(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f, 'f', 4, 64)
}
