package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ratestream/ratestream/simulation/loadgen"
	"github.com/ratestream/ratestream/simulation/sim"
)

// watched are the posts sampled during the demo: the two the campaign
// targets and three it leaves alone.
var watched = []int{1, 2, 10, 11, 12}

// ledger remembers what was sent and acknowledged, to know each post's
// honest mean: the latest score of every honest user.
type ledger struct {
	mu     sync.Mutex
	latest map[int]map[string]int // post -> user -> score
}

func (l *ledger) record(post int, user string, score int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.latest[post] == nil {
		l.latest[post] = map[string]int{}
	}
	l.latest[post][user] = score
}

func (l *ledger) mean(post int) (float64, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sum, n := 0, 0
	for _, s := range l.latest[post] {
		sum += s
		n++
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return float64(sum) / float64(n), n
}

// rater sends a rating and, when acknowledged and honest, records it.
func rater(t loadgen.Target, l *ledger, campaign bool) loadgen.Request {
	return func(ctx context.Context, c *http.Client, rng *rand.Rand) int {
		post, score, honest := 1+rng.IntN(t.Posts), rng.IntN(6), true
		if campaign && rng.IntN(2) == 0 {
			post, score, honest = 1+rng.IntN(2), 5, false
		}
		// Honest raters of the watched posts lean low, so that a campaign
		// of fives shows.
		if honest && post <= 2 {
			score = []int{0, 1, 1, 2, 2, 3}[rng.IntN(6)]
		}
		user := fmt.Sprintf("device-id-%d", 1+rng.IntN(t.Users))
		body := fmt.Sprintf(`{"post":%d,"user_id":%q,"score":%d}`, post, user, score)
		status := loadgen.Do(ctx, c, http.MethodPost, t.Ingest+"/api/rate", body)
		if status == http.StatusCreated && honest {
			l.record(post, user, score)
		}
		return status
	}
}

type sample struct {
	at     time.Duration
	scores map[int]float64
	honest map[int]float64
	raters map[int]int
}

// campaign runs random_rating, then mixed_rating (the campaign), then
// random_rating again, sampling the watched posts' scores every second.
func campaign(ctx context.Context, o options, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	l := &ledger{latest: map[int]map[string]int{}}
	vus := o.vus
	if vus == 200 {
		vus = 60 // the flag's default is the k6 size; the demo is scaled down
	}
	phases := []loadgen.Plan{
		{Name: "random_rating", VUs: vus, Duration: 90 * time.Second, MaxSleep: o.sleep, Request: rater(o.target, l, false)},
		{Name: "mixed_rating", VUs: 2 * vus, Duration: 30 * time.Second, MaxSleep: o.sleep, Request: rater(o.target, l, true)},
		{Name: "random_rating_after", VUs: vus, Duration: 90 * time.Second, MaxSleep: o.sleep, Request: rater(o.target, l, false)},
	}
	began := time.Now()
	var samples []sample
	var mu sync.Mutex
	sctx, stopSampling := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := loadgen.Client(4)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
			s := sample{at: time.Since(began), scores: map[int]float64{}, honest: map[int]float64{}, raters: map[int]int{}}
			for _, p := range watched {
				s.scores[p] = score(sctx, c, o.target.Query, p)
				s.honest[p], s.raters[p] = l.mean(p)
			}
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
		}
	}()
	var campaignSpan [2]time.Duration
	var results []loadgen.Result
	for _, p := range phases {
		start := time.Since(began)
		fmt.Printf("running %s: %d virtual users for %s\n", p.Name, p.VUs, p.Duration)
		r := loadgen.Run(ctx, p)
		fmt.Println(r)
		results = append(results, r)
		if p.Name == "mixed_rating" {
			campaignSpan = [2]time.Duration{start, time.Since(began)}
		}
	}
	time.Sleep(5 * time.Second) // let the last ratings reach the scores
	stopSampling()
	<-done
	return writeCampaign(dir, samples, campaignSpan, results)
}

func score(ctx context.Context, c *http.Client, query string, post int) float64 {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/posts/%d", query, post), nil)
	resp, err := c.Do(req)
	if err != nil {
		return math.NaN()
	}
	defer resp.Body.Close()
	var p struct {
		Score *float64 `json:"score"`
	}
	if json.NewDecoder(resp.Body).Decode(&p) != nil || p.Score == nil {
		return math.NaN()
	}
	return *p.Score
}

func writeCampaign(dir string, samples []sample, span [2]time.Duration, results []loadgen.Result) error {
	var md strings.Builder
	md.WriteString("# Live campaign demo\n\n")
	md.WriteString("random_rating, then mixed_rating (half of the requests give a 5 to post 1 or 2), then random_rating again, against the running stack. ")
	md.WriteString("Honest raters of posts 1 and 2 give 0 to 3. The honest mean is the mean of the latest scores of the honest users whose rating was acknowledged; errors are taken once a post has 20 honest raters.\n\n")
	md.WriteString("| phase | vus | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&md, "| %s | %d | %.0f | %.2f | %.2f | %.4f%% |\n", r.Name, r.VUs, r.PerSecond, r.P50ms, r.P99ms, r.ErrorRate*100)
	}
	md.WriteString("\n| post | honest raters | honest mean | final score | max error | final error | plot |\n|---|---|---|---|---|---|---|\n")
	for _, p := range watched {
		rep := &sim.Report{Scenario: fmt.Sprintf("live post %d", p), Campaign: [][2]time.Duration{span}}
		maxErr, finalErr := 0.0, math.NaN()
		var last sample
		for _, s := range samples {
			rep.Points = append(rep.Points, sim.Point{At: s.at, HonestMean: s.honest[p], Honest: s.raters[p], Scores: map[string]float64{"score": s.scores[p]}})
			if s.raters[p] >= 20 && !math.IsNaN(s.scores[p]) {
				e := math.Abs(s.scores[p] - s.honest[p])
				maxErr, finalErr = math.Max(maxErr, e), e
			}
			last = s
		}
		name := fmt.Sprintf("campaign-post-%d.svg", p)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(sim.Plot(rep, []string{"score"})), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&md, "| %d | %d | %.3f | %.3f | %.3f | %.3f | [%s](%s) |\n", p, last.raters[p], last.honest[p], last.scores[p], maxErr, finalErr, name, name)
	}
	path := filepath.Join(dir, "campaign.md")
	if err := os.WriteFile(path, []byte(md.String()), 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", path)
	fmt.Print(md.String())
	return nil
}
