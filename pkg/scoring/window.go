// Package scoring holds the pure, deterministic strategies that turn a
// post's event-time windows into its score, and the incremental state
// (the post's typical activity and opinion, running totals) that keeps the
// cost of scoring a post independent of the length of its history.
//
// The scorer service and the simulator use this package alike; the
// windower maintains the incremental state with it.
package scoring

import (
	"math"
	"time"
)

// Window is one event-time window of a post: the latest votes of distinct
// users whose rated_at falls in [Start, Start+Params.Window).
type Window struct {
	Start time.Time
	Sum   int64
	Count int64
	// Rerates are the votes among Count that replaced the same user's
	// earlier vote, and RerateSum their sum: changed votes, activity as
	// much as first votes are.
	Rerates   int64
	RerateSum int64
	// Retracts counts the ratings taken back in this window (their votes
	// left the windows that held them): activity like votes cast, so a
	// burst of them is judged like a burst of ratings.
	Retracts int64
	// Late counts the events that reached the window after the watermark
	// had closed it (counted all the same; scoring ignores it).
	Late int64
	// Ref is what the window is judged against, fixed when it opened.
	Ref Ref
}

// Ref is what a window is judged against: the post's typical activity
// and opinion as they stood when the window opened, from the windows
// before it. It never changes afterwards, so a window's verdict is a
// function of its own votes and of its Ref alone, whenever and in
// whatever order those votes arrive.
type Ref struct {
	// Expected is the post's typical activity (votes cast per window).
	Expected float64
	// Threshold is the activity above which the window is anomalous:
	// Expected plus what its noise allows, or less while the post's
	// activity has been above its typical level for a while (Sustained).
	Threshold float64
	// Sustained says the post's activity had been above its typical
	// level for long enough (a cumulative test) that any excess counts.
	Sustained bool
	// Mean is the post's opinion when the window opened: the mean of its
	// counted votes, or in a young post that has none yet but is older
	// than its bootstrap, the plain mean of its votes. NaN in a post's
	// first windows, while it has neither (see Undecided). MeanWeight is
	// how many votes Mean stands for.
	Mean       float64
	MeanWeight float64
	// Episode is how far the opinion of the votes cast while activity was
	// above its typical level departed from Mean, in standard errors
	// (signed: negative below Mean); 0 outside such a period.
	Episode float64
	// NewMean and NewWeight are the recent opinion of first-time raters
	// at typical volume (a moving average over newWindows) and how many votes
	// it stands for: what confirms changed votes as a genuine shift.
	// NewExcess says first-time raters have been above the typical
	// activity for a while (the cumulative test, on them alone): they may
	// be part of a campaign then, and confirm nothing.
	NewMean   float64
	NewWeight float64
	NewExcess bool
	// Reviewed says the opinion fields above were replaced once, reviewAfter
	// windows after the window, by what the post showed then (see
	// Stats.Review): a window held out for its changed votes gets a second
	// look once the post's first-time raters had time to show a shift, and
	// one held out for volume before the post had an opinion is judged
	// against the opinion it has by then.
	Reviewed bool
}

// Mean is the plain mean of the window's votes.
func (w Window) Mean() float64 { return float64(w.Sum) / float64(w.Count) }

// Activity is what the window saw cast: its votes and its retractions.
func (w Window) Activity() int64 { return w.Count + w.Retracts }

// New is the number of first-time raters among the window's votes.
func (w Window) New() int64 { return w.Count - w.Rerates }

// Params are the knobs of the activity and opinion baselines and of
// surge-guard. Every duration is event time.
type Params struct {
	// Window is the window length (WINDOW).
	Window time.Duration
	// BaselineTau is the time constant of the moving average of a post's
	// activity per window: how fast "typical" adapts to genuine growth.
	BaselineTau time.Duration
	// VolumeZ is how many standard deviations of its noise a window's
	// activity may lie above the typical activity before it is anomalous.
	VolumeZ float64
	// OpinionZ is how many standard errors a window's mean may depart
	// from the post's opinion before its opinion is anomalous.
	OpinionZ float64
	// Floor is the smallest anomaly threshold in votes per window, so a
	// sparse post's occasional pair of ratings is never anomalous.
	Floor float64
	// NewPost is the activity (votes per window) assumed for a post
	// before it has windows of its own: the prior its own windows
	// outweigh within about BaselineTau.
	NewPost float64
}

// baselineWindows is the default time constant of a post's typical
// activity, in windows: the method's other spans (bootstrap, review) are
// counted in windows too, so that a stack run with short windows (a demo,
// a test) behaves as the same stack with one-minute windows, faster.
const baselineWindows = 35

// DefaultParams are the documented defaults (docs/scoring.md) for a window
// length.
func DefaultParams(window time.Duration) Params {
	return Params{Window: window, BaselineTau: baselineWindows * window, VolumeZ: 3, OpinionZ: 4, Floor: 2, NewPost: 10}
}

