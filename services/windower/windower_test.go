package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/launch"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// events draws n ratings over posts and users with re-ratings, exact
// duplicates (a producer retry) and rated_at out of log order.
func events(seed uint64, n, posts, users int) []rating.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	out := make([]rating.Event, 0, n)
	for len(out) < n {
		if len(out) > 0 && rng.IntN(20) == 0 {
			out = append(out, out[rng.IntN(len(out))])
			continue
		}
		var id uuid.UUID
		for i := range id {
			id[i] = byte(rng.UintN(256))
		}
		id[6], id[8] = id[6]&0x0f|0x70, id[8]&0x3f|0x80
		// Mostly moving forward, with a spread that makes later log
		// entries older than earlier ones.
		at := base.Add(time.Duration(len(out))*time.Millisecond + time.Duration(rng.Int64N(int64(3*time.Second))))
		out = append(out, rating.Event{V: 1, EventID: id, PostID: int64(1 + rng.IntN(posts)),
			UserID: fmt.Sprintf("user-%d", rng.IntN(users)), Score: rng.IntN(6), RatedAt: at})
	}
	return out
}

func testConfig(t testing.TB, db *testenv.Database, b *testenv.Broker) Config {
	t.Helper()
	cfg := testenv.Defaults(t, func(c *Config) *string { return &c.Addr })
	cfg.Kafka, cfg.DB.URL = b.Config, db.URL
	cfg.Scoring.Window, cfg.Grace = time.Second, time.Second
	cfg.Session = 6 * time.Second
	cfg.HTTP.ReadyInterval = 200 * time.Millisecond // readiness follows what the tests do at once
	return cfg
}

// start runs a windower in-process until the test ends or stop is called.
func start(t testing.TB, cfg Config) (stop func()) {
	t.Helper()
	return testenv.Serve(t, "windower", cfg.Addr, func(ctx context.Context, log *zap.Logger) error { return run(ctx, log, cfg) }).Stop
}

// waitConsumed waits until the stored offsets cover total messages.
func waitConsumed(t testing.TB, db *testenv.Database, total int64, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		var n int64
		if err := db.Pool.QueryRow(context.Background(), `SELECT COALESCE(sum(next_offset), 0) FROM consumer_offsets`).Scan(&n); err != nil {
			return err
		}
		if n != total {
			return fmt.Errorf("consumed %d of %d", n, total)
		}
		return nil
	})
}

