package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/launch"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// pipeline runs a windower (as its own process) and a scorer (in-process)
// over a broker and a database.
type pipeline struct {
	db  *testenv.Database
	b   *testenv.Broker
	cfg Config
}

func newPipeline(t *testing.T, b *testenv.Broker, strategy string, batch string) *pipeline {
	t.Helper()
	p := &pipeline{db: testenv.NewDatabase(t), b: b}
	p.cfg = testenv.Defaults(t, func(c *Config) *string { return &c.Addr })
	p.cfg.DB.URL, p.cfg.Kafka = p.db.URL, b.Config
	p.cfg.Scoring.Window, p.cfg.Scoring.Strategy = time.Second, strategy
	p.cfg.Sweep = 100 * time.Millisecond
	// Pipelines sharing a broker must not share a consumer group, nor a
	// score topic.
	p.cfg.Group.Name = "windower-" + strings.TrimPrefix(p.db.URL[strings.LastIndexByte(p.db.URL, '/')+1:], "test_")
	p.cfg.Kafka.ScoreTopic = "post-scores-" + p.cfg.Group.Name

	testenv.Launch(t, launch.Spec{Path: testenv.Binary(t, "windower"), Env: []string{
		"WINDOWER_ADDR=" + testenv.FreeAddr(t),
		"KAFKA_BROKERS=" + b.Config.Brokers[0], "DATABASE_URL=" + p.db.URL,
		"WINDOWER_GROUP=" + p.cfg.Group.Name, "WINDOW=1s", "GRACE=1s", "BATCH_MAX_EVENTS=" + batch, "LOG_LEVEL=warn"}})
	testenv.Serve(t, "scorer", p.cfg.Addr, func(ctx context.Context, log *zap.Logger) error { return run(ctx, log, p.cfg) })
	return p
}

// settled waits until the windower consumed total messages and every
// post's score is current.
func (p *pipeline) settled(t *testing.T, total int64) {
	t.Helper()
	ctx := context.Background()
	key := tally.Key{Consumer: p.cfg.Group.Name, Topic: p.cfg.Kafka.Topic}
	testenv.Eventually(t, 60*time.Second, func() error {
		consumed, err := tally.Consumed(ctx, p.db.Pool)
		if err != nil {
			return err
		}
		b, err := tally.ReadBacklog(ctx, p.db.Pool, key)
		if err != nil {
			return err
		}
		unscored, err := tally.Unscored(ctx, p.db.Pool)
		if err != nil {
			return err
		}
		if consumed != total || b.Queued != 0 || b.Due != 0 || unscored != 0 {
			return fmt.Errorf("consumed %d/%d, queued %d, due %d, unscored %d", consumed, total, b.Queued, b.Due, unscored)
		}
		return nil
	})
}

