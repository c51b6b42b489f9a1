package scoring

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Input is what a strategy sees of one post at event time Now (the
// watermark of its partition: windows ending after it are still open).
type Input struct {
	Now time.Time
	// Reached is the newest event time seen in the post's partition (zero:
	// unknown): how far into its open windows event time has come.
	Reached time.Time
	Params  Params
	Totals  Totals
	// Tracker is the post's tracker: its newest window (Current), its
	// run of held-out windows, the windows awaiting review.
	Tracker Tracker
	// Open holds the windows still open at Now or not yet finished by
	// the tracker (its current window), and Pending the windows awaiting
	// review, oldest first: what a strategy without history reads besides
	// the totals (see Unfinished). All is every window, oldest first, for
	// strategies that need it (NeedsHistory).
	Open    []Window
	Pending []Window
	All     []Window
}

// NewInput is what a strategy sees of a post at event time now, from its
// stats and windows ws, oldest first: every window for a strategy that
// NeedsHistory, otherwise at least those from Unfinished on and those
// awaiting review.
func NewInput(st Stats, ws []Window, now time.Time, p Params) Input {
	in := Input{Now: now, Params: p, Totals: st.Totals, Tracker: st.Tracker, All: ws}
	open := Unfinished(st.Tracker, now, p)
	for _, w := range ws {
		switch {
		case !w.Start.Before(open):
			in.Open = append(in.Open, w)
		case slices.ContainsFunc(st.Tracker.Pending, w.Start.Equal):
			in.Pending = append(in.Pending, w)
		}
	}
	return in
}

// Unfinished is the start of the oldest window of a post (tracked by t)
// that is still open at event time now (the watermark: a window is open
// until its end passes now) or that its tracker has not finished (its
// current window, until a newer one opens).
func Unfinished(t Tracker, now time.Time, p Params) time.Time {
	open := p.WindowStart(now).Add(-p.Window).Add(time.Nanosecond)
	if !t.Current.IsZero() && t.Current.Before(open) {
		return t.Current
	}
	return open
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

// Judging is implemented by the strategies that hold windows out: how
// much of a window counts, and why.
type Judging interface {
	Verdict(w Window, p Params) Verdict
}

// VerdictOf is strategy s's verdict on window w: its own when it judges
// windows, otherwise that the window counts fully.
func VerdictOf(s Strategy, w Window, p Params) Verdict {
	if j, ok := s.(Judging); ok {
		return j.Verdict(w, p)
	}
	return Verdict{Factor: 1, Activity: w.Count, Against: w.Ref.Mean}
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
		return Result{StableAt: in.Tracker.Current}
	}
	return Result{Score: float64(in.Totals.Sum) / float64(in.Totals.Count), OK: true, StableAt: in.Tracker.Current}
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
		return Result{StableAt: in.Tracker.Current}
	}
	return Result{Score: math.Round(num/den*100) / 100, OK: true, StableAt: in.Tracker.Current}
}

// SurgeGuard counts every window by its votes, except the windows it
// holds out (see Judge): those whose activity is far above the post's
// typical activity and whose opinion departs from the post's. A window
// still open (ending after Now, the watermark) is judged provisionally,
// against its typical activity and threshold scaled to the share of it
// event time has reached: a campaign's first seconds in a window then
// count only until they pass a few votes, not until the whole window's
// threshold. Without held-out windows the score is the plain mean of
// distinct users' latest votes.
type SurgeGuard struct{}

// Name implements Strategy.
func (SurgeGuard) Name() string { return "surge-guard" }

// NeedsHistory implements Strategy.
func (SurgeGuard) NeedsHistory() bool { return false }

// Verdict implements Judging.
func (SurgeGuard) Verdict(w Window, p Params) Verdict { return Judge(w, p) }

// Score implements Strategy. It reads the running totals, the open
// windows and the windows awaiting review only, so its cost does not grow
// with the post's history.
func (SurgeGuard) Score(in Input) Result {
	p := in.Params
	stable := stableAt(in)
	if in.Totals.Count == 0 {
		return Result{StableAt: stable}
	}
	tot := in.Totals
	for _, w := range in.Open {
		tot.Replace(w, Provisional(w, in.Reached, p), p)
	}
	if tot.Weight <= 0 {
		// Nothing counts (a post whose every window so far was held out
		// for its volume): the plain mean until something does.
		return Result{Score: float64(tot.Sum) / float64(tot.Count), OK: true, StableAt: stable}
	}
	// The windows held out while the post had no opinion count once its
	// opinion, from what counted since, agrees with theirs: for good once
	// the windower reviewed them, until then here. Until it has one, the
	// few votes that counted make the score: a campaign in a post's first
	// minutes must not be its opinion.
	num, den := float64(tot.WeightedSum), float64(tot.Weight)
	mean, votes, ok := tot.Opinion()
	for _, w := range in.Pending {
		if ok && !w.Ref.Reviewed && Judge(w, p).Undecided() && Agrees(w, mean, votes, p) {
			num += float64(w.Sum) * micro
			den += float64(w.Count) * micro
		}
	}
	return Result{Score: num / den, OK: true, StableAt: stable}
}

// Provisional is an open window as it is judged until it closes: its
// typical activity scaled to the share of it that event time reached
// (all of it when reached is unknown or past its end), and its threshold
// made from that, never above its own.
func Provisional(w Window, reached time.Time, p Params) Window {
	if reached.IsZero() || !reached.Before(w.Start.Add(p.Window)) {
		return w
	}
	f := math.Max(float64(reached.Sub(w.Start))/float64(p.Window), 0.01)
	b := w.Ref.Expected * f
	w.Ref.Expected = b
	w.Ref.Threshold = math.Min(w.Ref.Threshold, math.Max(b+p.VolumeZ*Noise(b)+1, p.Floor))
	return w
}

// stableAt is when the post's score and flags stop changing without new
// votes: when its newest window closes, or later when its run of held-out
// windows, or an unfinished window held out, stops flagging it.
func stableAt(in Input) time.Time {
	stable := in.Tracker.Current.Add(in.Params.Window)
	if end := in.Tracker.HeldLast.Add(in.Params.FlagFor()); !in.Tracker.HeldLast.IsZero() && end.After(stable) {
		stable = end
	}
	for _, w := range in.Open {
		if end := w.Start.Add(in.Params.FlagFor()); end.After(stable) && Judge(Provisional(w, in.Reached, in.Params), in.Params).HeldOut() {
			stable = end
		}
	}
	return stable
}

// CampaignSince says since when the post is under a campaign at event
// time in.Now, if it is: since the first of its run of held-out windows
// (each less than Params.FlagFor after the one before) while the last of
// them is less than Params.FlagFor old, or since an unfinished window held out.
func CampaignSince(in Input) (time.Time, bool) {
	t := in.Tracker
	if !t.HeldLast.IsZero() && t.HeldLast.Add(in.Params.FlagFor()).After(in.Now) {
		return t.HeldSince, true
	}
	for _, w := range in.Open {
		if Judge(Provisional(w, in.Reached, in.Params), in.Params).HeldOut() {
			return w.Start, true
		}
	}
	return time.Time{}, false
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
