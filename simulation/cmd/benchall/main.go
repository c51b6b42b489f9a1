// Command benchall runs ratestream's benchmarks in one go and prints one
// summary table of every figure, ratio and target; -json writes the same
// as JSON (default simulation/out/bench.json).
//
//	benchall [-only ingest|auth|windower|scorer|query|freshness|export] [-duration 20s]
//	benchall -only e2e [-e2e-rates 2000,5000,10000] [-e2e-step 30s] [-e2e-preload 10000000]
//	benchall -only floor [-e2e-rates 10000]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ratestream/ratestream/simulation/loadgen"
)

// figure is one reported number.
type figure struct {
	Bench  string  `json:"bench"`
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
}

type bench struct {
	name string
	run  func(ctx context.Context, e *env, o opts) ([]figure, error)
}

type opts struct {
	duration time.Duration
	vus      int
	// e2e
	rates   []float64
	step    time.Duration
	preload int64
}

func main() {
	if addr := os.Getenv(serveEnv); addr != "" {
		serveBare(addr)
		return
	}
	only := flag.String("only", "", "run one benchmark: ingest, auth, windower, scorer, query, freshness, export, e2e or floor")
	duration := flag.Duration("duration", 20*time.Second, "load duration of the HTTP benchmarks")
	vus := flag.Int("vus", 200, "concurrent connections of the HTTP benchmarks")
	out := flag.String("json", filepath.Join("simulation", "out", "bench.json"), "JSON summary file")
	rates := flag.String("e2e-rates", "2000,5000,10000,15000,20000", "e2e: offered ratings per second, one step each")
	step := flag.Duration("e2e-step", 30*time.Second, "e2e: length of each step")
	preloadN := flag.Int64("e2e-preload", 0, "e2e: ratings stored over 100,000 other posts before the load (e.g. 10000000)")
	flag.Parse()
	var rateList []float64
	for _, r := range strings.Split(*rates, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || f <= 0 {
			fail(fmt.Errorf("-e2e-rates %q: want positive numbers", *rates))
		}
		rateList = append(rateList, f)
	}
	admin := os.Getenv("DATABASE_URL")
	if admin == "" {
		fail(fmt.Errorf("DATABASE_URL must name a PostgreSQL server to create benchmark databases on (make bench sets it)"))
	}
	benches := []bench{
		{"ingest", ingestBench}, {"auth", authBench}, {"windower", windowerBench}, {"scorer", scorerBench},
		{"query", queryBench}, {"freshness", freshnessBench}, {"export", exportBench}, {"e2e", e2eBench}, {"floor", floorBench},
	}
	ctx := context.Background()
	var all []figure
	for _, b := range benches {
		if *only != "" && *only != b.name {
			continue
		}
		e, err := newEnv(admin)
		if err != nil {
			fail(err)
		}
		fmt.Printf("== %s\n", b.name)
		if (b.name == "e2e" || b.name == "floor") && *only != b.name {
			continue // minutes of load at five rates: make bench-e2e
		}
		figs, err := b.run(ctx, e, opts{duration: *duration, vus: *vus, rates: rateList, step: *step, preload: *preloadN})
		e.close()
		if err != nil {
			fail(fmt.Errorf("%s: %w", b.name, err))
		}
		all = append(all, figs...)
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BENCH\tFIGURE\tVALUE\tUNIT\tTARGET\tMET")
	for _, f := range all {
		met := ""
		if f.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*f.Met]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Bench, f.Name, format(f.Value), f.Unit, f.Target, met)
	}
	tw.Flush()
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		fail(err)
	}
	f, err := os.Create(*out)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	if err := loadgen.WriteJSON(f, all); err != nil {
		fail(err)
	}
	fmt.Println("\nwrote", *out)
}

func format(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", v), "0"), ".")
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchall:", err)
	os.Exit(1)
}

func target(bench, name string, v float64, unit, tgt string, met bool) figure {
	return figure{Bench: bench, Name: name, Value: v, Unit: unit, Target: tgt, Met: &met}
}

func plain(bench, name string, v float64, unit string) figure {
	return figure{Bench: bench, Name: name, Value: v, Unit: unit}
}

// httpFigures reports a load result.
func httpFigures(bench, label string, r loadgen.Result) []figure {
	return []figure{
		plain(bench, label+" throughput", r.PerSecond, "req/s"),
		plain(bench, label+" p50", r.P50ms, "ms"),
		plain(bench, label+" p99", r.P99ms, "ms"),
		plain(bench, label+" error share", r.ErrorRate, ""),
	}
}
