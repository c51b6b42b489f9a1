package scoring

import (
	"math"
	"time"
)

// HistoryPoint is a post's score and plain mean at the end of a window.
type HistoryPoint struct {
	At    time.Time
	Score float64 // NaN before any rating counts
	Mean  float64 // NaN without ratings
}

// History recomputes a post's score at the end of each of its windows in
// ws (oldest first, every window since some start) and at now, with
// strategy s: the totals at each point are the post's totals (in st) less
// the windows that came after it. It scores the windows as they are now
// (a rating later moved by a re-rating counts where it is now), through
// NewInput as the scorer does. At most maxPoints points are scored, evenly
// spread, always including now, which is scored exactly as the scorer
// scores the post at now with its partition's newest event at reached
// (the post's tracker as it is; the earlier points without the windows
// awaiting review, and with open windows judged whole). A strategy that
// needs the whole history (NeedsHistory) sees only what ws holds.
func History(s Strategy, p Params, st Stats, ws []Window, now, reached time.Time, maxPoints int) []HistoryPoint {
	if len(ws) == 0 {
		return nil
	}
	// prefix[i] are the totals over every window up to ws[i].
	prefix := make([]Totals, len(ws))
	t := st.Totals
	for i := len(ws) - 1; i >= 0; i-- {
		prefix[i] = t
		t.Replace(ws[i], Window{Start: ws[i].Start, Ref: ws[i].Ref}, p)
	}
	stride := max(1, len(ws)/max(maxPoints, 1))
	var out []HistoryPoint
	at := func(n int, now time.Time) {
		tot := prefix[n-1]
		in := NewInput(st, ws, now, p)
		if n < len(ws) {
			at := st
			at.Totals, at.Tracker.Current, at.Tracker.Pending = tot, ws[n-1].Start, nil
			in = NewInput(at, ws[:n], now, p)
		} else {
			in.Reached = reached
		}
		r := s.Score(in)
		pt := HistoryPoint{At: now, Score: math.NaN(), Mean: math.NaN()}
		if r.OK {
			pt.Score = r.Score
		}
		if tot.Count > 0 {
			pt.Mean = float64(tot.Sum) / float64(tot.Count)
		}
		out = append(out, pt)
	}
	for i := range ws {
		end := ws[i].Start.Add(p.Window)
		if i%stride == 0 && end.Before(now) && i < len(ws)-1 {
			at(i+1, end)
		}
	}
	at(len(ws), now)
	return out
}
