package scoring_test

import (
	"fmt"
	"time"

	"github.com/ratestream/ratestream/pkg/scoring"
)

// windows folds per-window (count, sum) pairs of first votes into an
// Input the way the windower keeps them, one window a minute.
func windows(pairs ...[2]int64) scoring.Input {
	p := scoring.DefaultParams(time.Minute)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var st scoring.Stats
	var ws []scoring.Window
	for i, cs := range pairs {
		s := start.Add(time.Duration(i) * time.Minute)
		var cur scoring.Window
		if len(ws) > 0 {
			cur = ws[len(ws)-1]
		}
		st.Rated(s, cur, p)
		ws = append(ws, st.Change(scoring.Window{}, false, s, scoring.Delta{Count: cs[0], Sum: cs[1]}, p))
	}
	now := start.Add(time.Duration(len(pairs)) * time.Minute)
	return scoring.NewInput(st, ws, now, p)
}

func ExampleMean() {
	in := windows([2]int64{2, 9}, [2]int64{2, 1})
	r := scoring.Mean{}.Score(in)
	fmt.Printf("%.2f\n", r.Score)
	// Output: 2.50
}

func ExampleSeedLinear() {
	// Window means 5 (older) and 1 (newer): weights 2 and 1.
	in := windows([2]int64{1, 5}, [2]int64{1, 1})
	r := scoring.SeedLinear{}.Score(in)
	fmt.Printf("%.2f\n", r.Score)
	// Output: 3.67
}

func ExampleSurgeGuard() {
	// An hour of ten ratings a minute averaging 4, then one minute with a
	// thousand zeros: far above the post's typical activity, far from its
	// opinion. It is held out; the plain mean takes it in.
	pairs := make([][2]int64, 0, 61)
	for i := 0; i < 60; i++ {
		pairs = append(pairs, [2]int64{10, 40})
	}
	pairs = append(pairs, [2]int64{1000, 0})
	in := windows(pairs...)
	fmt.Printf("surge-guard %.2f, mean %.2f\n", scoring.SurgeGuard{}.Score(in).Score, scoring.Mean{}.Score(in).Score)
	v := scoring.Judge(in.All[60], in.Params)
	fmt.Printf("held out: %v (%s)\n", v.HeldOut(), v.Reason())
	// Output:
	// surge-guard 4.00, mean 1.50
	// held out: true (volume and opinion)
}

func ExampleSurgeGuard_viral() {
	// The same hour, then a minute with a thousand ratings averaging 4:
	// the volume alone holds nothing out.
	pairs := make([][2]int64, 0, 61)
	for i := 0; i < 60; i++ {
		pairs = append(pairs, [2]int64{10, 40})
	}
	pairs = append(pairs, [2]int64{1000, 4000})
	in := windows(pairs...)
	fmt.Printf("held out: %v\n", scoring.Judge(in.All[60], in.Params).HeldOut())
	// Output: held out: false
}

func ExampleLookup() {
	s, err := scoring.Lookup(scoring.Default)
	fmt.Println(s.Name(), err)
	// Output: surge-guard <nil>
}
