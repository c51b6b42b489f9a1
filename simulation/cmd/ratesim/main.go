// Command ratesim replays a rating scenario through scoring strategies and
// reports how far each strays from the honest mean.
//
//	ratesim -scenario FILE [-strategies a,b|all] [-format table|json] [-plot FILE.svg]
//	ratesim -scenario FILE -seeds 20     # worst and mean errors over seeds 1..20
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/simulation/sim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ratesim:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("ratesim", flag.ContinueOnError)
	scenario := fs.String("scenario", "", "scenario JSON file (required)")
	names := fs.String("strategies", "all", "comma-separated strategies, or all ("+strings.Join(scoring.Names(), ", ")+")")
	format := fs.String("format", "table", "table or json")
	plot := fs.String("plot", "", "write an SVG plot of score over time to this file")
	seeds := fs.Int("seeds", 0, "run seeds 1..N instead of the scenario's own and report the worst and mean errors")
	trace := fs.String("windows", "", "print the post's windows that start in FROM,TO (durations since the start, e.g. 24h,24h30m) with their verdicts")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *scenario == "" {
		fs.Usage()
		return fmt.Errorf("-scenario is required")
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("-format %q: want table or json", *format)
	}
	strategies, err := pick(*names)
	if err != nil {
		return err
	}
	s, err := sim.Load(*scenario)
	if err != nil {
		return err
	}
	if *seeds > 0 {
		res, err := sim.RunSeeds(s, strategies, scoring.DefaultParams(s.WindowLength()), *seeds)
		if err != nil {
			return err
		}
		if *format == "json" {
			return json.NewEncoder(os.Stdout).Encode(res)
		}
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "scenario %s, seeds 1..%d\t\t\t\t\t\n", s.Name, *seeds)
		fmt.Fprintln(tw, "strategy\tworst max_error\tmean max_error\tworst final_error\tmean final_error\t")
		for _, r := range res {
			fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t\n", r.Strategy, r.WorstMaxError, r.MeanMaxError, r.WorstFinal, r.MeanFinal)
		}
		return tw.Flush()
	}
	rep, err := sim.Run(s, strategies, scoring.DefaultParams(s.WindowLength()))
	if err != nil {
		return err
	}
	if *trace != "" {
		if err := printWindows(rep, *trace); err != nil {
			return err
		}
	}
	if *plot != "" {
		if err := os.WriteFile(*plot, []byte(sim.Plot(rep, strategyNames(strategies))), 0o644); err != nil {
			return err
		}
	}
	if *format == "json" {
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario %s\t\t\t\t\n", rep.Scenario)
	fmt.Fprintln(tw, "strategy\tmax_error\tp95_error\tfinal_error\t")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t\n", r.Strategy, r.MaxError, r.P95Error, r.FinalError)
	}
	return tw.Flush()
}

func pick(names string) ([]scoring.Strategy, error) {
	if names == "all" || names == "" {
		return scoring.Strategies(), nil
	}
	var out []scoring.Strategy
	for _, n := range strings.Split(names, ",") {
		s, err := scoring.Lookup(strings.TrimSpace(n))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func strategyNames(ss []scoring.Strategy) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Name()
	}
	return out
}

// printWindows prints the windows of the run that start within span, with
// what each was judged against and its verdict.
func printWindows(rep *sim.Report, span string) error {
	from, to, ok := strings.Cut(span, ",")
	f, err1 := time.ParseDuration(from)
	t, err2 := time.ParseDuration(to)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("-windows %q: want FROM,TO durations", span)
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "start\tvotes\tchanged\tmean\texpected\tthreshold\tsustained\topinion\tepisode\tnew raters\tactivity z\topinion z\tfactor\treason\t")
	for _, w := range rep.Windows {
		if w.At < f || w.At >= t {
			continue
		}
		x, r, v := w.Window, w.Window.Ref, w.Verdict
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.1f\t%.1f\t%v\t%.2f\t%.1f\t%.2f/%.0f\t%.1f\t%.1f\t%.3f\t%s\t\n",
			w.At, x.Count, x.Rerates, x.Mean(), r.Expected, r.Threshold, r.Sustained, r.Mean, r.Episode, r.NewMean, r.NewWeight,
			v.ActivityZ, v.OpinionZ, v.Factor, v.Reason())
	}
	return tw.Flush()
}
