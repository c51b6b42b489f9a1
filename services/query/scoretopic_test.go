package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/postscore"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// relayScores starts a broker with the score topic and the scorer's relay
// of db's outbox to it: what tests write with tally.WriteScores reaches
// the query service the way the scorer's writes do.
func relayScores(t *testing.T, db *testenv.Database) *testenv.Broker {
	t.Helper()
	b := testenv.NewBroker(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	if err := broker.EnsureTopic(ctx, b.Config, b.Config.ScoreTopic, b.Config.Partitions); err != nil {
		t.Fatal(err)
	}
	w, err := broker.NewWriter(b.Config, b.Config.ScoreTopic, tuning)
	if err != nil {
		t.Fatal(err)
	}
	r := postscore.NewRelay(db.Pool, w, 1000, zap.NewNop(), prometheus.NewRegistry())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; w.Close() })
	return b
}

// produceScores writes records straight to the score topic, as a careless
// producer (or a test) would.
func produceScores(t *testing.T, b *testenv.Broker, msgs ...kafka.Message) {
	t.Helper()
	w, err := broker.NewWriter(b.Config, b.Config.ScoreTopic, tuning)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for len(msgs) > 0 {
		n := min(len(msgs), 10000)
		if err := w.WriteMessages(context.Background(), msgs[:n]...); err != nil {
			t.Fatal(err)
		}
		msgs = msgs[n:]
	}
}

var tuning = broker.WriterTuning{BatchSize: 1000, BatchBytes: 1 << 20, BatchTimeout: time.Millisecond, WriteTimeout: 5 * time.Second}

func scoreMsg(t testing.TB, r postscore.Record) kafka.Message {
	r.V = postscore.Version
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(strconv.FormatInt(r.PostID, 10)), Value: b}
}

func record(post, version, users int64, score float64) postscore.Record {
	return postscore.Record{PostID: post, Version: version, Score: &score, Mean: &score, UserCount: users,
		Distribution: [6]int64{0, 0, 0, users, 0, 0}, AsOf: time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC), Strategy: "surge-guard"}
}

// The view follows the score topic: what the scorer writes reaches the
// API through the outbox and the topic; a record older than what the view
// holds, a record that comes twice, a value that is not a record and a
// record under another post's key change nothing.
func TestScoresReachTheViewThroughTheTopic(t *testing.T) {
	h := start(t)
	b := h.kafka
	h.do(t, "POST", "/v1/posts", `{"title":"scored"}`)
	h.do(t, "POST", "/v1/posts", `{"title":"other"}`)
	score, mean := 3.14159, 3.2
	if err := tally.WriteScores(context.Background(), h.db.Pool, []tally.Score{{PostID: 1, Score: &score, UserCount: 7, Mean: &mean,
		Strategy: "surge-guard", AsOf: time.Now(), StableAt: time.Now(), Dist: [6]int64{0, 0, 0, 7, 0, 0}}}); err != nil {
		t.Fatal(err)
	}
	// Generous: the relay's write waits up to its 5 s timeout when the
	// broker is slow to answer, and retries; a whole make test on two
	// cores slows this package down six times.
	want := func(id int64, score float64, users float64) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, func() error {
			_, _, p := h.do(t, "GET", "/v1/posts/"+strconv.FormatInt(id, 10), "")
			if p["score"] != score || p["user_count"] != users {
				return fmt.Errorf("post %d is %v", id, p)
			}
			return nil
		})
	}
	want(1, 3.14, 7)

	// PostgreSQL restored from a backup taken after post 1's first score:
	// its row goes back to that version, while the topic already holds
	// later ones. What the scorer writes next must still be newer than
	// anything published.
	write := func(score float64, users int64) {
		t.Helper()
		if err := tally.WriteScores(context.Background(), h.db.Pool, []tally.Score{{PostID: 1, Score: &score, UserCount: users, Mean: &score,
			Strategy: "surge-guard", AsOf: time.Now(), StableAt: time.Now(), Dist: [6]int64{0, 0, 0, users, 0, 0}}}); err != nil {
			t.Fatal(err)
		}
	}
	var first int64
	if err := h.db.Pool.QueryRow(context.Background(), `SELECT version FROM post_scores WHERE post_id = 1`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	write(2.5, 8)
	write(2.75, 9)
	want(1, 2.75, 9)
	if _, err := h.db.Pool.Exec(context.Background(), `UPDATE post_scores SET version = $1 WHERE post_id = 1`, first); err != nil {
		t.Fatal(err)
	}
	write(3.14159, 7)
	want(1, 3.14, 7)

	// Post 1 holds the version written last; version 5 of post 2 then
	// everything hostile, then version 6 of post 2 as a marker.
	bad := scoreMsg(t, record(1, 99, 1, 0.5))
	bad.Key = []byte("2") // post 1's record under post 2's key
	produceScores(t, b,
		scoreMsg(t, record(2, 5, 50, 4.5)),
		scoreMsg(t, record(2, 4, 1, 1)), // older
		scoreMsg(t, record(2, 5, 2, 2)), // same version again
		kafka.Message{Key: []byte("2"), Value: []byte(`{"v":1,"post_id":2`)},
		bad,
		scoreMsg(t, record(1, 1, 1, 0)), // an old version of post 1
	)
	produceScores(t, b, scoreMsg(t, record(2, 6, 60, 4.25)))
	want(2, 4.25, 60)
	want(1, 3.14, 7)
	if n := metric(t, h, "query_score_records_malformed_total"); n != 2 {
		t.Errorf("malformed records counted: %v, want 2", n)
	}
}

