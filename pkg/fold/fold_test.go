package fold

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
)

// stream draws n events over a few posts and users, with re-ratings,
// exact duplicates and events out of time order.
func stream(seed uint64, n int) []rating.Event {
	rng := rand.New(rand.NewPCG(seed, 1))
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var out []rating.Event
	for len(out) < n {
		if len(out) > 0 && rng.IntN(10) == 0 { // a duplicate delivery
			out = append(out, out[rng.IntN(len(out))])
			continue
		}
		var id uuid.UUID
		for i := range id {
			id[i] = byte(rng.UintN(256))
		}
		id[6], id[8] = id[6]&0x0f|0x70, id[8]&0x3f|0x80
		at := base.Add(time.Duration(rng.Int64N(int64(20 * time.Second))))
		if rng.IntN(8) == 0 { // same instant as another rating: the event id decides
			at = base.Add(time.Duration(rng.IntN(3)) * time.Second)
		}
		out = append(out, rating.Event{
			V: 1, EventID: id, PostID: int64(1 + rng.IntN(5)), UserID: "u" + string(rune('a'+rng.IntN(12))),
			Score: rng.IntN(6), RatedAt: at,
		})
	}
	return out
}

// naive computes the expected windows straight from the definition: each
// (post, user)'s latest event by (rated_at, event_id), grouped by window
// (sum, count, and how many of those votes replaced an earlier one of
// the same user, every vote after the user's first that took effect, and
// their sum).
func naive(events []rating.Event, p scoring.Params) (map[VoteKey]rating.Event, map[WindowKey][4]int64) {
	latest := map[VoteKey]rating.Event{}
	rerate := map[VoteKey]bool{}
	for _, e := range events {
		k := VoteKey{e.PostID, e.UserID}
		old, ok := latest[k]
		if !ok || rating.Newer(Truncate(e.RatedAt), e.EventID, Truncate(old.RatedAt), old.EventID) {
			latest[k] = e
			rerate[k] = ok
		}
	}
	win := map[WindowKey][4]int64{}
	for k, e := range latest {
		wk := WindowKey{k.PostID, p.WindowStart(Truncate(e.RatedAt))}
		v := win[wk]
		v[0], v[1] = v[0]+int64(e.Score), v[1]+1
		if rerate[k] {
			v[2]++
			v[3] += int64(e.Score)
		}
		win[wk] = v
	}
	return latest, win
}

func TestFoldMatchesDefinitionOnRandomStreams(t *testing.T) {
	p := scoring.DefaultParams(time.Second)
	for seed := uint64(1); seed <= 200; seed++ {
		events := stream(seed, 300)
		st := NewState(p, 0)
		for _, e := range events {
			st.Apply(e, 0)
		}
		latest, win := naive(events, p)
		for k, e := range latest {
			v := st.Votes[k]
			if v.Score != e.Score || v.EventID != e.EventID {
				t.Fatalf("seed %d: vote %v = %+v, want event %+v", seed, k, v, e)
			}
		}
		raters := map[int64]int64{}
		sums := map[int64]int64{}
		dists := map[int64][6]int64{}
		for k, e := range latest {
			raters[k.PostID]++
			sums[k.PostID] += int64(e.Score)
			d := dists[k.PostID]
			d[e.Score]++
			dists[k.PostID] = d
		}
		for k, w := range st.Windows {
			if want := win[k]; w.Sum != want[0] || w.Count != want[1] || w.Rerates != want[2] || w.RerateSum != want[3] {
				t.Fatalf("seed %d: window %v = %d/%d with %d re-ratings summing %d, want %d/%d with %d summing %d",
					seed, k, w.Sum, w.Count, w.Rerates, w.RerateSum, want[0], want[1], want[2], want[3])
			}
		}
		for id, post := range st.Posts {
			if post.Totals.Count != raters[id] || post.Totals.Sum != sums[id] {
				t.Fatalf("seed %d: post %d totals %d/%d, want %d raters summing %d", seed, id, post.Totals.Sum, post.Totals.Count, raters[id], sums[id])
			}
			if post.Totals.Dist != dists[id] {
				t.Fatalf("seed %d: post %d distribution %v, want %v", seed, id, post.Totals.Dist, dists[id])
			}
			ws, wc, wsum, wweight := windowSums(st, id)
			if ws != sums[id] || wc != raters[id] {
				t.Fatalf("seed %d: post %d windows sum to %d/%d, want %d/%d", seed, id, ws, wc, sums[id], raters[id])
			}
			if wsum != post.Totals.WeightedSum || wweight != post.Totals.Weight {
				t.Fatalf("seed %d: post %d weighted totals drifted from its windows", seed, id)
			}
		}
	}
}

