package scoring

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Input is what a strategy sees of one post at event time Now.
type Input struct {
	Now    time.Time
	Params Params
	Totals Totals
	// Latest is the start of the post's newest window.
	Latest time.Time
	// Recent holds at least every window younger than Params.Maturity,
	// oldest first. Strategies that need more say so with NeedsHistory.
	Recent []Window
	// All is every window, oldest first, for strategies that need it.
	All []Window
}

// Result is a strategy's verdict. StableAt is the event time from which the
// score no longer changes unless new ratings arrive; the scorer revisits a
// post only while its score is not yet stable.
type Result struct {
	Score    float64
	OK       bool // false before any rating counts
	StableAt time.Time
}

// Strategy turns a post's windows into a score.
type Strategy interface {
	Name() string
	// NeedsHistory reports whether Score reads Input.All.
	NeedsHistory() bool
	Score(in Input) Result
}

// Default is the strategy the scorer uses unless told otherwise.
const Default = "surge-guard"

// Strategies lists every strategy by name.
func Strategies() []Strategy { return []Strategy{SurgeGuard{}, Mean{}, SeedLinear{}} }

// Names lists the strategy names.
func Names() []string {
	var n []string
	for _, s := range Strategies() {
		n = append(n, s.Name())
	}
	return n
}

