package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/pkg/scoring"
)

// maxHistory bounds how far back an explanation lists windows.
const maxHistory = 7 * 24 * time.Hour

// explanation is how a post's score was made, window by window, from the
// rows the scorer reads (post_stats, post_scores, rating_averages).
type explanation struct {
	PostID    int64          `json:"post_id"`
	Score     *float64       `json:"score"`
	Mean      *float64       `json:"mean"`
	UserCount int64          `json:"user_count"`
	AsOf      *time.Time     `json:"as_of"` // event time the score holds for
	Strategy  strategyJSON   `json:"strategy"`
	Flags     flagsJSON      `json:"flags"`
	From      *time.Time     `json:"history_from"` // windows before it are in Older
	Older     olderJSON      `json:"older"`
	Windows   []explainedWin `json:"windows"`

	totals scoring.Totals
	wins   []scoring.Window
	now    time.Time
}

type strategyJSON struct {
	Name          string  `json:"name"`
	Window        string  `json:"window"`
	BaselineTau   string  `json:"baseline_tau"`
	Surge         float64 `json:"surge"`
	Floor         float64 `json:"floor"`
	Maturity      string  `json:"maturity"`
	NewPostVolume float64 `json:"new_post_volume"`
}

// olderJSON sums the windows older than the listed ones.
type olderJSON struct {
	Raters int64   `json:"raters"`
	Weight float64 `json:"weight"`
}

// explainedWin is one window and what it counts for.
type explainedWin struct {
	Start     time.Time `json:"start"`
	Count     int64     `json:"count"`
	NewRaters int64     `json:"new_raters"`
	Rerates   int64     `json:"rerates"`
	Mean      float64   `json:"mean"`
	Late      int64     `json:"late"`
	// Baseline is the typical volume (new raters per window) the window's
	// threshold was made from when it opened; SurgeRatio its new raters
	// over it.
	Baseline   float64 `json:"baseline"`
	Threshold  float64 `json:"threshold"`
	SurgeRatio float64 `json:"surge_ratio"`
	// Weight is what the window counts for once mature; Maturity the
	// share of it it has now; Effective their product.
	Weight    float64 `json:"weight"`
	Maturity  float64 `json:"maturity"`
	Effective float64 `json:"effective_weight"`
	HeldOut   bool    `json:"held_out"`
	Why       string  `json:"why"`
}

func (h *handlers) strategyJSON() strategyJSON {
	p := h.params
	return strategyJSON{Name: h.strategy.Name(), Window: p.Window.String(), BaselineTau: p.BaselineTau.String(),
		Surge: p.Surge, Floor: p.Floor, Maturity: p.Maturity.String(), NewPostVolume: p.NewPost}
}

var errNoPost = errors.New("no such post")

// explain reads a post's scoring rows and explains its windows of the
// last `history` of event time before the score's as_of.
func (h *handlers) explain(ctx context.Context, id int64, history time.Duration) (*explanation, error) {
	x := &explanation{PostID: id, Strategy: h.strategyJSON(), Windows: []explainedWin{}}
	var exists bool
	var since *time.Time
	err := h.pool.QueryRow(ctx, `
		SELECT true, s.score, s.mean, COALESCE(s.user_count, 0), s.as_of, s.campaign_since,
		       COALESCE(t.rating_sum, 0), COALESCE(t.rating_count, 0), COALESCE(t.weighted_sum, 0), COALESCE(t.weight, 0)
		FROM posts p
		LEFT JOIN post_scores s ON s.post_id = p.id
		LEFT JOIN post_stats t ON t.post_id = p.id
		WHERE p.id = $1`, id).Scan(&exists, &x.Score, &x.Mean, &x.UserCount, &x.AsOf, &since,
		&x.totals.Sum, &x.totals.Count, &x.totals.WeightedSum, &x.totals.Weight)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoPost
	}
	if err != nil {
		return nil, err
	}
	x.Flags = flags(&Post{CampaignSince: since})
	if x.AsOf == nil { // not scored yet
		return x, nil
	}
	now := x.AsOf.UTC()
	x.AsOf, x.now = &now, now
	from := now.Add(-history)
	x.From = &from
	rows, err := h.pool.Query(ctx, `
		SELECT window_start, rating_sum, rating_count, rerate_count, threshold, late_count
		FROM rating_averages WHERE post_id = $1 AND window_start >= $2 ORDER BY window_start`, id, from)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	older := x.totals
	for rows.Next() {
		var w scoring.Window
		if err := rows.Scan(&w.Start, &w.Sum, &w.Count, &w.Rerates, &w.Threshold, &w.Late); err != nil {
			return nil, err
		}
		w.Start = w.Start.UTC()
		x.wins = append(x.wins, w)
		older.Replace(w, scoring.Window{Start: w.Start, Threshold: w.Threshold})
		x.Windows = append(x.Windows, h.explainWindow(w, now))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	x.Older = olderJSON{Raters: older.Count, Weight: float64(older.Weight) / 1e6}
	return x, nil
}