// Fixed parts of the method (docs/scoring.md says why each is what it is).
const (
	// dispersion is honest activity's spread beyond Poisson noise, as a
	// share of the typical activity: the noise of b votes a window is
	// sqrt(b + (dispersion·b)²).
	dispersion = 0.05
	// spread is the standard deviation of one vote assumed by the
	// opinion tests (honest ratings on a 0..5 scale spread by 1 to 1.4).
	spread = 1.25
	// margin is the departure of opinion, in score points, that never
	// counts as anomalous, however many votes show it.
	margin = 0.1
	// minVotes is how many counted votes a post needs before it has an
	// opinion that windows are judged against.
	minVotes = 10
	// bootstrap is how many windows from its first one a post may go
	// without an opinion: windows opening later are judged against the
	// plain mean of its votes when nothing counts yet.
	bootstrap = 30
	// reviewAfter is how many windows after it a window held out with
	// changed votes, or held out for its volume before the post had an
	// opinion, is judged again, against what the post's opinion and
	// first-time raters say then.
	reviewAfter = 30
	// cusumSlack, cusumAlarm and cusumMax drive the cumulative test of
	// activity: each finished window adds its activity's excess in
	// standard deviations less cusumSlack; from cusumAlarm on the excess
	// has been sustained; the sum is capped at cusumMax so that it falls
	// back within cusumMax/cusumSlack windows once the excess ends.
	cusumSlack = 0.5
	cusumAlarm = 5
	cusumMax   = 10
	// episodeWindows and newWindows are the time constants, in windows, of
	// the opinion of votes cast in sustained excess, and of first-time
	// raters' recent opinion.
	episodeWindows = 30
	newWindows     = 5
	// flagWindows is how long, in windows, a held-out window flags its
	// post as under a campaign.
	flagWindows = 60
	// learnCap bounds what one window teaches the typical activity, in
	// multiples of it (plus Floor).
	learnCap = 4
)

// decay is what a moving average with a time constant of windows keeps
// of itself from one window to the next.
func decay(windows float64) float64 { return math.Exp(-1 / windows) }

// FlagFor is how long in event time a held-out window flags its post as
// under a campaign: an hour at WINDOW=1m.
func (p Params) FlagFor() time.Duration { return flagWindows * p.Window }

func (p Params) alpha() float64 {
	a := float64(p.Window) / float64(p.BaselineTau)
	return math.Min(a, 1)
}

// Noise is the standard deviation of honest activity around a typical
// activity of b votes a window.
func Noise(b float64) float64 { return math.Sqrt(b + dispersion*dispersion*b*b) }

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

// Micro-units keep the running totals in exact integer arithmetic: the
// totals then do not depend on the order in which windows changed.
const micro = 1e6

// WeightMicro is how many votes' worth the window counts for (its votes
// times its verdict's factor), in millionths.
func WeightMicro(w Window, p Params) int64 {
	_, weight := Micros(w, p)
	return weight
}

// ContribMicro is the window's weight times its mean, in millionths.
func ContribMicro(w Window, p Params) int64 {
	contrib, _ := Micros(w, p)
	return contrib
}

// Micros are ContribMicro and WeightMicro of the window, from one verdict.
func Micros(w Window, p Params) (contrib, weight int64) {
	if w.Count <= 0 {
		return 0, 0
	}
	f := Judge(w, p).Factor
	return int64(math.Round(f * float64(w.Sum) * micro)), int64(math.Round(f * float64(w.Count) * micro))
}

// Totals are a post's running sums over all its windows.
type Totals struct {
	Sum, Count          int64 // over latest votes: Count = distinct raters
	WeightedSum, Weight int64 // Σ ContribMicro and Σ WeightMicro
	// Dist counts the latest votes by score, 0 to 5: it adds up to Count.
	Dist [6]int64
}

// Voted moves the distribution from a user's old vote (had: there was
// one) to their new one.
func (t *Totals) Voted(old int, had bool, new int) {
	if had && old >= 0 && old < len(t.Dist) {
		t.Dist[old]--
	}
	if new >= 0 && new < len(t.Dist) {
		t.Dist[new]++
	}
}

// Replace moves the totals from a window's old contents to its new ones.
func (t *Totals) Replace(old, new Window, p Params) {
	t.Sum += new.Sum - old.Sum
	t.Count += new.Count - old.Count
	nc, nw := Micros(new, p)
	oc, ow := Micros(old, p)
	t.WeightedSum += nc - oc
	t.Weight += nw - ow
}

// Opinion is the mean of the counted votes and how many votes count:
// what a new window's opinion is judged against. ok is false while fewer
// than minVotes count.
func (t Totals) Opinion() (mean, votes float64, ok bool) {
	if t.Weight < minVotes*micro {
		return math.NaN(), 0, false
	}
	return float64(t.WeightedSum) / float64(t.Weight), float64(t.Weight) / micro, true
}

// BootstrapEnd is the start of the first window after a post's bootstrap,
// for a post whose first window started at first.
func (p Params) BootstrapEnd(first time.Time) time.Time {
	return first.Add(bootstrap * p.Window)
}