// A replica that starts is not ready until it has read the score topic to
// the end it had: the first page it serves already has every score, so a
// client never reads an older score from it than it read before its
// restart. Start-up from a topic of 100,000 posts is measured here and
// bounded generously (make bench-query measures it).
func TestStartUpReadsTheScoreTopicToItsEnd(t *testing.T) {
	const posts = 100_000
	db := testenv.NewDatabase(t)
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO posts (title) SELECT 'p' || g FROM generate_series(1, $1) g`, posts); err != nil {
		t.Fatal(err)
	}
	b := relayScores(t, db)
	// Two versions of every post; the second is the one to serve.
	msgs := make([]kafka.Message, 0, 2*posts)
	for v := int64(1); v <= 2; v++ {
		for id := int64(1); id <= posts; id++ {
			msgs = append(msgs, scoreMsg(t, record(id, v, v*10+id%7, float64(v))))
		}
	}
	produceScores(t, b, msgs...)

	// The follower alone: the moment it says ready, it has handed over
	// the newest record of every post.
	var applied []postscore.Record
	f := &postscore.Follower{Kafka: b.Config, Log: zap.NewNop(), Apply: func(r []postscore.Record) { applied = append(applied, r...) }}
	fctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	read := time.Now()
	go func() { defer close(done); f.Run(fctx) }()
	for f.Ready(fctx) != nil {
		time.Sleep(time.Millisecond)
	}
	t.Logf("the reader alone: %d records read to the end in %s", len(msgs), time.Since(read).Round(time.Millisecond))
	stop()
	<-done
	newest := map[int64]int64{}
	for _, r := range applied {
		newest[r.PostID] = max(newest[r.PostID], r.Version)
	}
	for id := int64(1); id <= posts; id++ {
		if newest[id] != 2 {
			t.Fatalf("ready with post %d at version %d (%d records applied)", id, newest[id], len(applied))
		}
	}

	cfg := testenv.Defaults(t, func(c *Config) *string { return &c.Addr })
	cfg.DB.URL, cfg.Kafka = db.URL, b.Config
	began := time.Now()
	testenv.Serve(t, "query", cfg.Addr, func(ctx context.Context, log *zap.Logger) error { return run(ctx, log, cfg) })
	base := "http://" + cfg.Addr
	for {
		if time.Since(began) > 60*time.Second {
			t.Fatal("not ready 60 s after start")
		}
		if status(t, base+"/readyz") == http.StatusOK {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("ready %s after start with %d posts and %d score records", time.Since(began).Round(time.Millisecond), posts, len(msgs))
	for _, id := range []int64{1, 2, 777, 50_000, posts} {
		var p map[string]any
		getJSON(t, base+"/v1/posts/"+strconv.FormatInt(id, 10), &p)
		if p["score"] != 2.0 || p["user_count"] != float64(20+id%7) {
			t.Fatalf("post %d served right after readiness: %v", id, p)
		}
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// DATABASE_READ_URL serves my_score and the explanations, and nothing is
// written through it: here it is another database (read-only for the
// session) whose votes differ from the primary's, so the answer says
// which one was read. Creating a post still works (the primary).
func TestReadsGoToTheReadURL(t *testing.T) {
	replica := testenv.NewDatabase(t)
	h := start(t, func(c *Config) { c.ReadURL = replica.URL + "&default_transaction_read_only=on" })
	h.do(t, "POST", "/v1/posts", `{"title":"one"}`)
	ctx := context.Background()
	if _, err := replica.Pool.Exec(ctx, `INSERT INTO posts (title) VALUES ('one')`); err != nil { // as replication would
		t.Fatal(err)
	}
	for db, score := range map[*testenv.Database]int{h.db: 1, replica: 5} {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO ratings (post_id, user_id, score, rated_at, event_id, window_start)
			VALUES (1, 'reader', $1, now(), gen_random_uuid(), now())`, score); err != nil {
			t.Fatal(err)
		}
	}
	st, _, p := h.do(t, "GET", "/v1/posts/1", "", "X-User-ID", "reader")
	if st != http.StatusOK || p["my_score"] != float64(5) {
		t.Fatalf("my_score from the read URL: %d %v, want 5", st, p)
	}
	if st, _, p := h.do(t, "POST", "/v1/posts", `{"title":"two"}`); st != http.StatusCreated {
		t.Fatalf("creating a post with a read URL: %d %v", st, p)
	}
	if st, _, _ := h.do(t, "GET", "/v1/posts/1/explain", ""); st != http.StatusOK {
		t.Fatalf("explain from the read URL: %d", st)
	}
}

