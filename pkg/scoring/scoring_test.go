package scoring

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// post folds windows into a post's state the way the windower does.
type post struct {
	p   Params
	st  Stats
	ws  []Window
	idx map[time.Time]int
}

func newPost() *post { return &post{p: DefaultParams(time.Minute), idx: map[time.Time]int{}} }

// vote adds one vote (a re-rating when rerate) to window i.
func (x *post) vote(i int, score int64, rerate bool) {
	start := t0.Add(time.Duration(i) * time.Minute)
	var cur Window
	if j, ok := x.idx[x.st.Tracker.Current]; ok {
		cur = x.ws[j]
	}
	x.st.Rated(start, cur, x.p)
	d := Delta{Sum: score, Count: 1}
	if rerate {
		d.Rerates, d.RerateSum = 1, score
	}
	j, ok := x.idx[start]
	var w Window
	if ok {
		w = x.ws[j]
	}
	w = x.st.Change(w, ok, start, d, x.p)
	if ok {
		x.ws[j] = w
	} else {
		x.idx[start] = len(x.ws)
		x.ws = append(x.ws, w)
	}
}

// window adds n first votes averaging mean to window i.
func (x *post) window(i, n int, mean float64) {
	total := int64(math.Round(mean * float64(n)))
	for k := 0; k < n; k++ {
		s := total / int64(n)
		if int64(k) < total%int64(n) {
			s++
		}
		x.vote(i, s, false)
	}
}

func (x *post) input(now time.Time) Input {
	return NewInput(x.st, x.ws, now, x.p)
}

func (x *post) score(t *testing.T, s Strategy) float64 {
	t.Helper()
	r := s.Score(x.input(x.st.Tracker.Current.Add(time.Minute)))
	if !r.OK {
		t.Fatalf("%s: no score", s.Name())
	}
	return r.Score
}

// steady is a day-old post rated ten times a minute, averaging 4.
func steady() *post {
	x := newPost()
	for i := 0; i < 600; i++ {
		x.window(i, 10, 4)
	}
	return x
}

func TestJudge(t *testing.T) {
	p := DefaultParams(time.Minute)
	ref := Ref{Expected: 10, Threshold: 10 + 3*Noise(10) + 1, Mean: 4, MeanWeight: 10000, NewMean: 4, NewWeight: 50}
	cases := []struct {
		name      string
		w         Window
		held      bool
		confirmed bool
	}{
		{"typical volume, typical opinion", Window{Count: 10, Sum: 40}, false, false},
		{"typical volume, another opinion: a genuine shift counts", Window{Count: 10, Sum: 10}, false, false},
		{"ten times the volume, the usual opinion: a viral surge counts", Window{Count: 100, Sum: 402}, false, false},
		{"ten times the volume of zeros: a campaign", Window{Count: 100, Sum: 40}, true, false},
		{"changed votes at volume, first-time raters disagree", Window{Count: 100, Sum: 40, Rerates: 90, RerateSum: 0}, true, false},
		{"changed votes at volume, first-time raters agree", Window{Count: 40, Sum: 40, Rerates: 30, RerateSum: 30}, false, true},
		{"changed votes far beyond the first-time raters", Window{Count: 130, Sum: 30, Rerates: 120, RerateSum: 0}, true, false},
	}
	for _, c := range cases {
		c.w.Ref = ref
		v := Judge(c.w, p)
		if v.HeldOut() != c.held || v.Confirmed != c.confirmed {
			t.Errorf("%s: %+v (reason %q), want held out %v, confirmed %v", c.name, v, v.Reason(), c.held, c.confirmed)
		}
		if v.HeldOut() && v.Reason() == "" {
			t.Errorf("%s: held out without a reason", c.name)
		}
	}
	// First-time raters above the typical volume for a while confirm
	// nothing: they may be the campaign.
	w := Window{Count: 40, Sum: 40, Rerates: 30, RerateSum: 30, Ref: ref}
	w.Ref.NewExcess = true
	if v := Judge(w, p); !v.HeldOut() || v.Confirmed {
		t.Errorf("confirmed by first-time raters in excess: %+v", v)
	}
	// Without an opinion, volume alone decides, and the window waits whole.
	w = Window{Count: 100, Sum: 400, Ref: ref}
	w.Ref.Mean = math.NaN()
	if v := Judge(w, p); v.Factor != 0 || !v.Undecided() {
		t.Errorf("a window of a post without an opinion: %+v", v)
	}
}

func TestStrategies(t *testing.T) {
	x := steady()
	x.window(600, 1000, 0)
	cases := []struct {
		name     string
		strategy Strategy
		want     float64
		tol      float64
	}{
		{"mean swallows a burst", Mean{}, 4 * 6000 / 7000.0, 1e-9},
		{"seed-linear keeps the newest window light", SeedLinear{}, 4, 0.01},
		{"surge-guard holds a 100x burst of zeros out", SurgeGuard{}, 4, 1e-6},
	}
	for _, c := range cases {
		if got := x.score(t, c.strategy); math.Abs(got-c.want) > c.tol {
			t.Errorf("%s: %v, want %v ± %g", c.name, got, c.want, c.tol)
		}
	}
}

