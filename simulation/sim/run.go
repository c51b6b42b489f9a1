package sim

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
)

// postID is the one post a scenario rates.
const postID = 1

// minHonest is how many honest users must have rated before errors count.
const minHonest = 50

// Epoch is the event time at which every scenario starts.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Point is the state after one window closed.
type Point struct {
	At         time.Duration      // since the scenario start
	HonestMean float64            // NaN before any honest rating
	Honest     int                // honest users so far
	Scores     map[string]float64 // by strategy; NaN when no score yet
	// Oracle is what a judge that knew the campaign would score by
	// holding out exactly the windows that hold a dishonest vote: the best
	// any method that counts or holds out whole windows can do.
	Oracle float64
}

// Result is one strategy's error summary.
type Result struct {
	Strategy   string  `json:"strategy"`
	MaxError   float64 `json:"max_error"`
	P95Error   float64 `json:"p95_error"`
	FinalError float64 `json:"final_error"`
}

// Report is a whole run.
type Report struct {
	Scenario string   `json:"scenario"`
	Results  []Result `json:"results"`
	// Oracle is the whole-window oracle's errors (see Point.Oracle).
	Oracle   Result             `json:"-"`
	Points   []Point            `json:"-"`
	Campaign [][2]time.Duration `json:"-"` // dishonest phases, for plots
	// Windows are the post's windows at the end, oldest first.
	Windows []WindowStat `json:"-"`
	params  scoring.Params
}

// WindowStat is one window of the post at the end of a run.
type WindowStat struct {
	At      time.Duration // start, since the scenario start
	Window  scoring.Window
	Verdict scoring.Verdict
}

// CountsFullyAfter is how long after from the post's windows start to
// count fully (none held out, even in part) for good: the time
// from from to the start of the first window after which every window
// does. A genuine surge starting at from is accepted as the new normal
// after this long. ok is false when the last window still does not.
func (r *Report) CountsFullyAfter(from time.Duration) (time.Duration, bool) {
	after, ok := from, true
	for _, w := range r.Windows {
		if w.At < from {
			continue
		}
		if w.Verdict.HeldOut() {
			after, ok = w.At+r.params.Window, false
			continue
		}
		ok = true
	}
	return after - from, ok
}

// Run replays the scenario through the given strategies with params
// (whose Window is replaced by the scenario's).
func Run(s *Scenario, strategies []scoring.Strategy, params scoring.Params) (*Report, error) {
	params.Window = s.window
	rng := newRand(s.Seed)
	st := fold.NewState(params, 0)
	g := &generator{s: s, rng: rng, honestSeen: map[string]bool{}}
	honestLatest := map[string]int{}
	var starts []time.Time // window starts of the post, ascending
	known := map[time.Time]bool{}
	rep := &Report{Scenario: s.Name}
	for _, p := range s.Phases {
		if !p.Honest {
			rep.Campaign = append(rep.Campaign, [2]time.Duration{p.from, p.to})
		}
	}
	var honestSum float64
	orc := newOracle()
	history := false
	for _, strat := range strategies {
		history = history || strat.NeedsHistory()
	}
	for t := time.Duration(0); t < s.End(); t += s.window {
		for _, e := range g.window(t) {
			st.Apply(e.ev, 0)
			orc.add(e, params.WindowStart(e.ev.RatedAt))
			if e.honest {
				if old, ok := honestLatest[e.ev.UserID]; ok {
					honestSum -= float64(old)
				}
				honestLatest[e.ev.UserID] = e.ev.Score
				honestSum += float64(e.ev.Score)
			}
		}
		for k := range st.DirtyWindows {
			if !known[k.Start] {
				known[k.Start] = true
				starts = append(starts, k.Start)
			}
		}
		st.ClearDirty()
		sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
		now := Epoch.Add(t + s.window)
		pt := Point{At: t + s.window, HonestMean: math.NaN(), Honest: len(honestLatest), Scores: map[string]float64{}, Oracle: orc.score()}
		if pt.Honest > 0 {
			pt.HonestMean = honestSum / float64(pt.Honest)
		}
		in := input(st, starts, now, params, history)
		for _, strat := range strategies {
			r := strat.Score(in)
			pt.Scores[strat.Name()] = math.NaN()
			if r.OK {
				pt.Scores[strat.Name()] = r.Score
			}
		}
		rep.Points = append(rep.Points, pt)
	}
	for _, strat := range strategies {
		rep.Results = append(rep.Results, summarize(strat.Name(), rep.Points, func(p Point) float64 { return p.Scores[strat.Name()] }))
	}
	rep.Oracle = summarize("whole-window oracle", rep.Points, func(p Point) float64 { return p.Oracle })
	rep.params = params
	for _, start := range starts {
		w := st.Windows[fold.WindowKey{PostID: postID, Start: start}]
		rep.Windows = append(rep.Windows, WindowStat{At: start.Sub(Epoch), Window: w, Verdict: scoring.Judge(w, params)})
	}
	return rep, nil
}

