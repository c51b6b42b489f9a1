package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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

// campaignOptions are k6/campaign.js's settings, as flags.
type campaignOptions struct {
	rate, share, campaignRate float64
	target, score             int
	warmup, campaign, after   time.Duration
	maxDrift, minCampaign     float64
}

func (c *campaignOptions) flags(fs *flag.FlagSet) {
	fs.Float64Var(&c.rate, "rate", 100, "honest ratings a second over every post (RATE)")
	fs.IntVar(&c.target, "target", 1, "the campaigned post (TARGET)")
	fs.Float64Var(&c.share, "target-share", 0.3, "share of the honest ratings that go to the target (TARGET_SHARE)")
	fs.DurationVar(&c.warmup, "warmup", 8*time.Minute, "honest traffic before the campaign (WARMUP)")
	fs.DurationVar(&c.campaign, "campaign", 3*time.Minute, "how long the campaign lasts (CAMPAIGN)")
	fs.DurationVar(&c.after, "after", 4*time.Minute, "honest traffic after it (AFTER)")
	fs.Float64Var(&c.campaignRate, "campaign-rate", 0, "campaign ratings a second, from new accounts (CAMPAIGN_RATE; default 10 times the target's honest rate)")
	fs.IntVar(&c.score, "campaign-score", 0, "the score the campaign gives (CAMPAIGN_SCORE)")
	fs.Float64Var(&c.maxDrift, "max-drift", 0.1, "the score may move at most this much from its value when the campaign starts (MAX_DRIFT)")
	fs.Float64Var(&c.minCampaign, "min-campaign", 0.5, "the campaign must move the plain mean at least this much, or it proves nothing (MIN_CAMPAIGN)")
}

// liked are the probabilities of scores 0..5 of the target's honest
// raters (mean 4.15), as in campaign.js.
var liked = []float64{0, 0, 0.05, 0.15, 0.4, 0.4}

func draw(rng *rand.Rand, probs []float64) int {
	x := rng.Float64()
	for s, p := range probs {
		if x < p {
			return s
		}
		x -= p
	}
	return len(probs) - 1
}

// ledger remembers the target's honest ratings the service acknowledged:
// its honest mean.
type ledger struct {
	mu       sync.Mutex
	sum, num float64
}

func (l *ledger) mean() (float64, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.num == 0 {
		return math.NaN(), 0
	}
	return l.sum / l.num, int(l.num)
}

// account is a new account's id: every honest rating and every campaign
// rating comes from one of its own.
func account(kind string, rng *rand.Rand) string {
	return fmt.Sprintf("%s-%d-%d", kind, rng.Uint64(), rng.Uint64())
}

func rateTarget(t loadgen.Target, c campaignOptions, l *ledger) loadgen.Request {
	return func(ctx context.Context, cl *http.Client, rng *rand.Rand) int {
		toTarget := rng.Float64() < c.share || t.Posts < 2
		post, score := c.target, draw(rng, liked)
		if !toTarget { // any other post, any score
			if post = 1 + rng.IntN(t.Posts-1); post >= c.target {
				post++
			}
			score = rng.IntN(6)
		}
		body := fmt.Sprintf(`{"post":%d,"user_id":%q,"score":%d}`, post, account("honest", rng), score)
		status := loadgen.Do(ctx, cl, http.MethodPost, t.Ingest+"/api/rate", body)
		if toTarget && status == http.StatusCreated {
			l.mu.Lock()
			l.sum, l.num = l.sum+float64(score), l.num+1
			l.mu.Unlock()
		}
		return status
	}
}

func rateCampaign(t loadgen.Target, c campaignOptions) loadgen.Request {
	return func(ctx context.Context, cl *http.Client, rng *rand.Rand) int {
		body := fmt.Sprintf(`{"post":%d,"user_id":%q,"score":%d}`, c.target, account("campaign", rng), c.score)
		return loadgen.Do(ctx, cl, http.MethodPost, t.Ingest+"/api/rate", body)
	}
}

