package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratestream/ratestream/tools/testenv"
)

// campaigned stores a post whose 20 windows hold 2 ratings of 4 each and
// a 21st window with a burst of 100 zeros, held out live (threshold 8):
// its live score is 4, its plain mean 160/140.
func campaigned(t *testing.T, db *testenv.Database) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range 20 {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO rating_averages VALUES (7, $1, 8, 2, 8)`, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO rating_averages VALUES (7, '2026-05-01T12:20:00Z', 0, 100, 8);
		INSERT INTO post_stats VALUES (7, 0, 160, 140, 0, 0, 2, 1, '2026-05-01T12:20:00Z', 100, 8);
		INSERT INTO post_scores (post_id, score, user_count, mean, strategy, partition, as_of, stable_at) VALUES
		  (7, 4, 140, 1.142857142857143, 'surge-guard', 0, '2026-05-01T13:19:00Z', '2026-05-01T13:19:00Z');
		INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, watermark) VALUES
		  ('ratestream-windower', 'ratings.v1', 0, 2120, '2026-05-01T14:00:00Z');`)
	if err != nil {
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
	if !near(r.Backtest, 4) || !near(r.Difference, 0) || r.AnomalousLive != 1 || r.AnomalousBacktest != 1 || r.UserCount != 140 || !near(r.Mean, plain) {
		t.Fatalf("live settings: %+v", r)
	}

	// The plain mean counts the burst.
	if rep, err = runBacktest(t, db, "--strategy", "mean"); err != nil {
		t.Fatal(err)
	}
	if r := rep.Posts[0]; !near(r.Backtest, plain) || !near(r.Difference, plain-4) || rep.Strategy != "mean" {
		t.Fatalf("mean: %+v", r)
	}

	// A surge factor of 100 recomputes the thresholds from the stored
	// counts: the burst is no longer anomalous and counts fully.
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "bt.csv")
	if rep, err = runBacktest(t, db, "--set", "SCORING_SURGE=100", "--csv", csvPath, "--parquet", filepath.Join(dir, "bt.parquet"), "--plots", dir); err != nil {
		t.Fatal(err)
	}
	r = rep.Posts[0]
	if !near(r.Backtest, plain) || r.AnomalousBacktest != 0 || r.AnomalousLive != 1 || r.MaxDifference < 2.8 || rep.Settings["SCORING_SURGE"] != "100" {
		t.Fatalf("SCORING_SURGE=100: %+v", r)
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
		"WINDOW=5m":        "cannot change in a backtest",
		"SCORING_NOPE=1":   "SCORING_NOPE: not a setting here",
		"SCORING_SURGE=0":  "SCORING_SURGE and SCORING_FLOOR must be at least 1",
		"SCORING_SURGE":    "want NAME=VALUE",
		"SCORING_SURGE=x1": `SCORING_SURGE="x1"`,
	} {
		if _, err := runBacktest(t, db, "--set", arg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--set %s: %v, want %q", arg, err, want)
		}
	}
}
