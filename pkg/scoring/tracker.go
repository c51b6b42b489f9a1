package scoring

import (
	"math"
	"slices"
	"time"
)

// Tracker follows a post's typical activity and the recent opinion of its
// voters, window by window in event time, to give each new window its
// Ref. It learns only from what it counted: a window held out teaches the
// typical activity nothing, so a campaign cannot make itself the norm.
type Tracker struct {
	// Baseline is an exponential moving average of the activity of
	// finished windows, and Seen the weight it has accumulated
	// (1 - (1-α)^n after n windows): the prior (Params.NewPost) fills the
	// rest, so a young post's typical activity is the prior until its own
	// windows outweigh it.
	Baseline float64
	Seen     float64
	// Sustain is the cumulative sum of finished windows' excess activity
	// (in standard deviations, less a slack), floored at 0 and capped: a
	// test that sees a long small excess that no window shows alone.
	Sustain float64
	// EpisodeCount and EpisodeSum are the votes cast (decayed over
	// episodeWindows) while Sustain was above zero, and their sum.
	EpisodeCount float64
	EpisodeSum   float64
	// NewCount and NewSum are the first-time raters of windows at typical
	// volume (decayed over newWindows), and their sum; NewSustain is the
	// cumulative test of first-time raters' excess over the typical
	// activity, as Sustain is of all votes.
	NewCount   float64
	NewSum     float64
	NewSustain float64
	// First and Current are the starts of the first and the newest
	// window seen.
	First   time.Time
	Current time.Time
	// Pending are the starts of the windows held out with changed votes,
	// or before the post had an opinion, that await their review, oldest
	// first.
	Pending []time.Time
	// HeldSince and HeldLast are the first and the last of the post's
	// latest run of windows held out when they finished, each less than
	// Params.FlagFor after the one before: what flags the post under a campaign
	// (zero: none yet).
	HeldSince time.Time
	HeldLast  time.Time
}

// Same reports whether two trackers hold the same values, to the bit.
func (t *Tracker) Same(o *Tracker) bool {
	same := func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }
	return same(t.Baseline, o.Baseline) && same(t.Seen, o.Seen) && same(t.Sustain, o.Sustain) &&
		same(t.EpisodeCount, o.EpisodeCount) && same(t.EpisodeSum, o.EpisodeSum) &&
		same(t.NewCount, o.NewCount) && same(t.NewSum, o.NewSum) && same(t.NewSustain, o.NewSustain) &&
		t.First.Equal(o.First) && t.Current.Equal(o.Current) && t.HeldSince.Equal(o.HeldSince) && t.HeldLast.Equal(o.HeldLast) &&
		slices.EqualFunc(t.Pending, o.Pending, time.Time.Equal)
}

// Expected is the typical activity a window opening now is judged
// against.
func (t *Tracker) Expected(p Params) float64 { return t.Baseline + (1-t.Seen)*p.NewPost }

// ref is the Ref a window opening now at start gets, given the post's
// totals.
func (t *Tracker) ref(start time.Time, tot Totals, p Params) Ref {
	r := t.opinion(start, tot, p)
	b := t.Expected(p)
	r.Expected, r.Sustained = b, t.Sustain >= cusumAlarm
	if r.Sustained {
		r.Threshold = math.Max(b-Noise(b), p.Floor)
	} else {
		r.Threshold = math.Max(b+p.VolumeZ*Noise(b)+1, p.Floor)
	}
	return r
}

// opinion fills the opinion fields of a Ref: what the post, its episode
// of sustained activity and its first-time raters say at window start.
func (t *Tracker) opinion(start time.Time, tot Totals, p Params) Ref {
	r := Ref{Mean: math.NaN(), NewMean: math.NaN(), NewWeight: t.NewCount, NewExcess: t.NewSustain >= cusumAlarm}
	if t.NewCount > 0 {
		r.NewMean = t.NewSum / t.NewCount
	}
	mean, votes, ok := tot.Opinion()
	if !ok {
		if tot.Count > 0 && !start.Before(p.BootstrapEnd(t.First)) {
			r.Mean, r.MeanWeight = float64(tot.Sum)/float64(tot.Count), float64(tot.Count)
		}
		return r
	}
	r.Mean, r.MeanWeight = mean, votes
	if t.Sustain > 0 && t.EpisodeCount >= 1 {
		d := t.EpisodeSum/t.EpisodeCount - mean
		r.Episode = math.Copysign(math.Max(0, math.Abs(d)-margin)/(spread/math.Sqrt(t.EpisodeCount)), d)
	}
	return r
}

