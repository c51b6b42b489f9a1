// Command loadgen runs the k6 scenarios of simulation/k6 from Go, against
// a running stack, and prints status counts, req/s and latency
// percentiles (and a JSON summary with -out).
//
//	loadgen seed      [flags]   random_rating, then mixed_rating (k6/seed.js)
//	loadgen readwrite [flags]   pages, posts and ratings (k6/readwrite.js)
//	loadgen campaign  [flags]   a campaign on one post, its score watched (k6/campaign.js)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ratestream/ratestream/simulation/loadgen"
)

type options struct {
	target   loadgen.Target
	vus      int
	duration time.Duration
	sleep    time.Duration
	out      string
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet("loadgen "+cmd, flag.ExitOnError)
	var o options
	fs.StringVar(&o.target.Ingest, "ingest", env("INGEST_URL", "http://127.0.0.1:8080"), "ingest base URL")
	fs.StringVar(&o.target.Query, "query", env("QUERY_URL", "http://127.0.0.1:8081"), "query base URL")
	fs.IntVar(&o.target.Posts, "posts", 1000, "posts 1..N exist (make posts)")
	fs.IntVar(&o.target.Users, "users", 1_000_000, "users device-id-1..N")
	fs.IntVar(&o.vus, "vus", 200, "virtual users (mixed_rating uses twice as many)")
	fs.DurationVar(&o.duration, "duration", 5*time.Minute, "duration (mixed_rating runs a tenth of it)")
	fs.DurationVar(&o.sleep, "sleep", 500*time.Millisecond, "longest pause between a virtual user's requests (k6 scripts: 0.5s)")
	fs.StringVar(&o.out, "out", "", "write a JSON summary here (campaign: an output directory)")
	var c campaignOptions
	if cmd == "campaign" {
		c.flags(fs)
	}
	_ = fs.Parse(os.Args[2:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd {
	case "seed":
		err = report(o, o.target.SeedPlans(o.vus, o.duration, o.sleep), ctx)
	case "readwrite":
		err = report(o, []loadgen.Plan{{Name: "read_write", VUs: o.vus, Duration: o.duration, MaxSleep: o.sleep, Request: o.target.ReadWriteRequest()}}, ctx)
	case "campaign":
		dir := o.out
		if dir == "" {
			dir = filepath.Join("simulation", "out")
		}
		err = runCampaign(ctx, o, c, dir)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loadgen seed|readwrite|campaign [-vus N] [-duration D] [-sleep D] [-ingest URL] [-query URL] [-posts N] [-out FILE]\n       (loadgen campaign -h lists the campaign's own settings)")
	os.Exit(2)
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func report(o options, plans []loadgen.Plan, ctx context.Context) error {
	var results []loadgen.Result
	for _, p := range plans {
		fmt.Printf("running %s: %d virtual users for %s\n", p.Name, p.VUs, p.Duration)
		r := loadgen.Run(ctx, p)
		fmt.Println(r)
		results = append(results, r)
	}
	if o.out == "" {
		return nil
	}
	f, err := os.Create(o.out)
	if err != nil {
		return err
	}
	defer f.Close()
	return loadgen.WriteJSON(f, results)
}
