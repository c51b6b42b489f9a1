package fold

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
)

// withRetractions turns about one event in four of a stream into a
// retraction by the same user of the same post at the same time.
func withRetractions(seed uint64, events []rating.Event) []rating.Event {
	rng := rand.New(rand.NewPCG(seed, 2))
	out := make([]rating.Event, len(events))
	for i, e := range events {
		if rng.IntN(4) == 0 {
			e.V, e.Retract, e.Score = rating.Version2, true, 0
		}
		out[i] = e
	}
	return out
}

// The fold with retractions equals the definition: each (post, user)'s
// latest event counts when it is a rating; a rating is a changed vote
// when one of the user's ratings of the post took effect before it; a
// retraction that took a rating back is activity in its own window.
func TestRetractionsMatchTheDefinition(t *testing.T) {
	p := scoring.DefaultParams(time.Second)
	for seed := uint64(1); seed <= 300; seed++ {
		events := withRetractions(seed, stream(seed, 300))
		st := NewState(p, 0)
		for _, e := range events {
			st.Apply(e, 0)
		}
		matchesDefinition(t, seed, p, st, events)
	}
}

// With erasures too: an erasure deletes every vote of the user as if the
// user had never rated (their earlier retractions stay counted as
// activity), whatever the times of their votes.
func TestErasuresMatchTheDefinition(t *testing.T) {
	p := scoring.DefaultParams(time.Second)
	for seed := uint64(1); seed <= 300; seed++ {
		events := withErasures(seed, withRetractions(seed, stream(seed, 300)))
		st := NewState(p, 0)
		erased := 0
		for _, e := range events {
			if !e.Erase {
				st.Apply(e, 0)
				continue
			}
			for _, x := range Erasure(e, postsOf(st, e.UserID)) {
				if st.Apply(x, 0) != Erased {
					t.Fatalf("seed %d: a vote to erase was not erased", seed)
				}
				erased++
			}
		}
		if erased == 0 && seed < 10 {
			t.Fatalf("seed %d: nothing erased", seed)
		}
		matchesDefinition(t, seed, p, st, events)
	}
}

// withErasures adds an erasure of a random user of the stream at a few
// random places, timed like its neighbour (or earlier: an erasure wins
// whatever the times).
func withErasures(seed uint64, events []rating.Event) []rating.Event {
	rng := rand.New(rand.NewPCG(seed, 3))
	out := slices.Clone(events)
	for range 3 {
		i := rng.IntN(len(out))
		user := out[rng.IntN(len(out))].UserID
		e, _ := rating.NewErasure(user, out[i].RatedAt.Add(-time.Duration(rng.IntN(3))*time.Second))
		out = slices.Insert(out, i, e)
	}
	return out
}

// postsOf lists the posts user has a vote on, as the windower finds them.
func postsOf(st *State, user string) []int64 {
	var ids []int64
	for k := range st.Votes {
		if k.UserID == user {
			ids = append(ids, k.PostID)
		}
	}
	slices.Sort(ids)
	return ids
}

// matchesDefinition checks st against the definition of the fold over
// events (see the tests above).
func matchesDefinition(t *testing.T, seed uint64, p scoring.Params, st *State, events []rating.Event) {
	t.Helper()
	latest := map[VoteKey]rating.Event{}
	rated := map[VoteKey]bool{}  // a rating of the key took effect
	rerate := map[VoteKey]bool{} // the latest rating followed an effective one
	retracts := map[WindowKey]int64{}
	for _, e := range events {
		if e.Erase {
			for k := range latest {
				if k.UserID == e.UserID {
					delete(latest, k)
					delete(rated, k)
					delete(rerate, k)
				}
			}
			continue
		}
		k := VoteKey{e.PostID, e.UserID}
		old, ok := latest[k]
		if ok && !rating.Newer(Truncate(e.RatedAt), e.EventID, Truncate(old.RatedAt), old.EventID) {
			continue
		}
		if e.Retract && ok && !old.Retract {
			retracts[WindowKey{e.PostID, p.WindowStart(Truncate(e.RatedAt))}]++
		}
		if !e.Retract {
			rerate[k] = rated[k]
			rated[k] = true
		}
		latest[k] = e
	}
	if len(st.Votes) != len(latest) {
		t.Fatalf("seed %d: %d votes stored, want %d", seed, len(st.Votes), len(latest))
	}
	type sums struct{ sum, count, rerates, rerateSum int64 }
	win := map[WindowKey]sums{}
	raters, total := map[int64]int64{}, map[int64]int64{}
	dists := map[int64][6]int64{}
	for k, e := range latest {
		v := st.Votes[k]
		if v.EventID != e.EventID || v.Retracted != e.Retract {
			t.Fatalf("seed %d: vote %v = %+v, want event %+v", seed, k, v, e)
		}
		if e.Retract {
			continue
		}
		wk := WindowKey{k.PostID, p.WindowStart(Truncate(e.RatedAt))}
		s := win[wk]
		s.sum, s.count = s.sum+int64(e.Score), s.count+1
		if rerate[k] {
			s.rerates, s.rerateSum = s.rerates+1, s.rerateSum+int64(e.Score)
		}
		win[wk] = s
		raters[k.PostID]++
		total[k.PostID] += int64(e.Score)
		d := dists[k.PostID]
		d[e.Score]++
		dists[k.PostID] = d
	}
	for k, w := range st.Windows {
		want := win[k]
		if w.Sum != want.sum || w.Count != want.count || w.Rerates != want.rerates || w.RerateSum != want.rerateSum || w.Retracts != retracts[k] {
			t.Fatalf("seed %d: window %v = %+v, want %+v and %d retractions", seed, k, w, want, retracts[k])
		}
	}
	for id, post := range st.Posts {
		if post.Totals.Count != raters[id] || post.Totals.Sum != total[id] || post.Totals.Dist != dists[id] {
			t.Fatalf("seed %d: post %d totals %d/%d %v, want %d/%d %v", seed, id,
				post.Totals.Sum, post.Totals.Count, post.Totals.Dist, total[id], raters[id], dists[id])
		}
		_, _, contrib, weight := windowSums(st, id)
		if contrib != post.Totals.WeightedSum || weight != post.Totals.Weight {
			t.Fatalf("seed %d: post %d weighted totals drifted from its windows", seed, id)
		}
	}
}

