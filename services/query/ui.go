package main

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratestream/ratestream/pkg/plot"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
)

// The web page: server-side HTML and SVG, no JavaScript.

//go:embed ui/*.html
var uiFiles embed.FS

var uiTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"score": func(f *float64) string {
		if f == nil {
			return "–"
		}
		return strconv.FormatFloat(*f, 'f', 2, 64)
	},
	"dur": shortDuration,
	"rank": func(r *rankJSON) string {
		if r == nil || r.v == nil {
			return "–"
		}
		return strconv.FormatFloat(*r.v, 'f', 2, 64)
	},
	// dist writes a post's ratings by score, 5 first.
	"dist": func(d [6]int64) string {
		parts := make([]string, 0, len(d))
		for s := len(d) - 1; s >= 0; s-- {
			parts = append(parts, fmt.Sprintf("%d: %d", s, d[s]))
		}
		return strings.Join(parts, " · ")
	},
	"when": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
}).ParseFS(uiFiles, "ui/*.html"))

const (
	uiPageSize     = 25
	sparkHistory   = 6 * time.Hour
	uiHistory      = 24 * time.Hour
	sparkMaxPoints = 120
)

type uiRow struct {
	*Post
	Spark template.HTML
	Rank  *rankJSON // sorted lists only
}

// uiList lists posts by id (after) or sorted, best or trending first
// (sort, cursor), with the same rankings as the API.
func (h *handlers) uiList(c *gin.Context) error {
	order, cur, err := listOrder(c)
	if err != nil {
		return err
	}
	after, err := queryInt(c, "after", 0, 0, math.MaxInt64)
	if err != nil {
		return err
	}
	if err := h.viewReady(c); err != nil {
		return err
	}
	var posts []*Post
	var ranks []float64
	next := ""
	if order == "id" {
		var more bool
		posts, more = h.view.After(after, uiPageSize)
		if more && len(posts) > 0 {
			next = "/ui/?after=" + strconv.FormatInt(posts[len(posts)-1].ID, 10)
		}
	} else {
		var nc *cursor
		posts, ranks, nc = h.ranks.page(order, cur, uiPageSize)
		if nc != nil {
			next = "/ui/?cursor=" + nc.String()
		}
	}
	sparks, err := h.sparklines(c, posts)
	if err != nil {
		return unavailable("read the scores' history", err)
	}
	rows := make([]uiRow, len(posts))
	for i, p := range posts {
		rows[i] = uiRow{Post: p, Spark: sparks[p.ID]}
		if ranks != nil {
			rows[i].Rank = newRank(ranks[i])
		}
	}
	return render(c, "list.html", map[string]any{"Rows": rows, "Next": next, "First": after == 0 && cur == nil,
		"Sort": order, "Sorted": order != "id"})
}

// sparklines draws each post's score over its last six hours of windows.
func (h *handlers) sparklines(ctx context.Context, posts []*Post) (map[int64]template.HTML, error) {
	strategy, params := h.scoring.get(ctx)
	out := map[int64]template.HTML{}
	if len(posts) == 0 {
		return out, nil
	}
	ids := make([]int64, len(posts))
	for i, p := range posts {
		ids[i] = p.ID
	}
	stats, err := tally.Posts(ctx, h.read, ids)
	if err != nil {
		return nil, err
	}
	asOf, err := tally.ScoredAt(ctx, h.read, ids)
	if err != nil {
		return nil, err
	}
	type state struct {
		stats scoring.Stats
		now   time.Time
		wins  []scoring.Window
	}
	st := map[int64]*state{}
	var spans []tally.Span
	for id, p := range stats {
		now, ok := asOf[id]
		if !ok {
			continue
		}
		st[id] = &state{stats: p.Stats, now: now}
		spans = append(spans, tally.Span{Post: id, After: now.Add(-sparkHistory).Add(-time.Nanosecond)})
	}
	wins, err := tally.WindowsIn(ctx, h.read, spans)
	if err != nil {
		return nil, err
	}
	for id, ws := range wins {
		st[id].wins = ws
	}
	for id, x := range st {
		hist := scoring.History(strategy, params, x.stats, x.wins, x.now, time.Time{}, sparkMaxPoints)
		if len(hist) == 0 {
			continue
		}
		pts := make([]plot.Point, len(hist))
		for i, p := range hist {
			pts[i] = plot.Point{At: p.At, Y: p.Score}
		}
		label := "score over the last six hours of ratings"
		if a, b := firstLast(hist); a != nil && b != nil {
			label = fmt.Sprintf("score over the last six hours of ratings: from %.2f to %.2f", *a, *b)
		}
		out[id] = template.HTML(plot.Sparkline(label, pts, 120, 24, 0, 5)) // #nosec G203 -- drawn by pkg/plot, which escapes its text
	}
	return out, nil
}

func firstLast(h []scoring.HistoryPoint) (*float64, *float64) {
	var a, b *float64
	for _, p := range h {
		if f := finite(p.Score); f != nil {
			if a == nil {
				a = f
			}
			b = f
		}
	}
	return a, b
}

func (h *handlers) uiPost(c *gin.Context) error {
	id, err := postID(c)
	if err != nil {
		return err
	}
	history, err := h.historyParam(c, uiHistory)
	if err != nil {
		return err
	}
	body, err := h.guard.answer(c, fmt.Sprintf("ui/%d/%d", id, history), func(ctx context.Context, pool *pgxpool.Pool) ([]byte, error) {
		return h.renderPost(ctx, pool, id, history)
	})
	if err != nil {
		return explainError(id, err)
	}
	writeHTML(c, body)
	return nil
}