// Lookup finds a strategy by name.
func Lookup(name string) (Strategy, error) {
	for _, s := range Strategies() {
		if s.Name() == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("unknown scoring strategy %q (want one of %s)", name, strings.Join(Names(), ", "))
}

// Mean is the plain mean of every distinct user's latest rating.
type Mean struct{}

// Name implements Strategy.
func (Mean) Name() string { return "mean" }

// NeedsHistory implements Strategy.
func (Mean) NeedsHistory() bool { return false }

// Score implements Strategy.
func (Mean) Score(in Input) Result {
	if in.Totals.Count == 0 {
		return Result{StableAt: in.Latest}
	}
	return Result{Score: float64(in.Totals.Sum) / float64(in.Totals.Count), OK: true, StableAt: in.Latest}
}

// SeedLinear is the replaced app's weighted moving average: window means,
// newest first, weighted 1, 2, 3, …; Σ w·mean / Σ w, rounded to 2
// decimals. Every window weighs the same whatever its volume and the
// oldest weighs most, so it resists bursts but stops following genuine
// change. Its cost grows with the number of windows, as the seed's did.
type SeedLinear struct{}

// Name implements Strategy.
func (SeedLinear) Name() string { return "seed-linear" }

// NeedsHistory implements Strategy.
func (SeedLinear) NeedsHistory() bool { return true }

// Score implements Strategy.
func (SeedLinear) Score(in Input) Result {
	var num, den float64
	w := 0.0
	for i := len(in.All) - 1; i >= 0; i-- {
		if in.All[i].Count == 0 {
			continue
		}
		w++
		num += w * in.All[i].Mean()
		den += w
	}
	if den == 0 {
		return Result{StableAt: in.Latest}
	}
	return Result{Score: math.Round(num/den*100) / 100, OK: true, StableAt: in.Latest}
}

// SurgeGuard weights each window by its volume, damps windows far above
// the post's trailing typical volume (see Weight and Volume) and lets a
// window's weight grow linearly with its event-time age until Maturity.
// Without surges it equals the plain mean of distinct users once every
// window has matured; a burst counts for little and only slowly.
type SurgeGuard struct{}

// Name implements Strategy.
func (SurgeGuard) Name() string { return "surge-guard" }

// NeedsHistory implements Strategy.
func (SurgeGuard) NeedsHistory() bool { return false }

// Score implements Strategy. It reads the running totals and the immature
// windows only, so its cost does not grow with the post's history.
func (SurgeGuard) Score(in Input) Result {
	p := in.Params
	stable := in.Latest.Add(p.Maturity - p.Window)
	if in.Totals.Count == 0 {
		return Result{StableAt: stable}
	}
	num, den := float64(in.Totals.WeightedSum), float64(in.Totals.Weight)
	for _, w := range in.Recent {
		m := WindowMaturity(w, in.Now, p)
		if m >= 1 {
			continue
		}
		num -= (1 - m) * float64(ContribMicro(w))
		den -= (1 - m) * float64(WeightMicro(w))
	}
	if den <= 1e-9 {
		return Result{Score: float64(in.Totals.Sum) / float64(in.Totals.Count), OK: true, StableAt: stable}
	}
	return Result{Score: num / den, OK: true, StableAt: stable}
}

// Maturity is the share of its full weight a window starting at start has
// at event time now: (age + window) / Maturity, capped at 1, so even the
// newest window counts a little and a lone window makes a score.
func Maturity(start, now time.Time, p Params) float64 {
	if p.Maturity <= 0 {
		return 1
	}
	age := now.Sub(start)
	if age < 0 {
		age = 0
	}
	return math.Min(1, float64(age+p.Window)/float64(p.Maturity))
}

// WindowMaturity is Maturity for windows of suspect volume only. The
// window's typical volume b is what its threshold was made from (T /
// Surge); a window within Poisson noise of it (at most b + 2.5√b + 1)
// counts fully at once; above, the age ramp applies progressively, fully
// from 3b on (or √b + 1 above the noise band for small b). So honest
// raters count as they come, and what slips under the threshold (a
// campaign at 3× volume) gains weight only with age.
func WindowMaturity(w Window, now time.Time, p Params) float64 {
	m := Maturity(w.Start, now, p)
	if m >= 1 || w.New() <= 0 {
		return 1
	}
	s := Suspicion(w, p)
	return 1 - s*(1-m)
}

// Suspicion is how suspect a window's volume is, from 0 (within the noise
// of its typical volume) to 1 (three times it or more).
func Suspicion(w Window, p Params) float64 {
	b := w.Threshold / p.Surge
	lo := b + 2.5*math.Sqrt(b) + 1
	hi := math.Max(3*b, lo+1+math.Sqrt(b))
	return math.Min(1, math.Max(0, (float64(w.New())-lo)/(hi-lo)))
}

// CampaignSince is the start of the oldest window, among those still
// maturing at now, whose new raters exceed its threshold: the post is
// under a campaign since then. ok is false when no such window is held
// out now.
func CampaignSince(windows []Window, now time.Time, p Params) (time.Time, bool) {
	for _, w := range windows { // oldest first
		if w.Start.Add(p.Maturity).After(now) && w.Anomalous() {
			return w.Start, true
		}
	}
	return time.Time{}, false
}

// BaselineOf is the typical volume (new raters per window) a threshold
// was made from: the inverse of the threshold rule, for explaining a
// window. A threshold at the floor gives the volume the floor stands for.
func BaselineOf(threshold float64, p Params) float64 {
	if b := threshold / p.Surge; p.Surge*b >= b+4*math.Sqrt(b)+2 {
		return b
	}
	r := math.Sqrt(threshold+2) - 2 // threshold = b + 4√b + 2
	return math.Max(r*r, 0)
}

// RecentCutoff is the start after which windows may still be maturing at
// now: strategies without history need the windows after it.
func RecentCutoff(now time.Time, p Params) time.Time {
	return now.Add(-p.Maturity)
}

// SortWindows orders windows oldest first.
func SortWindows(ws []Window) {
	sort.Slice(ws, func(i, j int) bool { return ws[i].Start.Before(ws[j].Start) })
}

// AsOf is the event time a result holds for: now, or the time it became
// stable if that was earlier. Storing it rather than now makes a replay
// write the same row whenever the scorer happened to run.
func AsOf(now time.Time, r Result) time.Time {
	if r.StableAt.Before(now) {
		return r.StableAt
	}
	return now
}
