package scoring

import (
	"fmt"
	"math"
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
	// Latest is the start of the post's newest window.
	Latest time.Time
	// Recent holds at least every window younger than FlagFor, oldest
	// first, and Early the windows of the post's bootstrap (from its
	// first window to Params.BootstrapEnd) when it is not over. Strategies that need more say so with NeedsHistory.
	Recent []Window
	Early  []Window
	// All is every window, oldest first, for strategies that need it.
	All []Window
}

// NewInput is what a strategy sees of a post at event time now, from its
// stats and windows ws, oldest first: every window for a strategy that
// NeedsHistory, otherwise at least those that Reads names.
func NewInput(st Stats, ws []Window, now time.Time, p Params) Input {
	in := Input{Now: now, Params: p, Totals: st.Totals, Latest: st.Tracker.Current, All: ws}
	after, before := Reads(st.Tracker, now, p)
	for i, w := range ws {
		if !w.Start.Before(before) {
			in.Early = ws[:i:i]
			break
		}
		in.Early = ws
	}
	in.Recent = ws[sort.Search(len(ws), func(i int) bool { return ws[i].Start.After(after) }):]
	return in
}

// Reads names the windows of a post (tracked by t) that a strategy
// without history reads at event time now: those starting after after
// (they may still flag the post) and before before (its bootstrap).
func Reads(t Tracker, now time.Time, p Params) (after, before time.Time) {
	return RecentCutoff(now, p).Add(-p.Window), p.BootstrapEnd(t.First)
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

// Score implements Strategy. It reads the running totals and the recent
// windows only, so its cost does not grow with the post's history.
func (SurgeGuard) Score(in Input) Result {
	p := in.Params
	stable := stableAt(in)
	if in.Totals.Count == 0 {
		return Result{StableAt: stable}
	}
	tot := in.Totals
	for _, w := range in.Recent {
		if w.Start.Add(p.Window).After(in.Now) { // still open
			tot.Replace(w, Provisional(w, in.Reached, p), p)
		}
	}
	if tot.Weight <= 0 {
		// Nothing counts (a post whose every window so far was held out
		// for its volume): the plain mean until something does.
		return Result{Score: float64(tot.Sum) / float64(tot.Count), OK: true, StableAt: stable}
	}
	// The windows held out while the post had no opinion count once its
	// opinion, from what counted since, agrees with theirs. Until it has
	// one, the few votes that counted make the score: a campaign in a
	// post's first minutes must not be its opinion.
	num, den := float64(tot.WeightedSum), float64(tot.Weight)
	mean, votes, ok := tot.Opinion()
	for _, w := range in.Early {
		if ok && Judge(w, p).Undecided() && Agrees(w, mean, votes, p) {
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

// FlagFor is how long in event time a held-out window flags its post as
// under a campaign.
const FlagFor = time.Hour

// stableAt is when the post's score and flags stop changing without new
// votes: when its newest window closes, or later when its newest
// held-out window stops flagging it.
func stableAt(in Input) time.Time {
	stable := in.Latest.Add(in.Params.Window)
	for _, w := range in.Recent {
		if Judge(w, in.Params).HeldOut() {
			if end := w.Start.Add(FlagFor); end.After(stable) {
				stable = end
			}
		}
	}
	return stable
}

// CampaignSince is the start of the oldest window held out among those
// that started less than FlagFor before now: the post is under a
// campaign since then. ok is false when no such window is held out.
func CampaignSince(windows []Window, now time.Time, p Params) (time.Time, bool) {
	for _, w := range windows { // oldest first
		if w.Start.Add(FlagFor).After(now) && Judge(w, p).HeldOut() {
			return w.Start, true
		}
	}
	return time.Time{}, false
}

// RecentCutoff is the start after which windows may still flag a post at
// now: what the scorer reads besides the totals.
func RecentCutoff(now time.Time, p Params) time.Time {
	return now.Add(-FlagFor)
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