// scores fingerprints every post's score.
func (p *pipeline) scores(t *testing.T) string {
	t.Helper()
	d, err := tally.Digest(context.Background(), p.db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	return d.Sums()["score"]
}

func ratings(seed int64, n, posts int, base time.Time) []rating.Event {
	out := make([]rating.Event, n)
	for i := range out {
		var id uuid.UUID
		id[0], id[1], id[2] = byte(seed), byte(i>>8), byte(i)
		id[6], id[8] = 0x70, 0x80
		id[15] = byte(i >> 16)
		out[i] = rating.Event{V: 1, EventID: id, PostID: int64(1 + i%posts), UserID: fmt.Sprintf("u%d", (i*7+int(seed))%(n/2+1)),
			Score: (i*13 + int(seed)) % 6, RatedAt: base.Add(time.Duration(i) * 20 * time.Millisecond)}
	}
	return out
}

func TestMeanScoresEqualTheMeanOfDistinctRaters(t *testing.T) {
	b := testenv.NewBroker(t, 4)
	evs := ratings(1, 2000, 25, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	b.Produce(t, evs)
	p := newPipeline(t, b, "mean", "500")
	p.settled(t, int64(len(evs)))
	ctx := context.Background()
	scores, err := tally.Scores(ctx, p.db.Pool, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	latest := map[int64]map[string]int{}
	for _, e := range evs { // produced in rated_at order: the last one wins
		if latest[e.PostID] == nil {
			latest[e.PostID] = map[string]int{}
		}
		latest[e.PostID][e.UserID] = e.Score
	}
	n := 0
	for id, votes := range latest {
		s, ok := scores[id]
		if !ok || s.Score == nil {
			t.Errorf("post %d has no score", id)
			continue
		}
		sum := 0
		for _, v := range votes {
			sum += v
		}
		n++
		want := float64(sum) / float64(len(votes))
		if s.UserCount != int64(len(votes)) || math.Abs(*s.Score-want) > 1e-9 {
			t.Errorf("post %d: score %v over %d users, want %v over %d", id, *s.Score, s.UserCount, want, len(votes))
		}
	}
	if n != 25 {
		t.Fatalf("%d posts scored, want 25", n)
	}
}

func TestScoresReplayBitForBit(t *testing.T) {
	b := testenv.NewBroker(t, 6)
	evs := ratings(2, 6000, 40, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	b.Produce(t, evs)
	a := newPipeline(t, b, "surge-guard", "7")
	c := newPipeline(t, b, "surge-guard", "5000")
	a.settled(t, int64(len(evs)))
	c.settled(t, int64(len(evs)))
	if sa, sc := a.scores(t), c.scores(t); sa != sc {
		t.Fatalf("replays with batch sizes 7 and 5000 disagree: %s vs %s", sa, sc)
	}
}

// A post whose score may still change (a window held out flags it under a
// campaign for Params.FlagFor) is rescored when event time moves on,
// though nothing marks it.
func TestPostsWithAFlagFollowTheWatermark(t *testing.T) {
	b := testenv.NewBroker(t, 1)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// Post 1: 40 one-second windows of five ratings of 4, then 200 zeros
	// in one second: held out, which flags the post.
	var evs []rating.Event
	for i := range 200 {
		e, _ := rating.New(1, fmt.Sprintf("u%d", i), 4, t0.Add(time.Duration(i)*200*time.Millisecond))
		evs = append(evs, e)
	}
	for i := range 200 {
		e, _ := rating.New(1, fmt.Sprintf("c%d", i), 0, t0.Add(40*time.Second+time.Duration(i)*5*time.Millisecond))
		evs = append(evs, e)
	}
	// Post 2 lives on the same (only) partition: its ratings close the
	// burst's window.
	for i := range 5 {
		e, _ := rating.New(2, fmt.Sprintf("v%d", i), 3, t0.Add(42*time.Second+time.Duration(i)*time.Second))
		evs = append(evs, e)
	}
	b.Produce(t, evs)
	p := newPipeline(t, b, "surge-guard", "100")
	p.settled(t, int64(len(evs)))
	first := p.score(t, 1)
	if first.CampaignSince == nil || math.Abs(*first.Score-4) > 1e-9 {
		t.Fatalf("after the burst: %+v", first)
	}
	// Post 2's rating moves the watermark 30 s on.
	later, _ := rating.New(2, "w", 3, t0.Add(80*time.Second))
	b.Produce(t, []rating.Event{later})
	p.settled(t, int64(len(evs))+1)
	if after := p.score(t, 1).AsOf; !after.After(first.AsOf.Add(20 * time.Second)) {
		t.Fatalf("post 1 scored as of %s, then %s: it did not follow the watermark", first.AsOf, after)
	}
}

// seed-linear reads a post's whole history: the scorer must hand it every
// window, not only the recent ones.
func TestSeedLinearScoresFromEveryWindow(t *testing.T) {
	b := testenv.NewBroker(t, 2)
	// Two hours of ratings on 3 posts: 600 one-second windows each, over
	// twice the recent hour the default strategy reads.
	evs := ratings(5, 1800, 3, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	for i := range evs {
		evs[i].RatedAt = evs[i].RatedAt.Add(time.Duration(i) * 4 * time.Second)
	}
	b.Produce(t, evs)
	p := newPipeline(t, b, "seed-linear", "500")
	p.settled(t, int64(len(evs)))
	for post := int64(1); post <= 3; post++ {
		ws, err := tally.WindowsSince(context.Background(), p.db.Pool, post, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) < 500 {
			t.Fatalf("post %d has %d windows; the test needs a long history", post, len(ws))
		}
		want := scoring.SeedLinear{}.Score(scoring.Input{All: ws})
		if got := *p.score(t, post).Score; got != want.Score {
			t.Errorf("post %d: seed-linear %v, computed from all %d windows %v", post, got, len(ws), want.Score)
		}
	}
}

// score reads one post's score.
func (p *pipeline) score(t *testing.T, post int64) tally.Score {
	t.Helper()
	s, err := tally.Scores(context.Background(), p.db.Pool, post, post)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s[post]; !ok {
		t.Fatalf("post %d has no score", post)
	}
	return s[post]
}