// Accounts that rate twice, or rated quietly long before, are activity
// like new accounts: a burst of changed votes is held out too.
func TestChangedVotesInABurstAreHeldOut(t *testing.T) {
	x := steady()
	for k := 0; k < 500; k++ {
		x.vote(600, 0, true)
	}
	if got := x.score(t, SurgeGuard{}); math.Abs(got-4) > 1e-6 {
		t.Fatalf("a burst of 500 changed votes to zero moved the score to %v", got)
	}
}

// A long small excess that no window shows alone is caught by the
// cumulative test: half the volume again in zeros, for hours.
func TestASlowDripIsHeldOut(t *testing.T) {
	x := steady()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 600; i < 900; i++ {
		n := 8 + rng.IntN(5)
		x.window(i, n, 4)
		for k := 0; k < 3+rng.IntN(5); k++ {
			x.vote(i, 0, false)
		}
	}
	mean := x.score(t, Mean{})
	if got := x.score(t, SurgeGuard{}); got < 3.8 || mean > 3.5 {
		t.Fatalf("after five hours of a drip of zeros: surge-guard %v, mean %v", got, mean)
	}
}

// The typical activity learns only from what counted: a campaign cannot
// make itself the norm.
func TestTypicalActivityDoesNotLearnFromHeldOutWindows(t *testing.T) {
	x := steady()
	for i := 600; i < 610; i++ {
		x.window(i, 1000, 0)
	}
	x.window(610, 10, 4)
	if b := x.st.Tracker.Expected(x.p); b > 11 {
		t.Fatalf("typical activity %v after ten minutes of a held-out burst, want about 10", b)
	}
}

// A viral surge with the post's usual opinion counts, and becomes the
// post's typical activity.
func TestAViralSurgeCountsAndBecomesTypical(t *testing.T) {
	x := steady()
	for i := 600; i < 720; i++ {
		x.window(i, 100, 4)
	}
	for _, w := range x.ws[600:] {
		if Judge(w, x.p).HeldOut() {
			t.Fatalf("window %s of the surge held out", w.Start)
		}
	}
	if b := x.st.Tracker.Expected(x.p); b < 80 {
		t.Fatalf("typical activity %v after two hours at 100 a minute", b)
	}
}

// The running totals are integer sums of per-window terms: the same
// windows give the same totals whatever order their votes arrived in.
func TestTotalsDoNotDependOnTheOrderOfChanges(t *testing.T) {
	p := DefaultParams(time.Minute)
	ref := Ref{Expected: 10, Threshold: 20, Mean: 4, MeanWeight: 1000}
	var a, b Totals
	deltas := []Delta{{Sum: 5, Count: 1}, {Sum: 0, Count: 1}, {Sum: 3, Count: 1, Rerates: 1, RerateSum: 3}, {Sum: -5, Count: -1}}
	apply := func(t *Totals, order []int) {
		w := Window{Ref: ref}
		for _, i := range order {
			d := deltas[i]
			nw := w
			nw.Sum, nw.Count, nw.Rerates, nw.RerateSum = w.Sum+d.Sum, w.Count+d.Count, w.Rerates+d.Rerates, w.RerateSum+d.RerateSum
			t.Replace(w, nw, p)
			w = nw
		}
	}
	apply(&a, []int{0, 1, 2, 3})
	apply(&b, []int{2, 0, 1, 3})
	if a != b {
		t.Fatalf("totals differ with the order of changes: %+v vs %+v", a, b)
	}
}

func TestNoRatingsNoScore(t *testing.T) {
	for _, s := range Strategies() {
		if r := s.Score(Input{Now: t0, Params: DefaultParams(time.Minute)}); r.OK {
			t.Errorf("%s scored a post without ratings: %v", s.Name(), r.Score)
		}
	}
}

// The replaced app's own test: 100 posts; five rounds in which every post
// gets a 5 from a new user and both tasks run; then 100 ratings of 0 or 1
// on the first post and both tasks run; its score must stay above 4.
func TestSeedsOwnTest(t *testing.T) {
	for _, s := range []Strategy{SeedLinear{}, SurgeGuard{}} {
		for n := 0; n < 100; n++ {
			x := newPost()
			for round := 0; round < 5; round++ {
				x.vote(round, 5, false)
			}
			if n == 0 {
				for i := 0; i < 100; i++ {
					x.vote(5, int64(i%2), false)
				}
			}
			got := x.score(t, s)
			if n == 0 && got <= 4 {
				t.Errorf("%s: the attacked post scores %v, want above 4", s.Name(), got)
			}
			if n > 0 && math.Abs(got-5) > 1e-6 {
				t.Errorf("%s: post %d scores %v, want 5", s.Name(), n, got)
			}
		}
	}
}