// sample is the target as the watcher saw it.
type sample struct {
	At     time.Duration `json:"at_seconds"`
	Score  float64       `json:"score"`
	Mean   float64       `json:"mean"`
	Honest float64       `json:"honest_mean"`
	Raters int           `json:"honest_raters"`
}

// campaignReport is what the run found (summary.json).
type campaignReport struct {
	Target      int              `json:"target"`
	ScoreDrift  float64          `json:"max_score_drift"`
	MeanDrift   float64          `json:"max_mean_drift"`
	MaxError    float64          `json:"max_error_vs_honest_mean"`
	MaxDrift    float64          `json:"max_drift_allowed"`
	MinCampaign float64          `json:"min_campaign"`
	Passed      bool             `json:"passed"`
	Phases      []loadgen.Result `json:"phases"`
	Samples     []sample         `json:"samples"`
}

// runCampaign runs k6/campaign.js from Go against a running stack: honest
// traffic throughout, the campaign on the target after the warm-up, and
// a watcher that reads the target every second. It fails when the score
// drifted by maxDrift or more from its value at the campaign's start, or
// when the campaign moved the plain mean by less than minCampaign, or
// when requests failed.
func runCampaign(ctx context.Context, o options, c campaignOptions, dir string) error {
	if c.campaignRate <= 0 {
		c.campaignRate = 10 * c.rate * c.share
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	l := &ledger{}
	total := c.warmup + c.campaign + c.after
	began := time.Now()
	var phases []loadgen.Result
	var mu sync.Mutex
	var wg sync.WaitGroup
	run := func(delay time.Duration, p loadgen.RatePlan) {
		defer wg.Done()
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		r := loadgen.RunRate(ctx, p)
		fmt.Println(r)
		mu.Lock()
		phases = append(phases, r)
		mu.Unlock()
	}
	wg.Add(2)
	go run(0, loadgen.RatePlan{Name: "honest", Rate: c.rate, Duration: total, MaxVUs: 200, Request: rateTarget(o.target, c, l)})
	go run(c.warmup, loadgen.RatePlan{Name: "campaign", Rate: c.campaignRate, Duration: c.campaign, MaxVUs: 200, Request: rateCampaign(o.target, c)})
	samples := watch(ctx, o.target.Query, c.target, l, began, total)
	wg.Wait()

	rep := campaignReport{Target: c.target, MaxDrift: c.maxDrift, MinCampaign: c.minCampaign, Phases: phases, Samples: samples}
	var base *sample
	for i := range samples {
		s := &samples[i]
		if s.At < c.warmup {
			if !math.IsNaN(s.Score) {
				base = s
			}
			continue
		}
		if base == nil || math.IsNaN(s.Score) {
			continue
		}
		rep.ScoreDrift = math.Max(rep.ScoreDrift, math.Abs(s.Score-base.Score))
		rep.MeanDrift = math.Max(rep.MeanDrift, math.Abs(s.Mean-base.Mean))
		rep.MaxError = math.Max(rep.MaxError, math.Abs(s.Score-s.Honest))
	}
	var failures []string
	if base == nil {
		failures = append(failures, "the target had no score before the campaign")
	}
	if rep.ScoreDrift >= c.maxDrift {
		failures = append(failures, fmt.Sprintf("score_drift %.3f, not below %.3f", rep.ScoreDrift, c.maxDrift))
	}
	if rep.MeanDrift < c.minCampaign {
		failures = append(failures, fmt.Sprintf("the campaign moved the plain mean by %.3f only, not %.3f: it proves nothing", rep.MeanDrift, c.minCampaign))
	}
	for _, p := range phases {
		if p.ErrorRate > 0.01 || p.Dropped > 0 {
			failures = append(failures, fmt.Sprintf("%s: %.2f%% failed, %d dropped", p.Name, 100*p.ErrorRate, p.Dropped))
		}
	}
	rep.Passed = len(failures) == 0
	if err := writeCampaign(dir, rep, c); err != nil {
		return err
	}
	fmt.Printf("score_drift max %.3f (must stay below %.3f); mean_drift max %.3f (at least %.3f); largest |score - honest mean| %.3f\n",
		rep.ScoreDrift, c.maxDrift, rep.MeanDrift, c.minCampaign, rep.MaxError)
	if !rep.Passed {
		return errors.New("thresholds crossed: " + strings.Join(failures, "; "))
	}
	return nil
}

// watch reads the target's score and plain mean every second for d.
func watch(ctx context.Context, query string, post int, l *ledger, began time.Time, d time.Duration) []sample {
	c := loadgen.Client(2)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var out []sample
	for time.Since(began) < d+2*time.Second {
		select {
		case <-ctx.Done():
			return out
		case <-t.C:
		}
		s := sample{At: time.Since(began), Score: math.NaN(), Mean: math.NaN()}
		s.Score, s.Mean = explained(ctx, c, query, post)
		s.Honest, s.Raters = l.mean()
		out = append(out, s)
	}
	return out
}

func explained(ctx context.Context, c *http.Client, query string, post int) (float64, float64) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/posts/%d/explain?history=1m", query, post), nil)
	resp, err := c.Do(req)
	if err != nil {
		return math.NaN(), math.NaN()
	}
	defer resp.Body.Close()
	var x struct {
		Score *float64 `json:"score"`
		Mean  *float64 `json:"mean"`
	}
	if json.NewDecoder(resp.Body).Decode(&x) != nil || x.Score == nil || x.Mean == nil {
		return math.NaN(), math.NaN()
	}
	return *x.Score, *x.Mean
}

