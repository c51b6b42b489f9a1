package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ratestream/ratestream/tools/testenv"
)

// state writes the same derived state into a database as a windower and
// scorer would have.
func state(t *testing.T, db *testenv.Database) {
	t.Helper()
	_, err := db.Pool.Exec(context.Background(), `
		INSERT INTO ratings VALUES
		  (1, 'a', 4, '2026-05-01T12:00:01Z', '01a21210-a2ee-7374-aba6-54a3e2cb9927', '2026-05-01T12:00:00Z'),
		  (1, 'b', 2, '2026-05-01T12:01:01Z', '01a21210-a2ee-7374-aba6-54a3e2cb9928', '2026-05-01T12:01:00Z'),
		  (2, 'a', 5, '2026-05-01T12:00:02Z', '01a21210-a2ee-7374-aba6-54a3e2cb9929', '2026-05-01T12:00:00Z');
		INSERT INTO rating_averages VALUES (1, '2026-05-01T12:00:00Z', 4, 1, 2), (1, '2026-05-01T12:01:00Z', 2, 1, 2), (2, '2026-05-01T12:00:00Z', 5, 1, 2);
		INSERT INTO post_stats VALUES (1, 0, 6, 2, 6000000, 2000000, 1, 0.5, '2026-05-01T12:01:00Z', 1, 2), (2, 1, 5, 1, 5000000, 1000000, 0, 0, '2026-05-01T12:00:00Z', 1, 2);
		INSERT INTO post_scores (post_id, score, user_count, mean, strategy, partition, as_of, stable_at) VALUES
		  (1, 3, 2, 3, 'surge-guard', 0, '2026-05-01T12:02:00Z', '2026-05-01T13:01:00Z'),
		  (2, 5, 1, 5, 'surge-guard', 1, '2026-05-01T12:02:00Z', '2026-05-01T13:00:00Z');
		INSERT INTO consumer_offsets (consumer, topic, partition, next_offset) VALUES
		  ('ratestream-windower', 'ratings.v1', 0, 2), ('ratestream-windower', 'ratings.v1', 1, 1);`)
	if err != nil {
		t.Fatal(err)
	}
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
