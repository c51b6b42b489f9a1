package main

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/postscore"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
	"github.com/ratestream/ratestream/tools/testenv/eventschema"
)

// scoreTopicMatches waits until the outbox is empty, then reads the score
// topic to its end and checks it against post_scores: every record valid,
// on its post's partition (murmur2, as ratings), versions growing per post
// in the log, and the latest record of every post equal, byte for byte, to
// the record its post_scores row makes; a consumer's table of the topic
// (postscore.Table) holds the same. It returns how many records it read.
func scoreTopicMatches(t *testing.T, p *pipeline) int {
	t.Helper()
	ctx := context.Background()
	testenv.Eventually(t, 30*time.Second, func() error {
		n, err := tally.OutboxBacklog(ctx, p.db.Pool)
		if err != nil || n != 0 {
			return fmt.Errorf("%d records wait in the outbox (%v)", n, err)
		}
		return nil
	})
	want, err := tally.ScoreRecords(ctx, p.db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	schema := eventschema.CompileScores(t)
	msgs := p.b.Messages(t, p.cfg.Kafka.ScoreTopic)
	latest := map[int64]kafka.Message{}
	table := postscore.Table{}
	parts, err := broker.Partitions(ctx, p.cfg.Kafka, p.cfg.Kafka.ScoreTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if err := schema.Check(m.Value); err != nil {
			t.Fatalf("record %s fails the schema: %v", m.Value, err)
		}
		r, err := postscore.Unmarshal(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != strconv.FormatInt(r.PostID, 10) || m.Partition != broker.PartitionOf(r.PostID, len(parts)) {
			t.Fatalf("record of post %d with key %q on partition %d", r.PostID, m.Key, m.Partition)
		}
		if prev, ok := latest[r.PostID]; ok {
			pr, _ := postscore.Unmarshal(prev.Value)
			if r.Version < pr.Version {
				t.Fatalf("post %d: version %d after %d in the log", r.PostID, r.Version, pr.Version)
			}
		}
		latest[r.PostID] = m
		table.Apply(r)
	}
	if len(latest) != len(want) || len(want) == 0 {
		t.Fatalf("%d posts on the score topic, %d in post_scores", len(latest), len(want))
	}
	for id, rec := range want {
		if got := string(latest[id].Value); got != string(rec) {
			t.Fatalf("post %d: latest record\n%s\npost_scores makes\n%s", id, got, rec)
		}
		if r, _ := postscore.Unmarshal(rec); table[id].Version != r.Version {
			t.Fatalf("post %d: the consumer's table holds version %d, want %d", id, table[id].Version, r.Version)
		}
	}
	return len(msgs)
}

// Every change of a post's score reaches the score topic, in order, and
// the latest record per post equals post_scores, also after the scorer
// stops and starts again and after records come twice (a relay that died
// between the broker's acknowledgement and the delete sends them again).
func TestTheScoreTopicFollowsPostScores(t *testing.T) {
	b := testenv.NewBroker(t, 4)
	evs := ratings(3, 3000, 30, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	b.Produce(t, evs[:1500])
	p := newPipeline(t, b, "surge-guard", "200")
	p.settled(t, 1500)
	first := scoreTopicMatches(t, p)

	// Published but not deleted: the same records again.
	ctx := context.Background()
	recs, err := tally.ScoreRecords(ctx, p.db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	for id, rec := range recs {
		if _, err := p.db.Pool.Exec(ctx, `INSERT INTO score_outbox (post_id, version, record) VALUES ($1, 0, $2)`, id, string(rec)); err != nil {
			t.Fatal(err)
		}
	}
	b.Produce(t, evs[1500:])
	p.settled(t, 3000)
	if n := scoreTopicMatches(t, p); n <= first+len(recs) {
		t.Fatalf("%d records after the second half, %d after the first", n, first)
	}

	// Created compacted: a table, not a history.
	if testenv.TopicConfig(t, p.b.Config.Brokers, p.cfg.Kafka.ScoreTopic, "cleanup.policy") != "compact" {
		t.Fatal("the score topic is not compacted")
	}
}

// Scores written before the score topic existed (version 0, as an
// upgraded database has them) are published when the scorer starts, so a
// reader of the topic sees every scored post, not only those rescored
// since.
func TestScoresFromBeforeTheTopicArePublished(t *testing.T) {
	b := testenv.NewBroker(t, 4)
	p := &pipeline{db: testenv.NewDatabase(t), b: b}
	ctx := context.Background()
	if _, err := p.db.Pool.Exec(ctx, `INSERT INTO posts (title) SELECT 'p' || g FROM generate_series(1, 50) g`); err != nil {
		t.Fatal(err)
	}
	if err := tally.SynthesizeScores(ctx, p.db.Pool, 1, 50); err != nil {
		t.Fatal(err)
	}
	p.cfg = testenv.Defaults(t, func(c *Config) *string { return &c.Addr })
	p.cfg.DB.URL, p.cfg.Kafka = p.db.URL, b.Config
	testenv.Serve(t, "scorer", p.cfg.Addr, func(ctx context.Context, log *zap.Logger) error { return run(ctx, log, p.cfg) })
	testenv.Eventually(t, 10*time.Second, func() error {
		var left int
		if err := p.db.Pool.QueryRow(ctx, `SELECT count(*) FROM post_scores WHERE version = 0`).Scan(&left); err != nil || left > 0 {
			return fmt.Errorf("%d scores never queued (%v)", left, err)
		}
		return nil
	})
	if n := scoreTopicMatches(t, p); n != 50 {
		t.Fatalf("%d records for 50 posts", n)
	}
}