// writeCampaign writes summary.json, campaign.md and a plot of the
// target's score against its honest mean.
func writeCampaign(dir string, rep campaignReport, c campaignOptions) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.json"), b, 0o644); err != nil {
		return err
	}
	plot := &sim.Report{Scenario: fmt.Sprintf("live post %d", c.target), Campaign: [][2]time.Duration{{c.warmup, c.warmup + c.campaign}}}
	for _, s := range rep.Samples {
		plot.Points = append(plot.Points, sim.Point{At: s.At, HonestMean: s.Honest, Honest: s.Raters,
			Scores: map[string]float64{"score": s.Score, "plain mean": s.Mean}})
	}
	if err := os.WriteFile(filepath.Join(dir, "campaign.svg"), []byte(sim.Plot(plot, []string{"score", "plain mean"})), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	md.WriteString("# Live campaign\n\n")
	fmt.Fprintf(&md, "Honest ratings at %.0f/s over every post (%.0f%% on post %d, which its raters like), then %s of new accounts giving post %d a %d at %.0f/s, then honest again; the post read every second.\n\n",
		c.rate, 100*c.share, c.target, c.campaign, c.target, c.score, c.campaignRate)
	md.WriteString("| phase | req/s | p50 ms | p99 ms | errors | dropped |\n|---|---|---|---|---|---|\n")
	for _, r := range rep.Phases {
		fmt.Fprintf(&md, "| %s | %.0f | %.2f | %.2f | %.4f%% | %d |\n", r.Name, r.PerSecond, r.P50ms, r.P99ms, r.ErrorRate*100, r.Dropped)
	}
	fmt.Fprintf(&md, "\n| | value | threshold |\n|---|---|---|\n| score drift from the campaign's start | %.3f | < %.3f |\n| plain mean drift | %.3f | >= %.3f |\n| largest score - honest mean | %.3f | |\n\n",
		rep.ScoreDrift, c.maxDrift, rep.MeanDrift, c.minCampaign, rep.MaxError)
	md.WriteString("![the campaigned post](campaign.svg)\n")
	path := filepath.Join(dir, "campaign.md")
	if err := os.WriteFile(path, []byte(md.String()), 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", path)
	return nil
}