// input builds what a strategy sees, as the scorer would from the tables:
// the windows it reads, or every window when history says a strategy
// needs it.
func input(st *fold.State, starts []time.Time, now time.Time, p scoring.Params, history bool) scoring.Input {
	post := st.Posts[postID]
	if post == nil {
		return scoring.Input{Now: now, Params: p}
	}
	win := func(s time.Time) scoring.Window { return st.Windows[fold.WindowKey{PostID: postID, Start: s}] }
	var ws []scoring.Window
	open := scoring.Unfinished(post.Tracker, now, p)
	for _, s := range starts {
		if history || !s.Before(open) || slices.ContainsFunc(post.Tracker.Pending, s.Equal) {
			ws = append(ws, win(s))
		}
	}
	return scoring.NewInput(post.Stats, ws, now, p)
}

func summarize(name string, pts []Point, score func(Point) float64) Result {
	var errs []float64
	for _, p := range pts {
		s := score(p)
		if p.Honest < minHonest || math.IsNaN(s) || math.IsNaN(p.HonestMean) {
			continue
		}
		errs = append(errs, math.Abs(s-p.HonestMean))
	}
	r := Result{Strategy: name}
	if len(errs) == 0 {
		return r
	}
	r.FinalError = errs[len(errs)-1]
	sorted := append([]float64(nil), errs...)
	sort.Float64s(sorted)
	r.MaxError = sorted[len(sorted)-1]
	r.P95Error = sorted[int(math.Ceil(0.95*float64(len(sorted))))-1]
	return r
}

// newRand is a scenario's random source for a seed.
func newRand(seed int64) *rand.Rand { return rand.New(rand.NewPCG(uint64(seed), 0x5eed)) }

type generated struct {
	ev     rating.Event
	honest bool
}

type generator struct {
	s           *Scenario
	rng         *rand.Rand
	next        int      // next fresh user number
	honestUsers []string // users who rated in an honest phase, in order
	honestSeen  map[string]bool
	// order and turn are each "once" pool's shuffled order and how many
	// of its draws were made.
	order map[string][]int
	turn  map[string]int
}

// window draws the ratings of the window starting at t, in time order.
func (g *generator) window(t time.Duration) []generated {
	var out []generated
	for i, p := range g.s.Phases {
		if t < p.from || t >= p.to {
			continue
		}
		n := poisson(g.rng, p.RatingsPerWindow)
		for j := 0; j < n; j++ {
			user := g.user(i, p)
			if user == "" {
				continue
			}
			at := Epoch.Add(t + time.Duration(g.rng.Int64N(int64(g.s.window))))
			out = append(out, generated{ev: event(user, score(g.rng, p.Scores), at, g.rng), honest: p.Honest})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ev.RatedAt.Before(out[j].ev.RatedAt) })
	for _, e := range out {
		if e.honest {
			if !g.honestSeen[e.ev.UserID] {
				g.honestSeen[e.ev.UserID] = true
				g.honestUsers = append(g.honestUsers, e.ev.UserID)
			}
		}
	}
	return out
}

func (g *generator) user(phase int, p Phase) string {
	switch p.Users.Kind {
	case "existing":
		if len(g.honestUsers) == 0 {
			return ""
		}
		return g.honestUsers[g.rng.IntN(len(g.honestUsers))]
	case "pool":
		name := cmp.Or(p.Users.Name, "pool")
		if !p.Users.Once {
			return name + "-" + strconv.Itoa(g.rng.IntN(p.Users.Pool))
		}
		if g.order == nil {
			g.order, g.turn = map[string][]int{}, map[string]int{}
		}
		key := name + "/" + strconv.Itoa(p.Users.Pool)
		if g.order[key] == nil {
			g.order[key] = g.rng.Perm(p.Users.Pool)
		}
		i := g.turn[key]
		g.turn[key]++
		return name + "-" + strconv.Itoa(g.order[key][i%p.Users.Pool])
	default:
		g.next++
		return fmt.Sprintf("p%d-u%d", phase, g.next)
	}
}