func (h *handlers) explainWindow(w scoring.Window, now time.Time) explainedWin {
	p := h.params
	b := scoring.BaselineOf(w.Threshold, p)
	e := explainedWin{Start: w.Start, Count: w.Count, NewRaters: w.New(), Rerates: w.Rerates, Late: w.Late,
		Baseline: b, Threshold: w.Threshold, HeldOut: w.Anomalous()}
	if w.Count > 0 {
		e.Mean = w.Mean()
	}
	if b > 0 {
		e.SurgeRatio = float64(w.New()) / b
	}
	switch h.strategy.Name() {
	case "surge-guard":
		e.Weight = w.Weight()
		e.Maturity = scoring.WindowMaturity(w, now, p)
		e.Effective = e.Weight * e.Maturity
		switch {
		case w.Count == 0:
			e.Why = "empty: every vote in it moved to a later window"
		case e.HeldOut:
			e.Why = fmt.Sprintf("held out: %d new raters, %.1f× the typical %.1f, above the threshold %.1f; counts for %.3g of them",
				w.New(), e.SurgeRatio, b, w.Threshold, Weight(w.New(), w.Threshold))
		case e.Maturity < 1:
			e.Why = fmt.Sprintf("suspect volume (%.1f× the typical %.1f): counts %.0f%% of its weight until it is %s old",
				e.SurgeRatio, b, 100*e.Maturity, p.Maturity)
		default:
			e.Why = "typical volume: counts fully"
		}
		if w.Rerates > 0 && w.Count > 0 {
			e.Why += fmt.Sprintf("; its %d re-ratings always count fully", w.Rerates)
		}
	default:
		e.Weight, e.Maturity, e.Effective = float64(w.Count), 1, float64(w.Count)
		e.HeldOut = false
		e.Why = "the " + h.strategy.Name() + " strategy does not hold windows out"
	}
	return e
}

// Weight is scoring.Weight, for a message.
func Weight(n int64, t float64) float64 { return scoring.Weight(n, t) }

// historyParam reads ?history= (a duration; default: the maturity and
// one window, what the scorer reads).
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
	history, err := h.historyParam(c, h.params.Maturity+h.params.Window)
	if err != nil {
		return err
	}
	x, err := h.explain(c, id, history)
	if errors.Is(err, errNoPost) {
		return httpserver.Bad(http.StatusNotFound, "id", "no post with id "+strconv.FormatInt(id, 10))
	}
	if err != nil {
		return unavailable("explain the score", err)
	}
	c.JSON(http.StatusOK, x)
	return nil
}

// histograms caches each post's distribution of current ratings (0..5)
// for a while: it is counted over every rating of the post.
type histograms struct {
	pool *pgxpool.Pool
	ttl  time.Duration
	mu   sync.Mutex
	m    map[int64]histEntry
}

type histEntry struct {
	at     time.Time
	counts [6]int64
}

func newHistograms(pool *pgxpool.Pool, ttl time.Duration) *histograms {
	return &histograms{pool: pool, ttl: ttl, m: map[int64]histEntry{}}
}

func (hs *histograms) get(ctx context.Context, id int64) ([6]int64, error) {
	hs.mu.Lock()
	e, ok := hs.m[id]
	hs.mu.Unlock()
	if ok && time.Since(e.at) < hs.ttl {
		return e.counts, nil
	}
	var counts [6]int64
	rows, err := hs.pool.Query(ctx, `SELECT score, count(*) FROM ratings WHERE post_id = $1 GROUP BY score`, id)
	if err != nil {
		return counts, err
	}
	defer rows.Close()
	for rows.Next() {
		var s int16
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return counts, err
		}
		if s >= 0 && s <= 5 {
			counts[s] = n
		}
	}
	if err := rows.Err(); err != nil {
		return counts, err
	}
	hs.mu.Lock()
	if len(hs.m) > 10000 {
		clear(hs.m)
	}
	hs.m[id] = histEntry{at: time.Now(), counts: counts}
	hs.mu.Unlock()
	return counts, nil
}

// finite turns NaN into nil, for JSON and templates.
func finite(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}