// How far a replica is behind the score topic is measured against the
// broker's log ends, not against what its reader last fetched: records
// held up in the replica count, and a reader that is stuck shows its lag
// growing while the scorer writes. The service exports it per partition.
func TestScoreTopicLagIsMeasured(t *testing.T) {
	b := testenv.NewBroker(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := broker.EnsureTopic(ctx, b.Config, b.Config.ScoreTopic, b.Config.Partitions); err != nil {
		t.Fatal(err)
	}
	msgs := func(from, to int64) []kafka.Message {
		var out []kafka.Message
		for p := from; p < to; p++ {
			out = append(out, scoreMsg(t, record(p, 1, 1, 3)))
		}
		return out
	}
	produceScores(t, b, msgs(1, 11)...)

	gate := make(chan struct{}) // Apply waits until it is closed
	var open sync.Once
	release := func() { open.Do(func() { close(gate) }) }
	applied := make(chan int, 100)
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lag"}, []string{"partition"})
	f := &postscore.Follower{Kafka: b.Config, Log: zap.NewNop(), Lag: lag, LagEvery: 50 * time.Millisecond,
		Apply: func(r []postscore.Record) {
			<-gate
			applied <- len(r)
		}}
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	defer func() { cancel(); release(); <-done }()

	total := func() float64 {
		var sum float64
		for p := range b.Config.Partitions {
			sum += testutil.ToFloat64(lag.WithLabelValues(strconv.Itoa(p)))
		}
		return sum
	}
	wantLag := func(want float64) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, func() error {
			if got := total(); got != want {
				return fmt.Errorf("lag %v, want %v", got, want)
			}
			return nil
		})
	}
	// The first batch is held in Apply: nothing is applied, all is lag.
	wantLag(10)
	// The scorer goes on writing while the replica is stuck.
	produceScores(t, b, msgs(11, 16)...)
	wantLag(15)
	release()
	wantLag(0)
	n := 0
	for n < 15 {
		select {
		case k := <-applied:
			n += k
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of 15 records applied", n)
		}
	}

	// The service exports it, per partition, and it is 0 once read.
	h := start(t, func(c *Config) { c.LagEvery = 50 * time.Millisecond })
	produceScores(t, h.kafka, msgs(1, 11)...)
	testenv.Eventually(t, 5*time.Second, func() error {
		body := metricsBody(t, h)
		for p := range h.kafka.Config.Partitions {
			if series := fmt.Sprintf("query_score_topic_lag{partition=%q} 0\n", strconv.Itoa(p)); !strings.Contains(body, series) {
				return fmt.Errorf("no %q in /metrics", series)
			}
		}
		return nil
	})
}