// renderPost renders a post's page: its explanation over history, charts
// and held-out windows.
func (h *handlers) renderPost(ctx context.Context, pool *pgxpool.Pool, id int64, history time.Duration) ([]byte, error) {
	x, err := h.explain(ctx, pool, id, history)
	if err != nil {
		return nil, err
	}
	p, ok := h.view.Get(id)
	if !ok {
		if p, err = lookupPost(ctx, h.pool, h.view, id); err != nil {
			return nil, fmt.Errorf("read the post: %w", err)
		}
	}
	var heldOut []explainedWin
	for i := len(x.Windows) - 1; i >= 0 && len(heldOut) < 20; i-- {
		if x.Windows[i].HeldOut {
			heldOut = append(heldOut, x.Windows[i])
		}
	}
	data := map[string]any{"Post": p, "X": x, "HeldOut": heldOut, "History": shortDuration(history), "Params": x.params}
	if len(x.wins) > 0 {
		scoreChart, volumeChart := h.postCharts(p, x)
		data["ScoreChart"] = template.HTML(scoreChart)   // #nosec G203 -- drawn by pkg/plot, which escapes its text
		data["VolumeChart"] = template.HTML(volumeChart) // #nosec G203 -- idem
	}
	labels := []string{"0", "1", "2", "3", "4", "5"}
	data["Histogram"] = template.HTML(plot.Histogram("Current ratings", "score", labels, x.Dist[:])) // #nosec G203 -- idem
	var body bytes.Buffer
	if err := uiTemplates.ExecuteTemplate(&body, "post.html", data); err != nil {
		return nil, err
	}
	return body.Bytes(), nil
}

// postCharts draws the score against the plain mean, and the volume
// against the typical volume, with the held-out windows shaded.
func (h *handlers) postCharts(p *Post, x *explanation) (string, string) {
	start, end := x.wins[0].Start, x.now
	var spans []plot.Span
	for _, w := range x.wins {
		if scoring.VerdictOf(x.strategy, w, x.params).HeldOut() {
			spans = append(spans, plot.Span{From: w.Start, To: w.Start.Add(x.params.Window)})
		}
	}
	hist := scoring.History(x.strategy, x.params, x.stats, x.wins, x.now, time.Time{}, 1500)
	score := plot.Line{Name: "score (" + x.strategy.Name() + ")", Color: plot.Palette[0], Width: 2}
	mean := plot.Line{Name: "plain mean", Color: "#000", Dash: "6 4", Width: 1.5}
	for _, pt := range hist {
		score.Points = append(score.Points, plot.Point{At: pt.At, Y: pt.Score})
		mean.Points = append(mean.Points, plot.Point{At: pt.At, Y: pt.Mean})
	}
	sc := plot.Chart{
		ID:    "score",
		Title: fmt.Sprintf("Score of post %d over event time", p.ID),
		Desc: fmt.Sprintf("The score, recomputed at the end of each window from the windows as they are now, against the plain mean of every rater; %d windows held out are shaded.",
			len(spans)),
		XLabel: "event time (UTC)", YLabel: "score", Start: start, End: end, YMin: 0, YMax: 5, Clock: true,
		Spans: spans, SpanLabel: "held out", Lines: []plot.Line{mean, score},
	}
	vol := plot.Bars{Name: "votes per window", Color: "#6baed6", Width: x.params.Window}
	base := plot.Line{Name: "typical activity", Color: "#000", Dash: "6 4", Width: 1.5}
	thr := plot.Line{Name: "threshold", Color: "#b2182b", Dash: "2 3", Width: 1.5}
	for _, w := range x.wins {
		vol.Points = append(vol.Points, plot.Point{At: w.Start, Y: float64(w.Count)})
		base.Points = append(base.Points, plot.Point{At: w.Start, Y: w.Ref.Expected})
		if !math.IsInf(w.Ref.Threshold, 0) {
			thr.Points = append(thr.Points, plot.Point{At: w.Start, Y: w.Ref.Threshold})
		}
	}
	vc := plot.Chart{
		ID:     "volume",
		Title:  fmt.Sprintf("Votes per window of post %d", p.ID),
		Desc:   fmt.Sprintf("Votes (first and changed) per %s window against the post's typical activity and its anomaly threshold; %d windows held out (anomalous activity with a departing opinion) are shaded.", x.params.Window, len(spans)),
		XLabel: "event time (UTC)", YLabel: "votes per window", Start: start, End: end.Add(x.params.Window), Clock: true,
		Spans: spans, SpanLabel: "held out", Bars: []plot.Bars{vol}, Lines: []plot.Line{base, thr},
	}
	return sc.SVG(), vc.SVG()
}

// shortDuration writes 24h, 35m or 1h30m rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func render(c *gin.Context, name string, data any) error {
	htmlHeaders(c)
	c.Status(http.StatusOK)
	return uiTemplates.ExecuteTemplate(c.Writer, name, data)
}

func htmlHeaders(c *gin.Context) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:")
}

// writeHTML answers a page rendered before.
func writeHTML(c *gin.Context, body []byte) {
	htmlHeaders(c)
	c.Status(http.StatusOK)
	_, _ = c.Writer.Write(body)
}