// dump fingerprints the state the windower writes, and the stored
// offsets.
func dump(t testing.TB, db *testenv.Database) map[string]string {
	t.Helper()
	out := digest(t, db).Sums()
	delete(out, "score") // the scorer's
	keys, err := tally.Consumers(context.Background(), db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys { // whatever the group is called
		pos, err := tally.Positions(context.Background(), db.Pool, k)
		if err != nil {
			t.Fatal(err)
		}
		for p, x := range pos {
			out[fmt.Sprintf("offsets %d", p)] = fmt.Sprint(x.Next, x.Watermark)
		}
	}
	return out
}

// digest is the derived state of db, post by post.
func digest(t testing.TB, db *testenv.Database) tally.Digests {
	t.Helper()
	d, err := tally.Digest(context.Background(), db.Pool)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sameDump(t testing.TB, what string, a, b map[string]string) {
	t.Helper()
	if len(a) != len(b) {
		t.Errorf("%s: %d parts vs %d", what, len(a), len(b))
	}
	for k := range a {
		if a[k] != b[k] {
			t.Errorf("%s: table %s differs: %s vs %s", what, k, a[k], b[k])
		}
	}
}

// checkAgainstDefinition compares the tables with a direct computation:
// each user's latest rating of each post, and windows that sum them.
func checkAgainstDefinition(t testing.TB, db *testenv.Database, evs []rating.Event, window time.Duration) {
	t.Helper()
	type key struct {
		post int64
		user string
	}
	latest := map[key]rating.Event{}
	for _, e := range evs {
		k := key{e.PostID, e.UserID}
		if old, ok := latest[k]; !ok || rating.Newer(e.RatedAt, e.EventID, old.RatedAt, old.EventID) {
			latest[k] = e
		}
	}
	rows, err := db.Pool.Query(context.Background(), `SELECT post_id, user_id, score, event_id FROM ratings`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var k key
		var s int16
		var id uuid.UUID
		if err := rows.Scan(&k.post, &k.user, &s, &id); err != nil {
			t.Fatal(err)
		}
		n++
		if e := latest[k]; e.EventID != id || int(s) != e.Score {
			t.Errorf("rating %v: score %d event %s, want %d from %s", k, s, id, e.Score, e.EventID)
		}
	}
	rows.Close()
	if n != len(latest) {
		t.Errorf("%d ratings rows, want %d (one per user and post)", n, len(latest))
	}
	p := scoring.DefaultParams(window)
	type wkey struct {
		post  int64
		start time.Time
	}
	want := map[wkey][2]int64{}
	raters := map[int64][2]int64{}
	for k, e := range latest {
		w := wkey{k.post, p.WindowStart(e.RatedAt)}
		want[w] = [2]int64{want[w][0] + int64(e.Score), want[w][1] + 1}
		raters[k.post] = [2]int64{raters[k.post][0] + int64(e.Score), raters[k.post][1] + 1}
	}
	rows, err = db.Pool.Query(context.Background(), `SELECT post_id, window_start, rating_sum, rating_count FROM rating_averages WHERE rating_count > 0`)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for rows.Next() {
		var w wkey
		var s, c int64
		if err := rows.Scan(&w.post, &w.start, &s, &c); err != nil {
			t.Fatal(err)
		}
		got++
		if x := want[wkey{w.post, w.start.UTC()}]; x != [2]int64{s, c} {
			t.Errorf("window %d@%s: %d/%d, want %d/%d", w.post, w.start, s, c, x[0], x[1])
		}
	}
	rows.Close()
	if got != len(want) {
		t.Errorf("%d non-empty windows, want %d", got, len(want))
	}
	for post, x := range raters {
		var s, c int64
		err := db.Pool.QueryRow(context.Background(), `SELECT sum(rating_sum), sum(rating_count) FROM rating_averages WHERE post_id = $1`, post).Scan(&s, &c)
		if err != nil {
			t.Fatal(err)
		}
		if s != x[0] || c != x[1] {
			t.Errorf("post %d: windows sum to %d over %d ratings, want %d over %d distinct raters", post, s, c, x[0], x[1])
		}
	}
}

func poison() []kafka.Message {
	return []kafka.Message{
		{Key: []byte("1"), Value: []byte("not json at all")},
		{Key: []byte("2"), Value: []byte(`{"v":1,"event_id":"x","post_id":2,"user_id":"u","score":9,"rated_at":"2026-05-01T12:00:00Z"}`)},
	}
}

func TestAppliesStreamExactlyAsDefinedAndParksPoison(t *testing.T) {
	b := testenv.NewBroker(t, 12)
	evs := events(1, 5000, 40, 300)
	b.Produce(t, evs, poison()...)
	db := testenv.NewDatabase(t)
	start(t, testConfig(t, db, b))
	waitConsumed(t, db, int64(len(evs)+2), 60*time.Second)
	checkAgainstDefinition(t, db, evs, time.Second)

	var marked int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM rescore_queue`).Scan(&marked); err != nil {
		t.Fatal(err)
	}
	if marked != 40 {
		t.Errorf("%d posts marked for rescoring, want 40", marked)
	}
	dead := b.Messages(t, b.Config.DLQTopic())
	if len(dead) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dead))
	}
	for _, m := range dead {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		if h["dlq.error"] == "" || h["dlq.offset"] == "" || h["dlq.partition"] == "" || h["dlq.topic"] != "ratings.v1" {
			t.Errorf("dead letter without its origin: %v", h)
		}
	}
}

func TestBatchSizesGiveIdenticalTables(t *testing.T) {
	b := testenv.NewBroker(t, 12)
	evs := events(2, 6000, 30, 200)
	b.Produce(t, evs)
	var first map[string]string
	for _, size := range []int{1, 17, 5000} {
		db := testenv.NewDatabase(t)
		cfg := testConfig(t, db, b)
		cfg.MaxBatch = size
		stop := start(t, cfg)
		waitConsumed(t, db, int64(len(evs)), 120*time.Second)
		stop()
		d := dump(t, db)
		if first == nil {
			first = d
			checkAgainstDefinition(t, db, evs, time.Second)
			continue
		}
		sameDump(t, fmt.Sprintf("batch size %d vs 1", size), first, d)
	}
}

func TestTwoInstancesMatchOne(t *testing.T) {
	b := testenv.NewBroker(t, 12)
	evs := events(3, 8000, 60, 300)
	b.Produce(t, evs)

	one := testenv.NewDatabase(t)
	stop := start(t, testConfig(t, one, b))
	waitConsumed(t, one, int64(len(evs)), 60*time.Second)
	stop()

	two := testenv.NewDatabase(t)
	cfgA, cfgB := testConfig(t, two, b), testConfig(t, two, b)
	cfgA.Group.Name, cfgB.Group.Name = "pair", "pair"
	cfgA.MaxBatch, cfgB.MaxBatch = 50, 50 // slow enough that both get work
	start(t, cfgA)
	start(t, cfgB)
	waitConsumed(t, two, int64(len(evs)), 120*time.Second)
	sameDump(t, "two instances vs one", dump(t, one), dump(t, two))
}

func TestSurvivesKill9AtRandomPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("long: 100k events and several restarts")
	}
	b := testenv.NewBroker(t, 12)
	evs := events(4, 100_000, 1000, 20_000)
	b.Produce(t, evs)
	total := int64(len(evs))

	reference := testenv.NewDatabase(t)
	stop := start(t, testConfig(t, reference, b))
	waitConsumed(t, reference, total, 180*time.Second)
	stop()

	bin := testenv.Binary(t, "windower")
	db := testenv.NewDatabase(t)
	cfg := testConfig(t, db, b)
	env := []string{
		"WINDOWER_ADDR=" + cfg.Addr, "KAFKA_BROKERS=" + strings.Join(b.Config.Brokers, ","),
		"DATABASE_URL=" + db.URL, "WINDOW=1s", "GRACE=1s", "BATCH_MAX_EVENTS=300",
		"WINDOWER_SESSION_TIMEOUT=6s", "LOG_LEVEL=warn"}
	run := func() *launch.Process {
		return testenv.Launch(t, launch.Spec{Path: bin, Env: env})
	}
	consumed := func() int64 {
		var n int64
		_ = db.Pool.QueryRow(context.Background(), `SELECT COALESCE(sum(next_offset), 0) FROM consumer_offsets`).Scan(&n)
		return n
	}
	rng := rand.New(rand.NewPCG(99, 1))
	points := []int64{rng.Int64N(total / 4), total/4 + rng.Int64N(total/4), total/2 + rng.Int64N(total/4)}
	sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })
	proc := run()
	for _, p := range points {
		testenv.Eventually(t, 180*time.Second, func() error {
			if n := consumed(); n < p {
				return fmt.Errorf("consumed %d, waiting for %d", n, p)
			}
			return nil
		})
		at := consumed()
		proc.Kill()
		t.Logf("killed at %d/%d events consumed", at, total)
		proc = run()
	}
	waitConsumed(t, db, total, 240*time.Second)
	if err := proc.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	sameDump(t, "killed three times vs uninterrupted", dump(t, reference), dump(t, db))
}

func TestReadinessFollowsTheBrokerAndConsumptionResumes(t *testing.T) {
	b := testenv.NewBroker(t, 3)
	db := testenv.NewDatabase(t)
	cfg := testConfig(t, db, b)
	start(t, cfg)
	first := events(5, 300, 5, 50)
	b.Produce(t, first)
	waitConsumed(t, db, 300, 60*time.Second)
	ready := func() int {
		resp, err := http.Get("http://" + cfg.Addr + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	b.Stop()
	testenv.Eventually(t, 10*time.Second, func() error {
		if s := ready(); s != http.StatusServiceUnavailable {
			return fmt.Errorf("readyz %d with the broker down", s)
		}
		return nil
	})
	b.Start()
	testenv.WaitHTTP(t, "http://"+cfg.Addr+"/readyz", 30*time.Second)
	second := events(6, 300, 5, 50)
	b.Produce(t, second)
	waitConsumed(t, db, 600, 90*time.Second)
	checkAgainstDefinition(t, db, append(first, second...), time.Second)
}

// Against a broker that speaks only TLS and SCRAM-SHA-256 the windower
// joins its group, consumes, and writes dead letters with the client
// settings; with a wrong password it stays up, not ready, and says why.
func TestConsumesOverTLSWithSCRAM(t *testing.T) {
	b := testenv.NewSecureBroker(t, 6, "ratestream", "correct horse")
	evs := events(51, 1000, 10, 100)
	b.Produce(t, evs, poison()...)
	db := testenv.NewDatabase(t)
	start(t, testConfig(t, db, b))
	waitConsumed(t, db, int64(len(evs)+2), 60*time.Second)
	checkAgainstDefinition(t, db, evs, time.Second)
	if n := len(b.Messages(t, b.Config.DLQTopic())); n != 2 {
		t.Fatalf("%d dead letters, want 2", n)
	}

	wrong := testConfig(t, testenv.NewDatabase(t), b)
	wrong.Kafka.SASLPasswordFile = filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong.Kafka.SASLPasswordFile, []byte("battery staple"), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, wrong)
	body := testenv.WaitUnready(t, "http://"+wrong.Addr+"/readyz", "sasl", 10*time.Second)
	t.Logf("readyz with a wrong password: %s", body)
}
