package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	neturl "net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/launch"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/simulation/loadgen"
)

const queryPosts = 10_000

// startQuery publishes the scores of the database to a fresh broker's
// score topic, as the scorer's relay does, starts a query service over
// both and says how long it took to be ready.
func startQuery(ctx context.Context, e *env, url string, pool *pgxpool.Pool, extraEnv ...string) (string, time.Duration, error) {
	const partitions = 12
	brokerAddr, err := e.broker(partitions)
	if err != nil {
		return "", 0, err
	}
	cfg := broker.Config{Brokers: []string{brokerAddr}, Topic: "ratings.v1", ScoreTopic: "post-scores.v1", Partitions: partitions, Replicas: 1}
	if err := broker.EnsureTopic(ctx, cfg, cfg.ScoreTopic, partitions); err != nil {
		return "", 0, err
	}
	if _, err := tally.QueueUnpublished(ctx, pool); err != nil { // made-up scores get their first version
		return "", 0, err
	}
	recs, err := tally.ScoreRecords(ctx, pool)
	if err != nil {
		return "", 0, err
	}
	w, err := broker.NewWriter(cfg, cfg.ScoreTopic, broker.WriterTuning{BatchSize: 1000, BatchBytes: 1 << 20, BatchTimeout: time.Millisecond, WriteTimeout: 10 * time.Second})
	if err != nil {
		return "", 0, err
	}
	defer w.Close()
	msgs := make([]kafka.Message, 0, len(recs))
	for id, r := range recs {
		msgs = append(msgs, kafka.Message{Key: strconv.AppendInt(nil, id, 10), Value: r})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return "", 0, fmt.Errorf("publish scores: %w", err)
	}
	addr := freeAddr()
	began := time.Now()
	p, err := e.spawn("query", append([]string{"QUERY_ADDR=" + addr, "DATABASE_URL=" + url, "KAFKA_BROKERS=" + brokerAddr,
		fmt.Sprintf("KAFKA_PARTITIONS=%d", partitions)}, extraEnv...)...)
	if err != nil {
		return "", 0, err
	}
	if err := launch.WaitReady(ctx, "http://"+addr, 60*time.Second); err != nil {
		return "", 0, err
	}
	took := time.Since(began)
	fmt.Printf("query ready %s after start with %d posts' scores on the topic, RSS %.0f MB\n", took.Round(time.Millisecond), len(recs), rssMB(p.pid))
	return addr, took, nil
}

