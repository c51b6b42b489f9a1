package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ratestream/ratestream/pkg/tally"
)

const exportRows = 10_000_000

// exportBench writes ten million ratings rows straight into a database
// (100,000 posts, 100 users each) and times `ratestream export ratings`
// to Parquet and to CSV, with the command's peak RSS: memory must stay
// bounded whatever the number of rows.
func exportBench(ctx context.Context, e *env, _ opts) ([]figure, error) {
	url, pool, err := e.database(ctx)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	if err := tally.Synthesize(ctx, pool, tally.Synthetic{FirstPost: 1, Posts: exportRows / 100, Votes: exportRows,
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Step: time.Millisecond, WindowWidth: time.Minute}); err != nil {
		return nil, err
	}
	fmt.Printf("stored %d ratings in %s\n", exportRows, time.Since(began).Round(time.Millisecond))
	var figs []figure
	for _, format := range []string{"parquet", "csv"} {
		out := filepath.Join(e.workDir, "ratings."+format)
		start := time.Now()
		p, err := e.spawnArgs("ratestream", []string{"export", "ratings", "-o", format, "--file", out}, "DATABASE_URL="+url)
		if err != nil {
			return nil, err
		}
		if err := p.wait(); err != nil {
			return nil, err
		}
		took := time.Since(start)
		st, err := os.Stat(out)
		if err != nil {
			return nil, err
		}
		rss := p.maxRSS()
		fmt.Printf("export %d ratings to %s: %s, %.0f rows/s, %.0f MB file, peak RSS %.0f MB\n",
			exportRows, format, took.Round(time.Millisecond), exportRows/took.Seconds(), float64(st.Size())/1e6, rss)
		figs = append(figs,
			plain("export", format+" 10M ratings rows", took.Seconds(), "s"),
			target("export", format+" peak RSS", rss, "MB", "< 200", rss < 200))
		os.Remove(out)
	}
	return figs, nil
}