func TestReratingMovesTheVoteBetweenWindows(t *testing.T) {
	p := scoring.DefaultParams(time.Minute)
	st := NewState(p, 0)
	t0 := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	mk := func(post int64, user string, score int, at time.Time) rating.Event {
		id, _ := uuid.NewV7()
		return rating.Event{V: 1, EventID: id, PostID: post, UserID: user, Score: score, RatedAt: at}
	}
	if got := st.Apply(mk(1, "u", 5, t0), 0); got != Counted {
		t.Fatalf("first rating: %v", got)
	}
	if got := st.Apply(mk(2, "u", 3, t0), 0); got != Counted {
		t.Fatalf("same user, other post: %v (the seed overwrote it)", got)
	}
	later := t0.Add(3 * time.Minute)
	if got := st.Apply(mk(1, "u", 1, later), 0); got != Replaced {
		t.Fatalf("re-rating: %v", got)
	}
	old := st.Windows[WindowKey{1, p.WindowStart(t0)}]
	cur := st.Windows[WindowKey{1, p.WindowStart(later)}]
	if old.Count != 0 || old.Sum != 0 || cur.Count != 1 || cur.Sum != 1 {
		t.Fatalf("old window %d/%d, new window %d/%d; want 0/0 and 1/1", old.Sum, old.Count, cur.Sum, cur.Count)
	}
	if old.Rerates != 0 || cur.Rerates != 1 || cur.New() != 0 || !st.Votes[VoteKey{1, "u"}].Rerate {
		t.Fatalf("a re-rating is not new volume: old window %d re-ratings, new window %d of %d", old.Rerates, cur.Rerates, cur.Count)
	}
	// Re-rating again moves the re-rating on.
	again := later.Add(2 * time.Minute)
	if got := st.Apply(mk(1, "u", 2, again), 0); got != Replaced {
		t.Fatalf("second re-rating: %v", got)
	}
	if cur, next := st.Windows[WindowKey{1, p.WindowStart(later)}], st.Windows[WindowKey{1, p.WindowStart(again)}]; cur.Rerates != 0 || next.Rerates != 1 {
		t.Fatalf("after a second re-rating: %d and %d re-ratings, want 0 and 1", cur.Rerates, next.Rerates)
	}
	if c := st.Posts[1].Totals.Count; c != 1 {
		t.Fatalf("post 1 has %d raters, want 1: a re-rater counts once", c)
	}
	if c := st.Posts[2].Totals.Count; c != 1 {
		t.Fatalf("post 2 has %d raters, want 1", c)
	}
	if got := st.Apply(mk(1, "u", 4, t0.Add(time.Minute)), 0); got != Superseded {
		t.Fatalf("an older event must not replace a newer rating, got %v", got)
	}
}

// windowSums adds up the windows of post id: their sums, counts, and
// weighted contributions and weights (which the post's totals must equal).
func windowSums(st *State, id int64) (sum, count, contrib, weight int64) {
	for k, w := range st.Windows {
		if k.PostID == id {
			sum += w.Sum
			count += w.Count
			contrib += scoring.ContribMicro(w, st.Params)
			weight += scoring.WeightMicro(w, st.Params)
		}
	}
	return sum, count, contrib, weight
}
