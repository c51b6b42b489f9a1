package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
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
	if err := config.Load(&p.cfg, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	p.cfg.Addr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	p.cfg.DB.URL, p.cfg.Kafka = p.db.URL, b.Config
	p.cfg.Scoring.Window, p.cfg.Scoring.Strategy = time.Second, strategy
	p.cfg.Scoring.Maturity = time.Minute
	p.cfg.Sweep = 100 * time.Millisecond
	// Pipelines sharing a broker must not share a consumer group.
	p.cfg.Group = "windower-" + strings.TrimPrefix(p.db.URL[strings.LastIndexByte(p.db.URL, '/')+1:], "test_")

	bin := testenv.Binary(t, "windower")
	testenv.Spawn(t, bin,
		fmt.Sprintf("WINDOWER_ADDR=127.0.0.1:%d", testenv.FreePort(t)),
		"KAFKA_BROKERS="+b.Config.Brokers[0], "DATABASE_URL="+p.db.URL,
		"WINDOWER_GROUP="+p.cfg.Group, "WINDOW=1s", "GRACE=1s", "SCORING_MATURITY=1m", "BATCH_MAX_EVENTS="+batch, "LOG_LEVEL=warn")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, zap.NewNop(), p.cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("scorer: %v", err)
		}
	})
	return p
}

// settled waits until the windower consumed total messages and every
// post's score is current.
func (p *pipeline) settled(t *testing.T, total int64) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, func() error {
		var consumed, queued, stale, unscored int64
		err := p.db.Pool.QueryRow(context.Background(), `
			SELECT (SELECT COALESCE(sum(next_offset), 0) FROM consumer_offsets),
			       (SELECT count(*) FROM rescore_queue),
			       (SELECT count(*) FROM post_scores ps JOIN consumer_offsets co ON co.partition = ps.partition
			         WHERE ps.as_of < ps.stable_at AND ps.as_of < co.watermark),
			       (SELECT count(*) FROM post_stats s WHERE NOT EXISTS (SELECT 1 FROM post_scores ps WHERE ps.post_id = s.post_id))`).
			Scan(&consumed, &queued, &stale, &unscored)
		if err != nil {
			return err
		}
		if consumed != total || queued != 0 || stale != 0 || unscored != 0 {
			return fmt.Errorf("consumed %d/%d, queued %d, maturing %d, unscored %d", consumed, total, queued, stale, unscored)
		}
		return nil
	})
}

func (p *pipeline) scores(t *testing.T) string {
	t.Helper()
	var s string
	err := p.db.Pool.QueryRow(context.Background(), `
		SELECT COALESCE(md5(string_agg((post_id, score, user_count, mean, strategy, partition, as_of, stable_at)::text, '|' ORDER BY post_id)), '') || ':' || count(*)
		FROM post_scores`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
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

func produce(t *testing.T, b *testenv.Broker, evs []rating.Event) {
	t.Helper()
	w := b.Writer(t)
	var msgs []kafka.Message
	for _, e := range evs {
		v, _ := e.Marshal()
		msgs = append(msgs, kafka.Message{Key: e.Key(), Value: v})
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func TestMeanScoresEqualTheMeanOfDistinctRaters(t *testing.T) {
	b := testenv.NewBroker(t, 4)
	evs := ratings(1, 2000, 25, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	produce(t, b, evs)
	p := newPipeline(t, b, "mean", "500")
	p.settled(t, int64(len(evs)))
	rows, err := p.db.Pool.Query(context.Background(), `
		SELECT ps.post_id, ps.score, ps.user_count, agg.n, agg.avg
		FROM post_scores ps JOIN (SELECT post_id, count(*) n, avg(score)::float8 avg FROM ratings GROUP BY post_id) agg USING (post_id)`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id, users, raters int64
		var score, avg float64
		if err := rows.Scan(&id, &score, &users, &raters, &avg); err != nil {
			t.Fatal(err)
		}
		n++
		if users != raters || math.Abs(score-avg) > 1e-9 {
			t.Errorf("post %d: score %v over %d users, want %v over %d", id, score, users, avg, raters)
		}
	}
	if n != 25 {
		t.Fatalf("%d posts scored, want 25", n)
	}
}

func TestScoresReplayBitForBit(t *testing.T) {
	b := testenv.NewBroker(t, 6)
	evs := ratings(2, 6000, 40, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	produce(t, b, evs)
	a := newPipeline(t, b, "surge-guard", "7")
	c := newPipeline(t, b, "surge-guard", "5000")
	a.settled(t, int64(len(evs)))
	c.settled(t, int64(len(evs)))
	if sa, sc := a.scores(t), c.scores(t); sa != sc {
		t.Fatalf("replays with batch sizes 7 and 5000 disagree: %s vs %s", sa, sc)
	}
}

// A post whose windows are still maturing is rescored when event time
// moves on, though nothing marks it.
func TestMaturingPostsFollowTheWatermark(t *testing.T) {
	b := testenv.NewBroker(t, 1)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	produce(t, b, ratings(3, 50, 1, t0)) // post 1 only
	p := newPipeline(t, b, "surge-guard", "100")
	p.settled(t, 50)
	var before time.Time
	if err := p.db.Pool.QueryRow(context.Background(), `SELECT as_of FROM post_scores WHERE post_id = 1`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	// Post 2 lives on the same (only) partition: its rating moves the
	// watermark 30 s on.
	later := ratings(4, 1, 1, t0.Add(30*time.Second))
	later[0].PostID = 2
	produce(t, b, later)
	p.settled(t, 51)
	var after time.Time
	if err := p.db.Pool.QueryRow(context.Background(), `SELECT as_of FROM post_scores WHERE post_id = 1`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if !after.After(before.Add(20 * time.Second)) {
		t.Fatalf("post 1 scored as of %s, then %s: it did not follow the watermark", before, after)
	}
}

// seed-linear reads a post's whole history: the scorer must hand it every
// window, not only the maturing ones.
func TestSeedLinearScoresFromEveryWindow(t *testing.T) {
	b := testenv.NewBroker(t, 2)
	// Ten minutes of ratings on 3 posts: about 200 one-second windows
	// each, far more than one maturity (a minute here) holds.
	evs := ratings(5, 1800, 3, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	for i := range evs {
		evs[i].RatedAt = evs[i].RatedAt.Add(time.Duration(i) * 300 * time.Millisecond)
	}
	produce(t, b, evs)
	p := newPipeline(t, b, "seed-linear", "500")
	p.settled(t, int64(len(evs)))
	for post := int64(1); post <= 3; post++ {
		rows, err := p.db.Pool.Query(context.Background(),
			`SELECT window_start, rating_sum, rating_count, threshold FROM rating_averages WHERE post_id = $1 ORDER BY window_start`, post)
		if err != nil {
			t.Fatal(err)
		}
		var ws []scoring.Window
		for rows.Next() {
			var w scoring.Window
			if err := rows.Scan(&w.Start, &w.Sum, &w.Count, &w.Threshold); err != nil {
				t.Fatal(err)
			}
			ws = append(ws, w)
		}
		rows.Close()
		if len(ws) < 100 {
			t.Fatalf("post %d has %d windows; the test needs a long history", post, len(ws))
		}
		want := scoring.SeedLinear{}.Score(scoring.Input{All: ws})
		var got float64
		if err := p.db.Pool.QueryRow(context.Background(), `SELECT score FROM post_scores WHERE post_id = $1`, post).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want.Score {
			t.Errorf("post %d: seed-linear %v, computed from all %d windows %v", post, got, len(ws), want.Score)
		}
	}
}
