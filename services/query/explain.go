package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
)

// maxHistory bounds how far back an explanation lists windows.
const maxHistory = 7 * 24 * time.Hour

// explanation is how a post's score was made, window by window, from the
// rows the scorer reads (post_stats, post_scores, rating_averages): each
// window with what it was judged against when it opened, as the windower
// stored it.
type explanation struct {
	PostID    int64          `json:"post_id"`
	Score     *float64       `json:"score"`
	Mean      *float64       `json:"mean"`
	UserCount int64          `json:"user_count"`
	AsOf      *time.Time     `json:"as_of"` // event time the score holds for
	Strategy  strategyJSON   `json:"strategy"`
	Flags     flagsJSON      `json:"flags"`
	Dist      [6]int64       `json:"distribution"` // current votes by score, 0 to 5
	From      *time.Time     `json:"history_from"` // windows before it are in Older
	Older     olderJSON      `json:"older"`
	Windows   []explainedWin `json:"windows"`

	totals scoring.Totals
	stats  scoring.Stats
	wins   []scoring.Window
	now    time.Time
	// strategy and params are the scorer's, that the explanation is of.
	strategy scoring.Strategy
	params   scoring.Params
}

type strategyJSON struct {
	Name          string  `json:"name"`
	Window        string  `json:"window"`
	BaselineTau   string  `json:"baseline_tau"`
	VolumeZ       float64 `json:"volume_z"`
	OpinionZ      float64 `json:"opinion_z"`
	Floor         float64 `json:"floor"`
	NewPostVolume float64 `json:"new_post_volume"`
}

// olderJSON sums the windows older than the listed ones.
type olderJSON struct {
	Raters int64   `json:"raters"`
	Weight float64 `json:"weight"`
}

// explainedWin is one window, what it was judged against and what it
// counts for.
type explainedWin struct {
	Start        time.Time `json:"start"`
	Votes        int64     `json:"votes"`
	NewRaters    int64     `json:"new_raters"`
	ChangedVotes int64     `json:"changed_votes"`
	Retractions  int64     `json:"retractions"` // ratings taken back in the window: activity too
	Mean         float64   `json:"mean"`
	Late         int64     `json:"late"`
	// Activity: the votes cast against the post's typical activity when
	// the window opened, in standard deviations of its noise, and the
	// threshold above which the window is anomalous (lower while the
	// post's activity had been in excess for a while: sustained).
	Expected  float64  `json:"typical_activity"`
	Threshold *float64 `json:"threshold"` // null: windows from before this method, never anomalous
	ActivityZ float64  `json:"activity_z"`
	Sustained bool     `json:"sustained"`
	Anomalous bool     `json:"anomalous"`
	// Opinion: the post's opinion it is judged against (null: the post had
	// none yet), how far the window's mean departs from it in standard
	// errors, the same for the votes of the whole episode of sustained
	// activity, the recent first-time raters' opinion, and whether they
	// confirm the window's changed votes.
	Against   *float64 `json:"judged_against"`
	OpinionZ  float64  `json:"opinion_z"`
	EpisodeZ  float64  `json:"episode_z"`
	FirstTime *float64 `json:"first_time_raters_opinion"`
	Confirmed bool     `json:"confirmed_by_first_time_raters"`
	Reviewed  bool     `json:"reviewed"`
	// Factor is the share of its votes the window counts for; Weight the
	// votes' worth it counts for.
	Factor  float64 `json:"factor"`
	Weight  float64 `json:"weight"`
	HeldOut bool    `json:"held_out"`
	Reason  string  `json:"reason,omitempty"` // volume, opinion, ...: what holds it out
	Why     string  `json:"why"`
}

func newStrategyJSON(strategy scoring.Strategy, p scoring.Params) strategyJSON {
	return strategyJSON{Name: strategy.Name(), Window: p.Window.String(), BaselineTau: p.BaselineTau.String(),
		VolumeZ: p.VolumeZ, OpinionZ: p.OpinionZ, Floor: p.Floor, NewPostVolume: p.NewPost}
}

var errNoPost = errors.New("no such post")

// explain reads a post's scoring rows and explains its windows of the
// last `history` of event time before the score's as_of.
func (h *handlers) explain(ctx context.Context, pool *pgxpool.Pool, id int64, history time.Duration) (*explanation, error) {
	strategy, params := h.scoring.get(ctx)
	x := &explanation{PostID: id, Strategy: newStrategyJSON(strategy, params), Windows: []explainedWin{}, strategy: strategy, params: params}
	v, ok, err := tally.View(ctx, pool, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNoPost
	}
	x.Score, x.Mean, x.UserCount = v.Score, v.Mean, v.UserCount
	x.Flags = flags(&Post{CampaignSince: v.CampaignSince})
	if v.Stats != nil {
		x.stats, x.totals, x.Dist = v.Stats.Stats, v.Stats.Totals, v.Stats.Totals.Dist
	}
	if v.AsOf == nil { // not scored yet
		return x, nil
	}
	x.AsOf, x.now = v.AsOf, *v.AsOf
	from := x.now.Add(-history)
	x.From = &from
	if x.wins, err = tally.WindowsSince(ctx, pool, id, from); err != nil {
		return nil, err
	}
	older := x.totals
	for _, w := range x.wins {
		older.Replace(w, scoring.Window{Start: w.Start, Ref: w.Ref}, params)
		x.Windows = append(x.Windows, explainWindow(strategy, params, w))
	}
	x.Older = olderJSON{Raters: older.Count, Weight: float64(older.Weight) / 1e6}
	return x, nil
}

