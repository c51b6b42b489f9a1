package scoring

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// build folds windows (oldest first) into an Input the way the windower
// would, with the default parameters for one-minute windows.
func build(counts []int64, means []float64, now time.Time) Input {
	p := DefaultParams(time.Minute)
	var v Volume
	var tot Totals
	var all []Window
	for i, c := range counts {
		start := t0.Add(time.Duration(i) * time.Minute)
		v.Advance(start, p)
		w := Window{Start: start, Count: c, Sum: int64(math.Round(means[i] * float64(c))), Threshold: v.ThresholdFor(start, p)}
		v.Counted(start, c)
		tot.Replace(Window{Start: start, Threshold: w.Threshold}, w)
		all = append(all, w)
	}
	return Input{Now: now, Params: p, Totals: tot, Latest: v.Current, All: all, Recent: all}
}

func TestWeight(t *testing.T) {
	cases := []struct {
		count     int64
		threshold float64
		want      float64
	}{
		{0, 10, 0},
		{5, 10, 5},
		{10, 10, 10},
		{15, 10, 10 * math.Pow(10.0/15, 12)},
		{1000, 40, 40 * math.Pow(0.04, 12)},
	}
	for _, c := range cases {
		if got := Weight(c.count, c.threshold); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Weight(%d, %g) = %g, want %g", c.count, c.threshold, got, c.want)
		}
	}
}

func TestStrategies(t *testing.T) {
	steady := make([]int64, 300)
	means := make([]float64, 300)
	for i := range steady {
		steady[i], means[i] = 10, 4
	}
	burst := append(append([]int64{}, steady...), 1000)
	burstMeans := append(append([]float64{}, means...), 0)
	late := t0.Add(24 * time.Hour)
	cases := []struct {
		name     string
		strategy Strategy
		in       Input
		want     float64
		tol      float64
	}{
		{"mean of steady", Mean{}, build(steady, means, late), 4, 1e-9},
		{"mean swallows a burst", Mean{}, build(burst, burstMeans, late), 4 * 3000 / 4000.0, 1e-9},
		{"seed-linear of steady", SeedLinear{}, build(steady, means, late), 4, 1e-9},
		{"seed-linear keeps the newest window light", SeedLinear{}, build(burst, burstMeans, late), 4, 1e-9},
		{"surge-guard of steady", SurgeGuard{}, build(steady, means, late), 4, 1e-5},
		{"surge-guard holds a 100x burst out", SurgeGuard{}, build(burst, burstMeans, late), 4, 1e-3},
		{"surge-guard right after the burst", SurgeGuard{}, build(burst, burstMeans, t0.Add(301*time.Minute)), 4, 1e-3},
	}
	for _, c := range cases {
		r := c.strategy.Score(c.in)
		if !r.OK || math.Abs(r.Score-c.want) > c.tol {
			t.Errorf("%s: %v (ok %v), want %v ± %g", c.name, r.Score, r.OK, c.want, c.tol)
		}
	}
}

func TestNoRatingsNoScore(t *testing.T) {
	for _, s := range Strategies() {
		if r := s.Score(Input{Now: t0, Params: DefaultParams(time.Minute)}); r.OK {
			t.Errorf("%s scored a post without ratings: %v", s.Name(), r.Score)
		}
	}
}

// The replaced app's own test: 100 posts; five rounds in which every post
// gets a 5 from a new user and both tasks run; then 100 ratings of 0 or 1
// on the first post and both tasks run; its score must stay above 4.
func TestSeedsOwnTest(t *testing.T) {
	for _, s := range []Strategy{SeedLinear{}, SurgeGuard{}} {
		p := DefaultParams(time.Minute)
		for post := 0; post < 100; post++ {
			var v Volume
			var tot Totals
			var ws []Window
			add := func(round int, scores []int) {
				start := t0.Add(time.Duration(round) * time.Minute)
				v.Advance(start, p)
				w := Window{Start: start, Threshold: v.ThresholdFor(start, p)}
				old := w
				for _, sc := range scores {
					w.Sum += int64(sc)
					w.Count++
				}
				v.Counted(start, w.Count)
				tot.Replace(old, w)
				ws = append(ws, w)
			}
			for round := 0; round < 5; round++ {
				add(round, []int{5})
			}
			if post == 0 {
				var attack []int
				for i := 0; i < 100; i++ {
					attack = append(attack, i%2)
				}
				add(5, attack)
			}
			now := t0.Add(time.Duration(len(ws)) * time.Minute)
			r := s.Score(Input{Now: now, Params: p, Totals: tot, Latest: v.Current, All: ws, Recent: ws})
			if post == 0 && (!r.OK || r.Score <= 4) {
				t.Errorf("%s: the attacked post scores %v, want above 4", s.Name(), r.Score)
			}
			if post > 0 && (!r.OK || math.Abs(r.Score-5) > 1e-6) {
				t.Errorf("%s: post %d scores %v, want 5", s.Name(), post, r.Score)
			}
		}
	}
}

func TestVolumeBaselineCannotBeRaisedByABurst(t *testing.T) {
	p := DefaultParams(time.Minute)
	var v Volume
	for i := 0; i < 600; i++ {
		start := t0.Add(time.Duration(i) * time.Minute)
		v.Advance(start, p)
		c := int64(10)
		if i >= 590 {
			c = 1000 // the last ten windows are a campaign
		}
		v.Counted(start, c)
	}
	v.Advance(t0.Add(600*time.Minute), p)
	// Each burst window may raise the baseline by a bounded step only, so
	// the threshold stays an order of magnitude below the burst.
	if v.CurrentThreshold > 100 {
		t.Fatalf("threshold %g after a ten-minute burst of 1000 a minute: the burst raised its own baseline", v.CurrentThreshold)
	}
}

func TestWindowStartIsEpochAligned(t *testing.T) {
	p := DefaultParams(7 * time.Second)
	at := time.Unix(1000, 5).UTC()
	if got := p.WindowStart(at); got.Unix() != 994 {
		t.Fatalf("WindowStart = %v, want 994 s after the epoch", got.Unix())
	}
	before := time.Unix(-3, 0).UTC()
	if got := p.WindowStart(before); got.Unix() != -7 {
		t.Fatalf("WindowStart before the epoch = %v, want -7", got.Unix())
	}
}

func TestLookup(t *testing.T) {
	for _, n := range Names() {
		if s, err := Lookup(n); err != nil || s.Name() != n {
			t.Errorf("Lookup(%q) = %v, %v", n, s, err)
		}
	}
	if _, err := Lookup("median"); err == nil {
		t.Error("Lookup of an unknown strategy succeeded")
	}
}
