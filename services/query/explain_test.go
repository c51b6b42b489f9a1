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

	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// campaigned stores post 1's state as the windower and the scorer would,
// through the same fold: twenty minutes of ten new raters a minute giving
// 4, then a minute with 200 new raters giving 0 (three of them late),
// held out; the score is 4.
func campaigned(t *testing.T, h *harness) time.Time {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	params := scoring.DefaultParams(time.Minute)
	st := fold.NewState(params, 0)
	vote := func(user string, score int, at time.Time) {
		e, err := rating.New(1, user, score, at)
		if err != nil {
			t.Fatal(err)
		}
		st.Apply(e, 0)
	}
	for i := range 200 {
		vote(fmt.Sprintf("u%d", i), 4, t0.Add(time.Duration(i)*6*time.Second))
	}
	burst := t0.Add(20 * time.Minute)
	for i := range 200 {
		vote(fmt.Sprintf("c%d", i), 0, burst.Add(time.Duration(i)*250*time.Millisecond))
	}
	for i := range 3 {
		st.MarkLate(rating.Event{PostID: 1, RatedAt: burst.Add(time.Duration(i) * time.Second)})
	}
	if _, err := h.db.Pool.Exec(ctx, `INSERT INTO posts (id, title) VALUES (1, 'campaigned')`); err != nil {
		t.Fatal(err)
	}
	if err := tally.WriteState(ctx, h.db.Pool, st, 0); err != nil {
		t.Fatal(err)
	}
	post := st.Posts[1]
	asOf := burst.Add(time.Minute)
	score, mean := 4.0, float64(post.Totals.Sum)/float64(post.Totals.Count)
	if err := tally.WriteScores(ctx, h.db.Pool, []tally.Score{{PostID: 1, Score: &score, UserCount: post.Totals.Count, Mean: &mean,
		Strategy: "surge-guard", AsOf: asOf, StableAt: burst.Add(time.Hour), CampaignSince: &burst}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.Pool.Exec(ctx, `SELECT pg_notify($1, '1')`, contract.ChannelPosts); err != nil {
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
	if len(ws) != 21 || x["score"] != float64(4) || x["user_count"] != float64(400) || strat["name"] != "surge-guard" || strat["volume_z"] != float64(3) {
		t.Fatalf("explain: %d windows, %v", len(ws), x)
	}
	if d, _ := x["distribution"].([]any); len(d) != 6 || d[0] != float64(200) || d[4] != float64(200) {
		t.Errorf("distribution: %v", x["distribution"])
	}
	normal, last := ws[19].(map[string]any), ws[20].(map[string]any)
	if normal["held_out"] != false || normal["weight"] != float64(10) || normal["typical_activity"].(float64) < 9 || !strings.Contains(normal["why"].(string), "counts fully") {
		t.Errorf("a normal window: %v", normal)
	}
	if last["held_out"] != true || last["new_raters"] != float64(200) || last["late"] != float64(3) || last["anomalous"] != true ||
		math.Abs(last["judged_against"].(float64)-4) > 1e-9 || last["opinion_z"].(float64) < 10 || last["weight"].(float64) > 1e-6 ||
		last["reason"] != "volume and opinion" || !strings.Contains(last["why"].(string), "held out: 200 votes against a typical") {
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
		`aria-labelledby="volume-t volume-d"`, "0: 200, 1: 0, 2: 0, 3: 0, 4: 200, 5: 0", "held out: 200 votes against a typical"} {
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

// /explain explains a score with the settings the scorer made it with,
// not with the query service's own copy of them.
func TestExplainUsesTheScorersSettings(t *testing.T) {
	h := start(t)
	campaigned(t, h)
	var cfg scoring.Config
	if err := config.Load(&cfg, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	cfg.VolumeZ, cfg.OpinionZ = 5, 6
	if err := tally.WriteScoringSettings(context.Background(), h.db.Pool, "ratestream-windower", cfg); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		st, _, x := h.do(t, "GET", "/v1/posts/1/explain?history=2h", "")
		strat, _ := x["strategy"].(map[string]any)
		if st != 200 || strat["volume_z"] != float64(5) || strat["opinion_z"] != float64(6) {
			return fmt.Errorf("%d strategy %v", st, strat)
		}
		return nil
	})
}
