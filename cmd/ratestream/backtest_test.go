package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// campaigned stores a post rated by 40 users with 4 over 20 minutes, then
// 100 zeros in the 21st minute, held out live: its live score is 4, its
// plain mean 160/140.
func campaigned(t *testing.T, db *testenv.Database) {
	t.Helper()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var evs []rating.Event
	for i := range 40 {
		evs = append(evs, testenv.Event(t, 7, fmt.Sprintf("u%d", i), 4, t0.Add(time.Duration(i)*30*time.Second)))
	}
	for i := range 100 {
		evs = append(evs, testenv.Event(t, 7, fmt.Sprintf("c%d", i), 0, t0.Add(20*time.Minute+time.Duration(i)*500*time.Millisecond)))
	}
	testenv.Store(t, db, testenv.Fold(scoring.DefaultParams(time.Minute), 0, evs...), 0, int64(len(evs)))
	score, mean := 4.0, 160.0/140
	if err := tally.WriteScores(context.Background(), db.Pool, []tally.Score{{PostID: 7, Score: &score, UserCount: 140, Mean: &mean,
		Strategy: "surge-guard", AsOf: t0.Add(21 * time.Minute), StableAt: t0.Add(80 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
}

func runBacktest(t *testing.T, db *testenv.Database, args ...string) (backtestReport, error) {
	t.Helper()
	t.Setenv("DATABASE_URL", db.URL)
	var out bytes.Buffer
	cmd := backtestCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs(append([]string{"-o", "json"}, args...))
	if err := cmd.Execute(); err != nil {
		return backtestReport{}, err
	}
	var rep backtestReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out.String())
	}
	if len(rep.Posts) != 1 || rep.Posts[0].PostID != 7 {
		t.Fatalf("want post 7 alone: %+v", rep.Posts)
	}
	return rep, nil
}

func near(p *float64, want float64) bool { return p != nil && math.Abs(*p-want) < 1e-3 }

func TestBacktest(t *testing.T) {
	const plain = 160.0 / 140
	db := testenv.NewDatabase(t)
	campaigned(t, db)

	// The live strategy and settings reproduce the live score.
	rep, err := runBacktest(t, db)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Posts[0]
	if !near(r.Backtest, 4) || !near(r.Difference, 0) || r.HeldOutLive != 1 || r.HeldOutBacktest != 1 || r.UserCount != 140 || !near(r.Mean, plain) {
		t.Fatalf("live settings: %+v", r)
	}

	// The plain mean counts the burst.
	if rep, err = runBacktest(t, db, "--strategy", "mean"); err != nil {
		t.Fatal(err)
	}
	if r := rep.Posts[0]; !near(r.Backtest, plain) || !near(r.Difference, plain-4) || rep.Strategy != "mean" {
		t.Fatalf("mean: %+v", r)
	}

	// Activity anomalous only 100 standard deviations out: every window is
	// judged again, and the burst counts fully.
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "bt.csv")
	if rep, err = runBacktest(t, db, "--set", "SCORING_VOLUME_Z=100", "--csv", csvPath, "--parquet", filepath.Join(dir, "bt.parquet"), "--plots", dir); err != nil {
		t.Fatal(err)
	}
	r = rep.Posts[0]
	if !near(r.Backtest, plain) || r.HeldOutBacktest != 0 || r.HeldOutLive != 1 || r.MaxDifference < 2.8 || rep.Settings["SCORING_VOLUME_Z"] != "100" {
		t.Fatalf("SCORING_VOLUME_Z=100: %+v", r)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 2 || recs[0][0] != "post_id" || recs[1][0] != "7" || !strings.HasPrefix(recs[1][4], "1.1428") {
		t.Fatalf("csv: %v %q", err, recs)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "post-7.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg, new(struct{})); err != nil || !strings.Contains(string(svg), "backtest: surge-guard") {
		t.Fatalf("plot: %v", err)
	}
	if st, err := os.Stat(filepath.Join(dir, "bt.parquet")); err != nil || st.Size() == 0 {
		t.Fatalf("parquet: %v", err)
	}

	// Bad settings are refused with the reason.
	for arg, want := range map[string]string{
		"WINDOW=5m":           "cannot change in a backtest",
		"SCORING_NOPE=1":      "SCORING_NOPE: not a setting here",
		"SCORING_VOLUME_Z=0":  "SCORING_VOLUME_Z, SCORING_OPINION_Z and SCORING_FLOOR must be at least 1",
		"SCORING_VOLUME_Z":    "want NAME=VALUE",
		"SCORING_VOLUME_Z=x1": `SCORING_VOLUME_Z="x1"`,
	} {
		if _, err := runBacktest(t, db, "--set", arg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--set %s: %v, want %q", arg, err, want)
		}
	}
}