// queryBench serves 10,000 scored posts (a hundred of them with two
// thousand ratings each) and drives keyset pages and single posts with a
// random X-User-ID, then the same load at a bare gin handler answering a
// fixed JSON.
func queryBench(ctx context.Context, e *env, o opts) ([]figure, error) {
	url, pool, err := e.database(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO posts (id, title) SELECT g, 'Post ' || g FROM generate_series(1, %d) g`, queryPosts),
		`SELECT setval(pg_get_serial_sequence('posts', 'id'), (SELECT max(id) FROM posts))`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	if err := tally.Synthesize(ctx, pool, tally.Synthetic{FirstPost: 1, Posts: 100, Votes: 200_000,
		Start: time.Now().Add(-time.Hour), Step: time.Millisecond, WindowWidth: time.Minute}); err != nil {
		return nil, err
	}
	if err := tally.SynthesizeScores(ctx, pool, 1, queryPosts); err != nil {
		return nil, err
	}
	addr, _, err := startQuery(ctx, e, url, pool)
	if err != nil {
		return nil, err
	}
	t := loadgen.Target{Query: "http://" + addr, Posts: queryPosts, Users: 2000}
	page, post := t.PageRequest(), t.PostRequest()
	mix := func(ctx context.Context, c *http.Client, rng *rand.Rand) int {
		if rng.IntN(2) == 0 {
			return page(ctx, c, rng)
		}
		return post(ctx, c, rng)
	}
	loadgen.Run(ctx, loadgen.Plan{Name: "warm-up", VUs: o.vus, Duration: 2 * time.Second, Request: mix})
	real := loadgen.Run(ctx, loadgen.Plan{Name: "query pages+posts", VUs: o.vus, Duration: o.duration, Request: mix})
	fmt.Println(real)

	body := []byte(`{"id":1,"title":"Post 1","score":4.21,"user_count":1234,"my_score":null}`)
	bare, stop, err := bareGin(func(c *gin.Context) { c.Data(http.StatusOK, "application/json", body) }, "GET", "/v1/posts/:id")
	if err != nil {
		return nil, err
	}
	defer stop()
	bt := loadgen.Target{Query: bare, Posts: queryPosts, Users: 2000}
	loadgen.Run(ctx, loadgen.Plan{Name: "warm-up", VUs: o.vus, Duration: 2 * time.Second, Request: bt.PostRequest()})
	ceiling := loadgen.Run(ctx, loadgen.Plan{Name: "bare gin", VUs: o.vus, Duration: o.duration, Request: bt.PostRequest()})
	fmt.Println(ceiling)
	ratio := real.PerSecond / ceiling.PerSecond
	figs := httpFigures("query", "query", real)
	figs = append(figs, httpFigures("query", "bare gin", ceiling)...)
	figs = append(figs,
		target("query", "throughput ratio query/bare", ratio, "", ">= 0.5", ratio >= 0.5),
		target("query", "query p99", real.P99ms, "ms", "<= 20", real.P99ms <= 20),
		target("query", "query errors", float64(real.Errors), "", "0", real.Errors == 0),
	)
	heavy, err := queryHeavy(ctx, e, url, pool, addr, t)
	if err != nil {
		return nil, err
	}
	figs = append(figs, heavy...)
	sorted, err := querySorted(ctx, e, o)
	if err != nil {
		return nil, err
	}
	return append(figs, sorted...), nil
}

// sortedPosts is how many posts the sorted lists rank.
const sortedPosts = 100_000

// querySorted serves 100,000 scored posts and asks for pages at random
// positions: by id (after a random id), then sorted best first and
// trending first (from a random cursor of a walk through each list),
// each as random users. The sorted pages must keep 0.7 of the id order's
// throughput: they are served from a ranking in memory as the id order is
// from the view.
func querySorted(ctx context.Context, e *env, o opts) ([]figure, error) {
	url, pool, err := e.database(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, fmt.Sprintf(`INSERT INTO posts (id, title) SELECT g, 'Post ' || g FROM generate_series(1, %d) g`, sortedPosts)); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	if err := tally.SynthesizeScores(ctx, pool, 1, sortedPosts); err != nil {
		return nil, err
	}
	addr, startup, err := startQuery(ctx, e, url, pool)
	if err != nil {
		return nil, err
	}
	base := "http://" + addr
	t := loadgen.Target{Query: base, Posts: sortedPosts, Users: 2000}
	byID := t.PageRequest()
	loadgen.Run(ctx, loadgen.Plan{Name: "warm-up", VUs: o.vus, Duration: 2 * time.Second, Request: byID})
	idRun := loadgen.Run(ctx, loadgen.Plan{Name: "pages by id, 100,000 posts", VUs: o.vus, Duration: o.duration, Request: byID})
	fmt.Println(idRun)
	figs := httpFigures("query", "pages by id (100,000 posts)", idRun)
	figs = append(figs, figure{Bench: "query", Name: "start-up: ready after start, score topic of 100,000 posts", Value: startup.Seconds(), Unit: "s"})
	for _, order := range []string{"top", "trending"} {
		began := time.Now()
		cursors, err := walkCursors(ctx, base, order)
		if err != nil {
			return nil, err
		}
		fmt.Printf("sort=%s: walked %d pages in %s\n", order, len(cursors), time.Since(began).Round(time.Millisecond))
		req := func(ctx context.Context, c *http.Client, rng *rand.Rand) int {
			return loadgen.Do(ctx, c, http.MethodGet, base+"/v1/posts?limit=10&cursor="+cursors[rng.IntN(len(cursors))], "", "X-User-ID", fmt.Sprintf("device-%d", rng.IntN(2000)))
		}
		run := loadgen.Run(ctx, loadgen.Plan{Name: "pages sort=" + order + ", 100,000 posts", VUs: o.vus, Duration: o.duration, Request: req})
		fmt.Println(run)
		ratio := run.PerSecond / idRun.PerSecond
		figs = append(figs, httpFigures("query", "pages sort="+order+" (100,000 posts)", run)...)
		figs = append(figs,
			target("query", "throughput ratio sort="+order+"/id", ratio, "", ">= 0.7", ratio >= 0.7),
			target("query", "sort="+order+" errors", float64(run.Errors), "", "0", run.Errors == 0))
	}
	return figs, nil
}

// walkCursors walks a sorted list to its end, ten posts a page, and
// returns every page's cursor.
func walkCursors(ctx context.Context, base, order string) ([]string, error) {
	var out []string
	path := base + "/v1/posts?limit=10&sort=" + order
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		var page struct {
			Next *string `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("walk sort=%s: %d %v", order, resp.StatusCode, err)
		}
		if page.Next == nil {
			return out, nil
		}
		out = append(out, neturl.QueryEscape(*page.Next))
		path = base + "/v1/posts?limit=10&cursor=" + out[len(out)-1]
	}
}

