// Package scoring holds the pure, deterministic strategies that turn a
// post's event-time windows into its score, and the incremental state
// (volume baseline, running totals) that keeps the cost of scoring a post
// independent of the length of its history.
//
// The scorer service and the simulator use this package alike; the
// windower maintains the incremental state with it.
package scoring

import (
	"math"
	"time"
)

// Window is one event-time window of a post: the latest ratings of distinct
// users whose rated_at falls in [Start, Start+Params.Window).
type Window struct {
	Start time.Time
	Sum   int64
	Count int64
	// Rerates are the votes among Count that replaced the same user's
	// earlier vote: known raters changing their verdict, never anomalous.
	Rerates   int64
	Threshold float64 // volume of new raters above which the window is anomalous, fixed when it opened
	// Late counts the events that reached the window after the watermark
	// had closed it (counted all the same; scoring ignores it).
	Late int64
}

// Mean is the plain mean of the window's ratings.
func (w Window) Mean() float64 { return float64(w.Sum) / float64(w.Count) }

// New is the number of first-time raters among the window's votes: the
// volume judged against the threshold.
func (w Window) New() int64 { return w.Count - w.Rerates }

// Weight is how many ratings' worth the window counts for: its
// first-time raters weighed against its threshold (see Weight), plus its
// re-ratings in full.
func (w Window) Weight() float64 {
	if w.Count <= 0 {
		return 0
	}
	return Weight(w.New(), w.Threshold) + float64(w.Rerates)
}

// Anomalous reports whether the window's new raters exceed its threshold.
func (w Window) Anomalous() bool { return float64(w.New()) > w.Threshold }

// Params are the knobs of the volume baseline and of surge-guard. Every
// duration is event time.
type Params struct {
	// Window is the window length (WINDOW).
	Window time.Duration
	// BaselineTau is the time constant of the moving average of a post's
	// per-window volume: how fast "normal" adapts to genuine growth.
	BaselineTau time.Duration
	// Surge is how many times the baseline a window may hold before it is
	// treated as anomalous.
	Surge float64
	// Floor is the smallest anomaly threshold in ratings per window, so a
	// sparse post's occasional pair of ratings is never anomalous.
	Floor float64
	// Maturity is the event-time age at which a window reaches full weight.
	Maturity time.Duration
	// NewPost is the volume (ratings per window) assumed for a post's first
	// window, before it has a baseline: its threshold is Surge × NewPost.
	NewPost float64
}

// DefaultParams are the documented defaults (docs/scoring.md) for a window
// length.
func DefaultParams(window time.Duration) Params {
	return Params{Window: window, BaselineTau: 35 * time.Minute, Surge: 4, Floor: 2, Maturity: time.Hour, NewPost: 10}
}

func (p Params) alpha() float64 {
	a := float64(p.Window) / float64(p.BaselineTau)
	return math.Min(a, 1)
}

// threshold is the anomaly threshold for a baseline estimate. The
// moving average starts from the new-post volume (a prior) rather than
// from the post's own first windows, so a young post's typical volume is
// the prior until its own windows outweigh it: a campaign timed for a
// post's first minutes cannot make itself the norm.
func (p Params) threshold(baseline, seen float64) float64 {
	b := baseline + (1-seen)*p.NewPost
	// Surge × b, but never within Poisson noise of b: a quiet post's
	// honest windows vary by several times their mean.
	return math.Max(math.Max(p.Surge*b, b+4*math.Sqrt(b)+2), p.Floor)
}

// WindowStart aligns t to the start of its window, counted from the Unix
// epoch so every process agrees whatever its time zone.
func (p Params) WindowStart(t time.Time) time.Time {
	ns, w := t.UnixNano(), int64(p.Window)
	start := ns - ns%w
	if ns%w < 0 {
		start -= w
	}
	return time.Unix(0, start).UTC()
}

// Weight is how many ratings' worth a window's new raters count for: c
// while within the threshold T, and beyond that T·(T/c)¹², which falls
// steeply with the excess: a window at 1.1 T counts for a third of T, at
// 1.5 T for less than a hundredth, a burst of twice T for nothing
// measurable (a campaign of 2.5 times the typical volume on top of it is
// held out). An anomalous window is held
// out rather than capped because even a capped burst would keep a
// permanent share of a post's score.
func Weight(count int64, threshold float64) float64 {
	c := float64(count)
	if c <= threshold {
		return c
	}
	r := threshold / c
	r3 := r * r * r
	r6 := r3 * r3
	return threshold * r6 * r6
}

