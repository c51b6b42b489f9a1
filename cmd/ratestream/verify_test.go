package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// state writes the same derived state into a database as a windower and
// scorer would have: post 1 on partition 0 (two raters), post 2 on
// partition 1 (one).
func state(t *testing.T, db *testenv.Database) {
	t.Helper()
	p := scoring.DefaultParams(time.Minute)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	one := testenv.Fold(p, 0, event(t, 1, "a", 4, t0.Add(time.Second), 0x27), event(t, 1, "b", 2, t0.Add(61*time.Second), 0x28))
	two := testenv.Fold(p, 1, event(t, 2, "a", 5, t0.Add(2*time.Second), 0x29))
	testenv.Store(t, db, one, 0, 2)
	testenv.Store(t, db, two, 1, 1)
	s1, s2 := 3.0, 5.0
	if err := tally.WriteScores(context.Background(), db.Pool, []tally.Score{
		{PostID: 1, Score: &s1, UserCount: 2, Mean: &s1, Strategy: "surge-guard", Partition: 0, AsOf: t0.Add(2 * time.Minute), StableAt: t0.Add(time.Minute)},
		{PostID: 2, Score: &s2, UserCount: 1, Mean: &s2, Strategy: "surge-guard", Partition: 1, AsOf: t0.Add(2 * time.Minute), StableAt: t0},
	}); err != nil {
		t.Fatal(err)
	}
}

// event is a rating with a fixed event id, the same in every database.
func event(t *testing.T, post int64, user string, score int, at time.Time, id byte) rating.Event {
	e := testenv.Event(t, post, user, score, at)
	e.EventID = uuid.MustParse(fmt.Sprintf("01a21210-a2ee-7374-aba6-54a3e2cb99%02x", id))
	return e
}

func runVerify(t *testing.T, a, b *testenv.Database) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := verifyCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"--database", a.URL, "--against", b.URL})
	err := cmd.Execute()
	return out.String(), err
}

func TestVerify(t *testing.T) {
	a, b := testenv.NewDatabase(t), testenv.NewDatabase(t)
	state(t, a)
	state(t, b)
	if out, err := runVerify(t, a, b); err != nil || !strings.HasPrefix(out, "identical: 2 posts over 2 partitions") {
		t.Fatalf("same state: %v %q", err, out)
	}

	// One rating changed by hand: exactly that post is reported.
	if _, err := b.Pool.Exec(context.Background(), `UPDATE ratings SET score = 3 WHERE post_id = 2 AND user_id = 'a'`); err != nil {
		t.Fatal(err)
	}
	out, err := runVerify(t, a, b)
	if !errors.Is(err, errDiffer) {
		t.Fatalf("a changed rating: %v %q", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "post 2: ratings differ") || lines[1] != "1 differences over 2 posts" {
		t.Fatalf("report:\n%s", out)
	}

	// A partition consumed further on one side is not compared.
	if _, err := b.Pool.Exec(context.Background(), `UPDATE consumer_offsets SET next_offset = 9 WHERE partition = 1`); err != nil {
		t.Fatal(err)
	}
	out, err = runVerify(t, a, b)
	if err != nil || !strings.Contains(out, "not comparable: partition 1: offset 1 vs 9") || !strings.Contains(out, "identical: 1 posts over 1 partitions") {
		t.Fatalf("partition behind: %v\n%s", err, out)
	}
}
