package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/tools/testenv"
)

// campaigned stores post 1's scoring rows as the windower and the scorer
// would: twenty windows of ten new raters giving 4, then a window of 200
// new raters giving 0, held out (threshold 40), and the score 4.
func campaigned(t *testing.T, h *harness) time.Time {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var totals scoring.Totals
	var ws []scoring.Window
	for i := range 20 {
		ws = append(ws, scoring.Window{Start: t0.Add(time.Duration(i) * time.Minute), Sum: 40, Count: 10, Threshold: 40})
	}
	burst := t0.Add(20 * time.Minute)
	ws = append(ws, scoring.Window{Start: burst, Sum: 0, Count: 200, Threshold: 40, Late: 3})
	for _, w := range ws {
		totals.Replace(scoring.Window{}, w)
		if _, err := h.db.Pool.Exec(ctx, `INSERT INTO rating_averages (post_id, window_start, rating_sum, rating_count, threshold, late_count) VALUES (1, $1, $2, $3, $4, $5)`,
			w.Start, w.Sum, w.Count, w.Threshold, w.Late); err != nil {
			t.Fatal(err)
		}
	}
	asOf := burst.Add(time.Minute)
	_, err := h.db.Pool.Exec(ctx, `
		INSERT INTO posts (id, title) VALUES (1, 'campaigned');
		INSERT INTO ratings (post_id, user_id, score, rated_at, event_id, window_start) VALUES
		  (1, 'a', 4, '2026-05-01T12:00:01Z', '01a21210-a2ee-7374-aba6-54a3e2cb9927', '2026-05-01T12:00:00Z'),
		  (1, 'b', 0, '2026-05-01T12:20:01Z', '01a21210-a2ee-7374-aba6-54a3e2cb9928', '2026-05-01T12:20:00Z'),
		  (1, 'c', 0, '2026-05-01T12:20:02Z', '01a21210-a2ee-7374-aba6-54a3e2cb9929', '2026-05-01T12:20:00Z')`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.db.Pool.Exec(ctx, `
		INSERT INTO post_stats VALUES (1, 0, $1, $2, $3, $4, 10, 1, $5, 200, 40)`,
		totals.Sum, totals.Count, totals.WeightedSum, totals.Weight, burst)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.db.Pool.Exec(ctx, `
		INSERT INTO post_scores (post_id, score, user_count, mean, strategy, partition, as_of, stable_at, campaign_since)
		VALUES (1, 4, $1, $2, 'surge-guard', 0, $3, $4, $5)`,
		totals.Count, float64(totals.Sum)/float64(totals.Count), asOf, burst.Add(time.Hour), burst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.Pool.Exec(ctx, `SELECT pg_notify($1, '1'), pg_notify($2, '1')`, contract.ChannelPosts, contract.ChannelPostScores); err != nil {
		t.Fatal(err)
	}
	return burst
}

func TestExplainAndFlags(t *testing.T) {
	h := start(t)
	burst := campaigned(t, h)

	testenv.Eventually(t, 5*time.Second, func() error {
		st, _, p := h.do(t, "GET", "/v1/posts/1", "")
		f, _ := p["flags"].(map[string]any)
		if st != 200 || f["under_campaign"] != true || f["since"] != burst.Format(time.RFC3339) {
			return fmt.Errorf("post 1: %d %v", st, p)
		}
		return nil
	})

	st, _, x := h.do(t, "GET", "/v1/posts/1/explain", "")
	if st != 200 {
		t.Fatalf("explain: %d %v", st, x)
	}
	ws, _ := x["windows"].([]any)
	strat, _ := x["strategy"].(map[string]any)
	if len(ws) != 21 || x["score"] != float64(4) || x["user_count"] != float64(400) || strat["name"] != "surge-guard" || strat["surge"] != float64(4) {
		t.Fatalf("explain: %d windows, %v", len(ws), x)
	}
	normal, last := ws[0].(map[string]any), ws[20].(map[string]any)
	if normal["held_out"] != false || normal["weight"] != float64(10) || normal["baseline"] != float64(10) || !strings.Contains(normal["why"].(string), "counts fully") {
		t.Errorf("a normal window: %v", normal)
	}
	if last["held_out"] != true || last["new_raters"] != float64(200) || last["late"] != float64(3) ||
		math.Abs(last["surge_ratio"].(float64)-20) > 1e-9 || last["weight"].(float64) > 1e-6 || !strings.Contains(last["why"].(string), "held out: 200 new raters, 20.0× the typical 10.0") {
		t.Errorf("the burst: %v", last)
	}
	if f := x["flags"].(map[string]any); f["under_campaign"] != true {
		t.Errorf("flags: %v", f)
	}

	// A shorter history lists fewer windows and sums the rest.
	_, _, x = h.do(t, "GET", "/v1/posts/1/explain?history=5m", "")
	older, _ := x["older"].(map[string]any)
	if ws, _ := x["windows"].([]any); len(ws) != 5 || older["raters"] != float64(160) {
		t.Errorf("history=5m: %d windows, older %v", len(ws), older)
	}
	if st, _, p := h.do(t, "GET", "/v1/posts/1/explain?history=forever", ""); st != 400 || p["field"] != "history" {
		t.Errorf("history=forever: %d %v", st, p)
	}
	if st, _, _ := h.do(t, "GET", "/v1/posts/99/explain", ""); st != 404 {
		t.Errorf("unknown post: %d", st)
	}
}

func TestWebPages(t *testing.T) {
	h := start(t)
	campaigned(t, h)
	get := func(path string) (int, string) {
		resp, err := http.Get(h.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode == 200 && ct != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", path, ct)
		}
		return resp.StatusCode, string(b)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		st, body := get("/ui/")
		if st != 200 || !strings.Contains(body, `href="/ui/posts/1"`) || !strings.Contains(body, "under campaign since 2026-05-01 12:20 UTC") {
			return fmt.Errorf("list: %d\n%s", st, body)
		}
		return nil
	})
	st, body := get("/ui/posts/1")
	if st != 200 {
		t.Fatalf("post page: %d %s", st, body)
	}
	for _, want := range []string{`<html lang="en">`, "Under campaign since", `fill="#f4c7c3"`, `aria-labelledby="score-t score-d"`,
		`aria-labelledby="volume-t volume-d"`, "0: 2, 1: 0, 2: 0, 3: 0, 4: 1, 5: 0", "held out: 200 new raters"} {
		if !strings.Contains(body, want) {
			t.Errorf("post page lacks %q", want)
		}
	}
	// Every chart is well-formed SVG.
	for rest := body; ; {
		i := strings.Index(rest, "<svg")
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], "</svg>")
		if err := xml.Unmarshal([]byte(rest[i:i+j+6]), new(struct{})); err != nil {
			t.Errorf("chart is not well-formed: %v", err)
		}
		rest = rest[i+j+6:]
	}
	if st, _ := get("/ui/posts/99"); st != 404 {
		t.Errorf("unknown post page: %d", st)
	}
}