// Micro-units keep the running totals in exact integer arithmetic: the
// totals then do not depend on the order in which windows changed.
const micro = 1e6

// WeightMicro is the window's Weight in millionths of a rating.
func WeightMicro(w Window) int64 {
	if w.Count <= 0 {
		return 0
	}
	return int64(math.Round(w.Weight() * micro))
}

// ContribMicro is the window's Weight times its mean, in millionths.
func ContribMicro(w Window) int64 {
	if w.Count <= 0 {
		return 0
	}
	return int64(math.Round(w.Weight() * w.Mean() * micro))
}

// Totals are a post's running sums over all its windows.
type Totals struct {
	Sum, Count          int64 // over latest ratings: Count = distinct raters
	WeightedSum, Weight int64 // Σ ContribMicro and Σ WeightMicro
}

// Replace moves the totals from a window's old contents to its new ones.
func (t *Totals) Replace(old, new Window) {
	t.Sum += new.Sum - old.Sum
	t.Count += new.Count - old.Count
	t.WeightedSum += ContribMicro(new) - ContribMicro(old)
	t.Weight += WeightMicro(new) - WeightMicro(old)
}

// Volume tracks a post's typical ratings per window: an exponential moving
// average over finished windows of their counts, each capped at its own
// threshold so that an attack cannot raise its own baseline by more than
// a bounded step per window. Seen is the total weight the average has
// accumulated (1 - (1-α)^n after n windows); dividing by it corrects the
// average's start-up bias, so a young post's baseline is the mean of the
// few windows it has rather than a value dragged towards zero.
type Volume struct {
	Baseline         float64
	Seen             float64
	Current          time.Time // start of the newest window seen
	CurrentCount     int64
	CurrentThreshold float64
}

// Advance moves the tracker to window start when it is newer than the
// current window, folding the finished window (and the empty windows in
// between) into the baseline.
func (v *Volume) Advance(start time.Time, p Params) {
	if v.Current.IsZero() {
		v.Current, v.CurrentCount, v.CurrentThreshold = start, 0, p.threshold(v.Baseline, v.Seen)
		return
	}
	if !start.After(v.Current) {
		return
	}
	a := p.alpha()
	capped := math.Min(float64(v.CurrentCount), v.CurrentThreshold)
	v.Baseline += a * (capped - v.Baseline)
	v.Seen += a * (1 - v.Seen)
	if gap := int64(start.Sub(v.Current)/p.Window) - 1; gap > 0 {
		// Empty windows count as zeros.
		decay := math.Pow(1-a, float64(gap))
		v.Baseline *= decay
		v.Seen = 1 - (1-v.Seen)*decay
	}
	v.Current, v.CurrentCount, v.CurrentThreshold = start, 0, p.threshold(v.Baseline, v.Seen)
}

// ThresholdFor is the threshold a window opening now at start gets: the
// current window's own, or for a late window the one the baseline gives.
func (v *Volume) ThresholdFor(start time.Time, p Params) float64 {
	if start.Equal(v.Current) {
		return v.CurrentThreshold
	}
	return p.threshold(v.Baseline, v.Seen)
}

// Counted records a first-time rater added to (+1) or retracted from (-1)
// window start, which matters only for the current window.
func (v *Volume) Counted(start time.Time, delta int64) {
	if start.Equal(v.Current) {
		v.CurrentCount += delta
	}
}

// Stats is what scoring keeps for one post, incrementally: the running
// totals and the volume baseline. It is where the one-user-one-vote fold
// (pkg/fold) and scoring meet, through two calls: Rated once for each
// rating the fold applies, then Change for each window the rating changes
// (the window that loses a retracted score, the one that gains the new).
type Stats struct {
	Totals Totals
	Volume Volume
}

// Rated records that a rating falling in window start is being applied.
// A window newer than the current one closes the current one into the
// baseline, before any window changes.
func (s *Stats) Rated(start time.Time, p Params) { s.Volume.Advance(start, p) }

// Change adds dsum and dcount (of which drerates are re-ratings) to
// window w and returns it changed; when the window does not exist yet
// (exists is false), it opens at start with the threshold it is given
// now, which it keeps. Only first-time raters make volume.
func (s *Stats) Change(w Window, exists bool, start time.Time, dsum, dcount, drerates int64, p Params) Window {
	if !exists {
		w = Window{Start: start, Threshold: s.Volume.ThresholdFor(start, p)}
	}
	nw := w
	nw.Sum += dsum
	nw.Count += dcount
	nw.Rerates += drerates
	s.Totals.Replace(w, nw)
	s.Volume.Counted(start, dcount-drerates)
	return nw
}
