package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/simulation/loadgen"
)

const queryPosts = 10_000

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
	addr := fmt.Sprintf("127.0.0.1:%d", freePort())
	if _, err := e.spawn("query", "QUERY_ADDR="+addr, "DATABASE_URL="+url); err != nil {
		return nil, err
	}
	if err := waitReady("http://"+addr, 30*time.Second); err != nil {
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
	return figs, nil
}
