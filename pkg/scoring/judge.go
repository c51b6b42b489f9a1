package scoring

import "math"

// Verdict is how a window counts, and why: the numbers behind it, for
// /explain and the web page as much as for the score.
type Verdict struct {
	// Factor is the share of its votes the window counts for: 1 counts
	// fully, 0 is held out.
	Factor float64
	// Activity is the window's votes cast (first votes and changed
	// votes), and ActivityZ how far above the typical activity it lies,
	// in standard deviations of the typical activity's noise.
	Activity  int64
	ActivityZ float64
	// Anomalous says the activity is above the window's threshold;
	// VolumeShare is how far into the ramp above it (0..1).
	Anomalous   bool
	VolumeShare float64
	// OpinionZ is how far the window's mean departs from the opinion it
	// is judged against, in standard errors beyond the margin (0: within
	// it); Against is that opinion (NaN: the post has none yet).
	OpinionZ float64
	Against  float64
	// ByEpisode says the opinion test was decided by the votes of the
	// whole period of sustained activity, not by the window's alone.
	ByEpisode bool
	// Confirmed says the window's changed votes agree with what the
	// post's first-time raters at typical volume now say: a genuine shift,
	// judged against their opinion rather than the post's.
	Confirmed bool
	// OpinionShare is how far into the ramp above OpinionZ (0..1).
	OpinionShare float64
}

// HeldOut reports whether the window counts for less than all its votes.
func (v Verdict) HeldOut() bool { return v.Factor < 1 }

// Undecided reports whether a window was held out for its volume alone,
// in a post that had no opinion yet: the scorer counts it after all when
// its opinion agrees with the one the post has now (see Agrees).
func (v Verdict) Undecided() bool { return v.HeldOut() && math.IsNaN(v.Against) }

// Agrees reports whether an undecided window's opinion agrees with the
// post's opinion now (mean, standing for votes votes).
func Agrees(w Window, mean, votes float64, p Params) bool {
	if w.Count <= 0 {
		return false
	}
	se := spread * math.Sqrt(1/float64(w.Count)+1/math.Max(votes, 1))
	return math.Max(0, math.Abs(w.Mean()-mean)-margin)/se < p.OpinionZ
}

// Reason names what holds the window out, "" when it counts fully.
func (v Verdict) Reason() string {
	switch {
	case !v.HeldOut():
		return ""
	case math.IsNaN(v.Against):
		return "volume on a post without an opinion yet"
	case v.Confirmed:
		return "volume and opinion (changed votes beyond what first-time raters confirm)"
	case v.ByEpisode:
		return "sustained volume with a departing opinion"
	default:
		return "volume and opinion"
	}
}

// Judge decides how much of a window counts. A window is held out when
// both its activity and its opinion are anomalous: a campaign brings
// votes far above the post's typical activity whose opinion departs from
// the post's. Either alone counts fully: a viral surge brings volume with
// the post's usual opinion, a genuine change of opinion arrives at
// typical volume. Changed votes are activity like first votes, but a
// shift of opinion among them counts when the post's first-time raters,
// at typical volume, share it. The verdict depends only on the window's
// votes and its Ref.
func Judge(w Window, p Params) Verdict {
	v := Verdict{Factor: 1, Activity: w.Activity(), Against: w.Ref.Mean}
	if w.Count <= 0 {
		return v // no votes to hold out
	}
	r := w.Ref
	a := float64(w.Activity())
	noise := Noise(r.Expected)
	v.ActivityZ = (a - r.Expected) / math.Max(noise, 1)
	if a <= r.Threshold {
		return v
	}
	v.Anomalous = true
	v.VolumeShare = clamp01((a - r.Threshold) / (0.5*p.VolumeZ*noise + 1))
	if math.IsNaN(r.Mean) {
		// No opinion to judge by: activity alone decides, and the window
		// waits whole (undecided) for the post's opinion to judge it, so
		// that the post's first counted votes are never a sliver of one.
		v.OpinionShare, v.Factor = 1, 0
		return v
	}
	m := w.Mean()
	against, weight := r.Mean, r.MeanWeight
	if mean, votes, ok := confirmed(w, r); ok {
		v.Confirmed, against, weight = true, mean, votes
	}
	se := spread * math.Sqrt(1/float64(w.Count)+1/math.Max(weight, 1))
	v.Against = against
	d := m - against
	v.OpinionZ = math.Max(0, math.Abs(d)-margin) / se
	if !v.Confirmed && math.Abs(r.Episode) >= p.OpinionZ && d*r.Episode > 0 && math.Abs(d) >= se && math.Abs(r.Episode) > v.OpinionZ {
		v.ByEpisode, v.OpinionZ = true, math.Abs(r.Episode)
	}
	v.OpinionShare = clamp01((v.OpinionZ - p.OpinionZ) / 2)
	v.Factor = 1 - v.VolumeShare*v.OpinionShare
	return v
}

// confirmed reports whether the window's changed votes depart from the
// post's opinion the way first-time raters at typical volume do, and lie
// within noise of them: the window's own first-time raters (when they are
// at typical volume), or those of the recent windows with them
// (r.NewMean). First-time raters that have been in excess (r.NewExcess)
// confirm nothing: they may be the campaign, dragging what first-time
// raters say. It returns the first-time raters' opinion, to judge the
// window against, and how many votes it stands for.
func confirmed(w Window, r Ref) (mean, votes float64, ok bool) {
	if w.Rerates <= 0 || r.NewExcess {
		return 0, 0, false
	}
	changed := float64(w.RerateSum) / float64(w.Rerates)
	var own, sum float64
	if n := w.New(); typical(float64(n), r.Expected) {
		own, sum = float64(n), float64(w.Sum-w.RerateSum)
		if fresh, ok := agrees(changed, sum, own, w.Rerates, r.Mean); ok {
			return fresh, own, true
		}
	}
	if r.NewWeight > 0 && !math.IsNaN(r.NewMean) {
		weight := own + r.NewWeight
		fresh, ok := agrees(changed, sum+r.NewWeight*r.NewMean, weight, w.Rerates, r.Mean)
		return fresh, weight, ok
	}
	return 0, 0, false
}

// agrees reports whether first-time raters (weight votes summing to sum)
// moved away from the post's opinion, beyond their noise, in the
// direction of changed votes (rerates of them, averaging changed), and
// whether the changed votes lie within noise of them.
func agrees(changed, sum, weight float64, rerates int64, opinion float64) (float64, bool) {
	if weight < 1 {
		return 0, false
	}
	fresh := sum / weight
	moved := (fresh - opinion) * math.Copysign(1, changed-opinion)
	if moved < margin+2*spread/math.Sqrt(weight) {
		return 0, false
	}
	se := spread * math.Sqrt(1/float64(rerates)+1/weight)
	if math.Abs(changed-fresh) > margin+3*se {
		return 0, false
	}
	return fresh, true
}

// typical reports whether n first-time raters are within one standard
// deviation of a typical activity of b (or below it): a window's own
// first-time raters are trusted to say the post's opinion only then.
func typical(n, b float64) bool { return n <= b+Noise(b) }

func clamp01(x float64) float64 { return math.Min(1, math.Max(0, x)) }