func TestARetractionTakesTheRatingBackOnce(t *testing.T) {
	p := scoring.DefaultParams(time.Minute)
	st := NewState(p, 0)
	t0 := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	ev := func(user string, score int, at time.Time, retract bool) rating.Event {
		id, _ := uuid.NewV7()
		e := rating.Event{V: 1, EventID: id, PostID: 1, UserID: user, Score: score, RatedAt: at}
		if retract {
			e.V, e.Retract, e.Score = rating.Version2, true, 0
		}
		return e
	}
	// Nothing to take back: no post, no window, only a tombstone.
	if got := st.Apply(ev("nobody", 0, t0, true), 0); got != NothingToRetract {
		t.Fatalf("retraction of nothing: %v", got)
	}
	if len(st.Posts) != 0 || len(st.Windows) != 0 || !st.Votes[VoteKey{1, "nobody"}].Retracted {
		t.Fatalf("a retraction of nothing touched the post: %d posts, %d windows", len(st.Posts), len(st.Windows))
	}
	rate := ev("u", 5, t0, false)
	st.Apply(rate, 0)
	st.Apply(ev("v", 3, t0, false), 0)
	later := t0.Add(3 * time.Minute)
	retract := ev("u", 0, later, true)
	if got := st.Apply(retract, 0); got != Retracted {
		t.Fatalf("retraction: %v", got)
	}
	first, cur := st.Windows[WindowKey{1, p.WindowStart(t0)}], st.Windows[WindowKey{1, p.WindowStart(later)}]
	if first.Count != 1 || first.Sum != 3 || cur.Count != 0 || cur.Retracts != 1 || cur.Activity() != 1 {
		t.Fatalf("after the retraction: first window %+v, the retraction's %+v", first, cur)
	}
	tot := st.Posts[1].Totals
	if tot.Count != 1 || tot.Sum != 3 || tot.Dist != [6]int64{0, 0, 0, 1, 0, 0} {
		t.Fatalf("totals %+v", tot)
	}
	// The same retraction again, and a rating older than it delivered
	// late, change nothing.
	if got := st.Apply(retract, 0); got != Superseded {
		t.Fatalf("duplicate retraction: %v", got)
	}
	if got := st.Apply(ev("u", 1, t0.Add(time.Minute), false), 0); got != Superseded {
		t.Fatalf("an older rating after the retraction: %v", got)
	}
	if got := st.Apply(ev("u", 0, later.Add(time.Second), true), 0); got != NothingToRetract {
		t.Fatalf("a second retraction: %v", got)
	}
	if st.Posts[1].Totals.Count != 1 {
		t.Fatalf("totals moved: %+v", st.Posts[1].Totals)
	}
	// Rating again after taking it back is a changed vote, not a
	// first-time rater: rate, retract, rate cannot pass for new accounts.
	again := later.Add(2 * time.Minute)
	if got := st.Apply(ev("u", 4, again, false), 0); got != Counted {
		t.Fatalf("rating again: %v", got)
	}
	if w := st.Windows[WindowKey{1, p.WindowStart(again)}]; w.Rerates != 1 || w.New() != 0 {
		t.Fatalf("rating after a retraction counted as a first-time rater: %+v", w)
	}
	if tot := st.Posts[1].Totals; tot.Count != 2 || tot.Sum != 7 {
		t.Fatalf("totals %+v", tot)
	}
}