// advance moves the tracker to window start when it is newer than the
// current window, folding the finished window cur (the current window's
// votes as they are now) and the empty windows in between into it. It
// returns the pending windows whose review is now due.
func (t *Tracker) advance(start time.Time, cur Window, p Params) []time.Time {
	if t.Current.IsZero() {
		t.First, t.Current = start, start
		return nil
	}
	if !start.After(t.Current) {
		return nil
	}
	t.finish(cur, p)
	if gap := int64(start.Sub(t.Current)/p.Window) - 1; gap > 0 {
		t.empty(gap, p)
	}
	t.Current = start
	n := len(t.Due(start, p))
	due := t.Pending[:n:n]
	t.Pending = t.Pending[n:]
	if len(t.Pending) == 0 {
		t.Pending = nil
	}
	return due
}

// Due are the pending windows whose review is due once the tracker
// reaches window upTo.
func (t *Tracker) Due(upTo time.Time, p Params) []time.Time {
	n := 0
	for n < len(t.Pending) && !t.Pending[n].Add(reviewAfter*p.Window).After(upTo) {
		n++
	}
	return t.Pending[:n:n]
}

// finish folds one finished window into the tracker.
func (t *Tracker) finish(w Window, p Params) {
	v := Judge(w, p)
	b := t.Expected(p)
	a := float64(w.Activity())
	undecided := math.IsNaN(w.Ref.Mean)
	if v.HeldOut() && !w.Ref.Reviewed && (undecided || w.Rerates > 0) {
		t.Pending = append(t.Pending, w.Start)
	}
	if v.HeldOut() && !undecided {
		if t.HeldLast.IsZero() || w.Start.Sub(t.HeldLast) > p.FlagFor() {
			t.HeldSince = w.Start
		}
		t.HeldLast = w.Start
	}
	excess := w.Ref.NewExcess
	if !undecided {
		// A post without an opinion has no typical activity to exceed yet.
		t.sustain((a-b)/math.Max(Noise(b), 1), float64(w.Count), float64(w.Sum), p)
		t.NewSustain = cusum(t.NewSustain, (float64(w.New())-b)/math.Max(Noise(b), 1))
		excess = excess || t.NewSustain >= cusumAlarm
	}
	dn := decay(newWindows)
	t.NewCount *= dn
	t.NewSum *= dn
	// First-time raters say the post's opinion only from windows that
	// counted, at typical volume, while they were not in excess.
	if n := w.New(); n > 0 && v.Factor == 1 && !excess && typical(float64(n), b) {
		t.NewCount += float64(n)
		t.NewSum += float64(w.Sum - w.RerateSum)
	}
	// What a window teaches: its activity (bounded) as far as it counted,
	// the typical activity as far as it was held out. A post without an
	// opinion yet has nothing but activity to go by: every window teaches,
	// so that a launch far above the prior becomes its norm.
	f := v.Factor
	if undecided {
		f = 1
	}
	x := f*math.Min(a, learnCap*b+p.Floor) + (1-f)*b
	al := p.alpha()
	t.Baseline += al * (x - t.Baseline)
	t.Seen += al * (1 - t.Seen)
}

// sustain adds one window's excess activity z (count votes summing to
// sum) to the cumulative test and the episode's opinion.
func (t *Tracker) sustain(z, count, sum float64, p Params) {
	t.Sustain = cusum(t.Sustain, z)
	if t.Sustain <= 0 {
		t.EpisodeCount, t.EpisodeSum = 0, 0
		return
	}
	d := decay(episodeWindows)
	t.EpisodeCount = t.EpisodeCount*d + count
	t.EpisodeSum = t.EpisodeSum*d + sum
}

// cusum adds one window's excess z (in standard deviations, bounded so
// that one window cannot raise the alarm alone) to a cumulative sum.
func cusum(s, z float64) float64 {
	return math.Min(cusumMax, math.Max(0, s+math.Max(-2, math.Min(5, z))-cusumSlack))
}