// queryHeavy: GET /v1/posts/{id} with my_score at 200/s, alone, then while
// wrk -c128 asks for the heavy page of a busy post: the page of the issue
// (/ui/posts/1?history=168h, one URL) and the cheapest route (/healthz, the
// floor: what any route at full speed costs my_score on two cores), then,
// against an instance without
// the per-address allowance, a different history on every request
// (simulation/wrk/heavy_explain.lua), which no cache answers. The light
// route's p99 must stay within 3x of its p99 alone; the heavy route gets
// 429s or cached answers instead of the shared pool.
func queryHeavy(ctx context.Context, e *env, url string, pool *pgxpool.Pool, addr string, t loadgen.Target) ([]figure, error) {
	if _, err := exec.LookPath("wrk"); err != nil {
		fmt.Println("wrk is not installed (make bench-query installs it): no heavy-route step")
		return nil, nil
	}
	light := func(name, base string) loadgen.Result {
		lt := t
		lt.Query = "http://" + base
		r := loadgen.RunRate(ctx, loadgen.RatePlan{Name: name, Rate: 200, Duration: 15 * time.Second, MaxVUs: 100, Request: lt.PostRequest()})
		fmt.Println(r)
		return r
	}
	alone := light("my_score alone", addr)
	var figs []figure
	figs = append(figs, plain("query", "GET /v1/posts/{id} with my_score, 200/s alone: p99", alone.P99ms, "ms"))
	open, _, err := startQuery(ctx, e, url, pool, "QUERY_HEAVY_RATE_IP=0")
	if err != nil {
		return nil, err
	}
	// The floor: the same wrk on the cheapest answer the service has. Any
	// route a closed loop of 128 connections drives at full speed takes
	// the two cores from my_score as much as this.
	for _, run := range []struct{ label, base, path, script string }{
		{"wrk -c128 on /healthz (the floor)", addr, "/healthz", ""},
		{"wrk -c128 on /ui/posts/1?history=168h", addr, "/ui/posts/1?history=168h", ""},
		{"wrk -c128 on /ui/posts/1, a new history each (no allowance)", open, "", filepath.Join("simulation", "wrk", "heavy_explain.lua")},
	} {
		args := []string{"-t1", "-c128", "-d20s", "--latency"}
		if run.script != "" {
			args = append(args, "-s", run.script)
		}
		args = append(args, "http://"+run.base+run.path)
		wctx, cancel := context.WithCancel(ctx)
		var out bytes.Buffer
		cmd := exec.CommandContext(wctx, "wrk", args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			cancel()
			return nil, err
		}
		time.Sleep(2 * time.Second) // wrk's connections open
		loaded := light("my_score under "+run.label, run.base)
		err := cmd.Wait()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("wrk: %v: %s", err, out.String())
		}
		w, err := parseWrk(out.String())
		if err != nil {
			return nil, fmt.Errorf("%v in wrk's output:\n%s", err, out.String())
		}
		w.Name = run.label
		fmt.Println(w)
		ratio := loaded.P99ms / alone.P99ms
		figs = append(figs,
			plain("query", run.label+": heavy 2xx answers/s", w.PerSecond, "req/s"),
			plain("query", run.label+": heavy answers not 2xx (429)", float64(w.Errors), ""),
			plain("query", run.label+": my_score p99", loaded.P99ms, "ms"),
			target("query", run.label+": my_score p99 / alone", ratio, "", "<= 3", ratio <= 3),
			target("query", run.label+": my_score errors", float64(loaded.Errors), "", "0", loaded.Errors == 0),
		)
	}
	return figs, nil
}