func explainWindow(strategy scoring.Strategy, params scoring.Params, w scoring.Window) explainedWin {
	v := scoring.VerdictOf(strategy, w, params)
	r := w.Ref
	e := explainedWin{Start: w.Start, Votes: w.Count, NewRaters: w.New(), ChangedVotes: w.Rerates, Retractions: w.Retracts, Late: w.Late,
		Expected: r.Expected, Threshold: finite(r.Threshold), ActivityZ: v.ActivityZ, Sustained: r.Sustained, Anomalous: v.Anomalous,
		Against: finite(v.Against), OpinionZ: v.OpinionZ, EpisodeZ: r.Episode, FirstTime: finite(r.NewMean),
		Confirmed: v.Confirmed, Reviewed: r.Reviewed,
		Factor: v.Factor, Weight: v.Factor * float64(w.Count), HeldOut: v.HeldOut(), Reason: v.Reason()}
	if w.Count > 0 {
		e.Mean = w.Mean()
	}
	e.Why = why(w, v, strategy.Name())
	return e
}

// why says in a sentence how the window counts.
func why(w scoring.Window, v scoring.Verdict, strategy string) string {
	r := w.Ref
	switch {
	case w.Count == 0:
		return "empty: every vote in it moved to a later window"
	case !v.Anomalous && math.IsInf(r.Threshold, 1):
		return "from before activity and opinion were judged: counts fully"
	case !v.Anomalous:
		return fmt.Sprintf("typical activity (%d votes against a typical %.1f, threshold %.1f): counts fully", w.Count, r.Expected, r.Threshold)
	case !v.HeldOut() && v.Confirmed:
		return fmt.Sprintf("%d votes against a typical %.1f, but its %d changed votes agree with what the post's first-time raters now say (%.2f): a genuine shift, counts fully",
			w.Count, r.Expected, w.Rerates, v.Against)
	case !v.HeldOut():
		return fmt.Sprintf("%d votes against a typical %.1f (%.1f standard deviations), with the post's usual opinion (mean %.2f against %.2f): counts fully",
			w.Count, r.Expected, v.ActivityZ, w.Mean(), v.Against)
	case v.Undecided():
		return fmt.Sprintf("held out: %d votes against the %.1f a new post is assumed to get, before the post had an opinion; it counts once the post's opinion agrees with its own",
			w.Count, r.Expected)
	case v.ByEpisode:
		return fmt.Sprintf("held out: activity in sustained excess (%d votes against a typical %.1f) whose votes depart from the post's opinion %.2f by %.1f standard errors; this window's mean %.2f; counts for %.0f%%",
			w.Count, r.Expected, v.Against, v.OpinionZ, w.Mean(), 100*v.Factor)
	default:
		return fmt.Sprintf("held out: %d votes against a typical %.1f (%.1f standard deviations), mean %.2f against the post's %.2f (%.1f standard errors); counts for %.0f%%",
			w.Count, r.Expected, v.ActivityZ, w.Mean(), v.Against, v.OpinionZ, 100*v.Factor)
	}
}

// historyParam reads ?history= (a duration; default: the hour of windows
// that may still flag the post, what the scorer reads).
func (h *handlers) historyParam(c *gin.Context, def time.Duration) (time.Duration, error) {
	raw, ok := c.GetQuery("history")
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d <= 0 || d > maxHistory {
		return 0, httpserver.Bad(http.StatusBadRequest, "history", "history must be a duration from 1s to "+maxHistory.String()+", such as 90m or 24h")
	}
	return d, nil
}

func postID(c *gin.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, httpserver.Bad(http.StatusBadRequest, "id", "post id must be a positive integer")
	}
	return id, nil
}

func (h *handlers) explainV1(c *gin.Context) error {
	id, err := postID(c)
	if err != nil {
		return err
	}
	_, params := h.scoring.get(c)
	history, err := h.historyParam(c, params.FlagFor()+params.Window)
	if err != nil {
		return err
	}
	body, err := h.guard.answer(c, fmt.Sprintf("explain/%d/%d", id, history), func(ctx context.Context, pool *pgxpool.Pool) ([]byte, error) {
		x, err := h.explain(ctx, pool, id, history)
		if err != nil {
			return nil, err
		}
		return json.Marshal(x)
	})
	if err != nil {
		return explainError(id, err)
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
	return nil
}

// explainError is the answer to an explanation or page that failed.
func explainError(id int64, err error) error {
	var p *httpserver.Problem
	switch {
	case errors.Is(err, errNoPost):
		return httpserver.Bad(http.StatusNotFound, "id", "no post with id "+strconv.FormatInt(id, 10))
	case errors.As(err, &p):
		return err
	default:
		return unavailable("explain the score", err)
	}
}

// finite turns NaN into nil, for JSON and templates.
func finite(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}