// empty folds n windows without votes: each counts as no activity.
func (t *Tracker) empty(n int64, p Params) {
	for i := int64(0); i < n && (t.Sustain > 0 || t.NewSustain > 0); i++ {
		b := t.Expected(p)
		z := -b / math.Max(Noise(b), 1)
		t.sustain(z, 0, 0, p)
		t.NewSustain = cusum(t.NewSustain, z)
	}
	if t.Sustain <= 0 {
		t.EpisodeCount, t.EpisodeSum = 0, 0
	}
	k := float64(n)
	dn := math.Pow(decay(newWindows), k)
	t.NewCount *= dn
	t.NewSum *= dn
	keep := math.Pow(1-p.alpha(), k)
	t.Baseline *= keep
	t.Seen = 1 - (1-t.Seen)*keep
}

// Stats is what scoring keeps for one post, incrementally: the running
// totals and the tracker. It is where the one-user-one-vote fold
// (pkg/fold) and scoring meet, through two calls: Rated once for each
// rating the fold applies, then Change for each window the rating changes
// (the window that loses a retracted vote, the one that gains the new).
type Stats struct {
	Totals  Totals
	Tracker Tracker
}

// Rated records that a rating falling in window start is being applied,
// cur being the post's current window (Tracker.Current) as it is now. A
// window newer than the current one finishes the current one, before any
// window changes. It returns the starts of the windows due for review:
// the caller passes each to Review before applying the rating.
func (s *Stats) Rated(start time.Time, cur Window, p Params) []time.Time {
	return s.Tracker.advance(start, cur, p)
}

// Review judges a window held out with changed votes, or before the post
// had an opinion, again, once: its opinion fields are replaced by what
// the post says now, after its first-time raters had reviewAfter windows
// to show whether a shift was genuine, and its counted votes to form an
// opinion. It returns the window reviewed.
func (s *Stats) Review(w Window, p Params) Window {
	nw := w
	r := s.Tracker.opinion(s.Tracker.Current, s.Totals, p)
	if math.IsNaN(w.Ref.Mean) {
		// Held out before the post had an opinion: judged against the
		// opinion its counted votes make, never against the plain mean
		// (the window's own votes may be most of it), or left undecided.
		r.Mean, r.MeanWeight, _ = s.Totals.Opinion()
		r.Episode = 0
	}
	nw.Ref.Mean, nw.Ref.MeanWeight, nw.Ref.Episode = r.Mean, r.MeanWeight, r.Episode
	// First-time raters in excess when the window was cast stay untrusted.
	nw.Ref.NewMean, nw.Ref.NewWeight, nw.Ref.NewExcess = r.NewMean, r.NewWeight, w.Ref.NewExcess || r.NewExcess
	nw.Ref.Reviewed = true
	s.Totals.Replace(w, nw, p)
	return nw
}

// Delta is a change to a window's votes.
type Delta struct {
	Sum, Count         int64
	Rerates, RerateSum int64
	Retracts           int64
}

// Change applies d to window w and returns it changed; when the window
// does not exist yet (exists is false), it opens at start with the Ref
// the post gives it now, which it keeps.
func (s *Stats) Change(w Window, exists bool, start time.Time, d Delta, p Params) Window {
	if !exists {
		w = Window{Start: start, Ref: s.Tracker.ref(start, s.Totals, p)}
	}
	nw := w
	nw.Sum += d.Sum
	nw.Count += d.Count
	nw.Rerates += d.Rerates
	nw.RerateSum += d.RerateSum
	nw.Retracts += d.Retracts
	s.Totals.Replace(w, nw, p)
	return nw
}

// ActivityAt is a post's typical activity (votes per window) learned by
// the window at, carried forward to event time now as the tracker would:
// every window after at without votes lowers it. It is what "recent
// honest activity" means for ordering posts by trend: held-out windows
// never raised it.
func (p Params) ActivityAt(baseline float64, at, now time.Time) float64 {
	if at.IsZero() || p.Window <= 0 {
		return 0
	}
	gone := float64(p.WindowStart(now).Sub(at)/p.Window) - 1
	if gone <= 0 {
		return baseline
	}
	return baseline * math.Pow(1-p.alpha(), gone)
}
