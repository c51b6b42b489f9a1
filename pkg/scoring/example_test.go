package scoring_test

import (
	"fmt"
	"time"

	"github.com/ratestream/ratestream/pkg/scoring"
)

// windows folds per-window (count, sum) pairs into an Input the way the
// windower keeps them.
func windows(now time.Time, pairs ...[2]int64) scoring.Input {
	p := scoring.DefaultParams(time.Minute)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var v scoring.Volume
	var tot scoring.Totals
	var ws []scoring.Window
	for i, cs := range pairs {
		s := start.Add(time.Duration(i) * time.Minute)
		v.Advance(s, p)
		w := scoring.Window{Start: s, Count: cs[0], Sum: cs[1], Threshold: v.ThresholdFor(s, p)}
		v.Counted(s, w.Count)
		tot.Replace(scoring.Window{Start: s, Threshold: w.Threshold}, w)
		ws = append(ws, w)
	}
	return scoring.Input{Now: now, Params: p, Totals: tot, Latest: v.Current, All: ws, Recent: ws}
}

func ExampleMean() {
	in := windows(time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC), [2]int64{2, 9}, [2]int64{2, 1})
	r := scoring.Mean{}.Score(in)
	fmt.Printf("%.2f\n", r.Score)
	// Output: 2.50
}

func ExampleSeedLinear() {
	// Window means 5 (older) and 1 (newer): weights 2 and 1.
	in := windows(time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC), [2]int64{1, 5}, [2]int64{1, 1})
	r := scoring.SeedLinear{}.Score(in)
	fmt.Printf("%.2f\n", r.Score)
	// Output: 3.67
}

func ExampleSurgeGuard() {
	// An hour of ten ratings a minute averaging 4, then one minute with a
	// thousand zeros. Two hours later the burst still counts for nothing.
	pairs := make([][2]int64, 0, 61)
	for i := 0; i < 60; i++ {
		pairs = append(pairs, [2]int64{10, 40})
	}
	pairs = append(pairs, [2]int64{1000, 0})
	in := windows(time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC), pairs...)
	fmt.Printf("surge-guard %.2f, mean %.2f\n", scoring.SurgeGuard{}.Score(in).Score, scoring.Mean{}.Score(in).Score)
	// Output: surge-guard 4.00, mean 1.50
}

func ExampleLookup() {
	s, err := scoring.Lookup(scoring.Default)
	fmt.Println(s.Name(), err)
	// Output: surge-guard <nil>
}