func TestWindowStartIsEpochAligned(t *testing.T) {
	p := DefaultParams(7 * time.Second)
	at := time.Unix(1000, 5).UTC()
	if got := p.WindowStart(at); got.Unix() != 994 {
		t.Fatalf("WindowStart = %v, want 994 s after the epoch", got.Unix())
	}
	before := time.Unix(-3, 0).UTC()
	if got := p.WindowStart(before); got.Unix() != -7 {
		t.Fatalf("WindowStart before the epoch = %v, want -7", got.Unix())
	}
}

func TestLookup(t *testing.T) {
	for _, n := range Names() {
		if s, err := Lookup(n); err != nil || s.Name() != n {
			t.Errorf("Lookup(%q) = %v, %v", n, s, err)
		}
	}
	if _, err := Lookup("median"); err == nil {
		t.Error("Lookup of an unknown strategy succeeded")
	}
}

// A window still open is judged against the share of it event time has
// reached: a campaign's first seconds do not count while its activity is
// still under the whole window's threshold.
func TestAnOpenWindowIsJudgedForWhatOfItHasPassed(t *testing.T) {
	x := steady()
	for k := 0; k < 18; k++ { // under the threshold of a whole window (about 20)
		x.vote(600, 0, false)
	}
	start := x.ws[len(x.ws)-1].Start
	in := x.input(start) // the watermark has not reached the window's end
	whole := SurgeGuard{}.Score(in)
	in.Reached = start.Add(5 * time.Second) // 18 votes in its first 5 seconds
	early := SurgeGuard{}.Score(in)
	if math.Abs(early.Score-4) > 1e-6 || whole.Score > 3.99 {
		t.Fatalf("18 zeros in the first 5 s of a window: %v provisionally, %v judged as a whole window", early.Score, whole.Score)
	}
	if !early.StableAt.After(start) {
		t.Fatalf("an open window's post is stable at %s, before the window closes", early.StableAt)
	}
}

// TestTrackerSame changes each field of a tracker in turn: Same must see
// every one, or the windower would write a changed tracker as unchanged.
func TestTrackerSame(t *testing.T) {
	base := Tracker{Baseline: 1, Seen: 0.5, Sustain: 0.25, EpisodeCount: 2, EpisodeSum: 3, NewCount: 4, NewSum: 5, NewSustain: 6,
		First: t0, Current: t0.Add(time.Hour), Pending: []time.Time{t0}, HeldSince: t0, HeldLast: t0}
	clone := func() Tracker { c := base; c.Pending = slices.Clone(base.Pending); return c }
	same := clone()
	if !base.Same(&same) {
		t.Fatal("a copy is not the same")
	}
	inZone := clone()
	inZone.First = t0.In(time.FixedZone("x", 3600))
	if !base.Same(&inZone) {
		t.Error("the same instant in another zone is not the same")
	}
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		c := clone()
		f := reflect.ValueOf(&c).Elem().Field(i)
		switch v := f.Addr().Interface().(type) {
		case *float64:
			*v = math.Nextafter(*v, math.Inf(1))
		case *time.Time:
			*v = v.Add(time.Microsecond)
		case *[]time.Time:
			*v = append(*v, t0)
		default:
			t.Fatalf("field %s of type %s: teach this test to change it", typ.Field(i).Name, f.Type())
		}
		if base.Same(&c) {
			t.Errorf("a tracker with another %s is the same", typ.Field(i).Name)
		}
	}
}

// Retractions are activity: a window whose few votes depart from the
// post's opinion counts while its activity is typical, and is held out
// when a burst of retractions comes with them, as a burst of ratings
// would be.
func TestABurstOfRetractionsIsJudgedLikeABurstOfRatings(t *testing.T) {
	p := DefaultParams(time.Minute)
	ref := Ref{Expected: 10, Threshold: 20, Mean: 4.5, MeanWeight: 2000, NewMean: math.NaN()}
	quiet := Window{Count: 8, Sum: 0, Ref: ref}
	if v := Judge(quiet, p); v.HeldOut() {
		t.Fatalf("8 departing votes at typical activity held out: %+v", v)
	}
	burst := quiet
	burst.Retracts = 200
	v := Judge(burst, p)
	if !v.HeldOut() || !v.Anomalous || v.Activity != 208 {
		t.Fatalf("the same votes with 200 retractions: %+v", v)
	}
	votes := quiet
	votes.Count, votes.Sum = 208, 0
	if w := Judge(votes, p); w.HeldOut() != v.HeldOut() {
		t.Fatalf("208 departing votes: held out %v; 8 votes and 200 retractions: %v", w.HeldOut(), v.HeldOut())
	}
}