func event(user string, s int, at time.Time, rng *rand.Rand) rating.Event {
	var id uuid.UUID
	for i := range id {
		id[i] = byte(rng.UintN(256))
	}
	id[6] = (id[6] & 0x0f) | 0x70
	id[8] = (id[8] & 0x3f) | 0x80
	return rating.Event{V: rating.Version, EventID: id, PostID: postID, UserID: user, Score: s, RatedAt: at}
}

func score(rng *rand.Rand, probs []float64) int {
	x := rng.Float64()
	for s, p := range probs {
		if x < p {
			return s
		}
		x -= p
	}
	return len(probs) - 1
}

// poisson draws a Poisson count: Knuth's method for small means, a
// rounded normal approximation for large ones.
func poisson(rng *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 50 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*rng.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// SeedsResult is one strategy over many seeds of a scenario: the worst and
// the mean of each error.
type SeedsResult struct {
	Strategy       string  `json:"strategy"`
	Seeds          int     `json:"seeds"`
	WorstMaxError  float64 `json:"worst_max_error"`
	MeanMaxError   float64 `json:"mean_max_error"`
	WorstFinal     float64 `json:"worst_final_error"`
	MeanFinal      float64 `json:"mean_final_error"`
	WorstMaxSeed   int64   `json:"worst_max_error_seed"`
	WorstFinalSeed int64   `json:"worst_final_error_seed"`
}

// RunSeeds runs the scenario once per seed 1..n (its own seed replaced)
// and summarises each strategy across the runs.
func RunSeeds(s *Scenario, strategies []scoring.Strategy, params scoring.Params, n int) ([]SeedsResult, error) {
	out := make([]SeedsResult, len(strategies))
	for i, st := range strategies {
		out[i].Strategy = st.Name()
	}
	for seed := int64(1); seed <= int64(n); seed++ {
		cp := *s
		cp.Seed = seed
		rep, err := Run(&cp, strategies, params)
		if err != nil {
			return nil, err
		}
		for i, r := range rep.Results {
			o := &out[i]
			o.Seeds++
			o.MeanMaxError += r.MaxError / float64(n)
			o.MeanFinal += r.FinalError / float64(n)
			if r.MaxError >= o.WorstMaxError {
				o.WorstMaxError, o.WorstMaxSeed = r.MaxError, seed
			}
			if r.FinalError >= o.WorstFinal {
				o.WorstFinal, o.WorstFinalSeed = r.FinalError, seed
			}
		}
	}
	return out, nil
}

// oracle holds out exactly the windows that hold a dishonest vote, with
// running sums so that each window costs only its own votes.
type oracle struct {
	latest   map[string]oracleVote
	windows  map[time.Time]*oracleWindow
	sum, num float64 // over the latest votes of clean windows
}

type oracleVote struct {
	score  int
	window time.Time
}

type oracleWindow struct {
	sum, num float64
	dirty    bool
}

func newOracle() *oracle {
	return &oracle{latest: map[string]oracleVote{}, windows: map[time.Time]*oracleWindow{}}
}

func (o *oracle) window(t time.Time) *oracleWindow {
	w := o.windows[t]
	if w == nil {
		w = &oracleWindow{}
		o.windows[t] = w
	}
	return w
}

func (o *oracle) add(e generated, at time.Time) {
	w := o.window(at)
	if !e.honest && !w.dirty {
		w.dirty = true
		o.sum, o.num = o.sum-w.sum, o.num-w.num
	}
	if old, ok := o.latest[e.ev.UserID]; ok {
		ow := o.windows[old.window]
		ow.sum, ow.num = ow.sum-float64(old.score), ow.num-1
		if !ow.dirty {
			o.sum, o.num = o.sum-float64(old.score), o.num-1
		}
	}
	o.latest[e.ev.UserID] = oracleVote{e.ev.Score, at}
	w.sum, w.num = w.sum+float64(e.ev.Score), w.num+1
	if !w.dirty {
		o.sum, o.num = o.sum+float64(e.ev.Score), o.num+1
	}
}

// score is the mean of the latest votes outside the dirty windows.
func (o *oracle) score() float64 {
	if o.num <= 0 {
		return math.NaN()
	}
	return o.sum / o.num
}
