package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// scoreAll writes a score row for each post, with a distribution that
// adds up to its raters.
func scoreAll(t *testing.T, h *harness, rng *rand.Rand, ids []int64) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Minute)
	var rows []tally.Score
	for _, id := range ids {
		var dist [6]int64
		var sum, n int64
		for s := range dist {
			dist[s] = rng.Int64N(20)
			sum, n = sum+int64(s)*dist[s], n+dist[s]
		}
		mean := float64(sum) / float64(max(n, 1))
		rows = append(rows, tally.Score{PostID: id, Score: &mean, UserCount: n, Mean: &mean, Strategy: "mean", Partition: 0,
			AsOf: now, StableAt: now, Dist: dist, Activity: rng.Float64() * 30, ActivityAt: now})
	}
	if err := tally.WriteScores(context.Background(), h.db.Pool, rows); err != nil {
		t.Fatal(err)
	}
}

// Sorted lists through HTTP: every post once on a walk while scores are
// rewritten underneath, the rank and the distribution in each item, the
// replaced app's ordering parameter with links that keep the ranking,
// and clear errors for what does not fit.
func TestSortedListsThroughHTTP(t *testing.T) {
	h := start(t, func(c *Config) { c.Rank.Every = 50 * time.Millisecond })
	ctx := context.Background()
	const n = 300
	if _, err := h.db.Pool.Exec(ctx, `INSERT INTO posts (title) SELECT 'p' || g FROM generate_series(1, $1) g`, n); err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	scoreAll(t, h, rng, ids)
	// The scores reach the view partition by partition, in no order
	// between partitions, and a ranking made before a post's score ranks
	// it with none: wait for rankings in which every post has its rank.
	testenv.Eventually(t, 10*time.Second, func() error {
		for _, sort := range []string{"top", "trending"} {
			ranked := 0
			for path := "/v1/posts?limit=100&sort=" + sort; path != ""; {
				_, _, page := h.do(t, "GET", path, "")
				for _, it := range page["items"].([]any) {
					if _, ok := it.(map[string]any)["rank"].(float64); ok {
						ranked++
					}
				}
				path = ""
				if c, ok := page["next_cursor"].(string); ok {
					path = "/v1/posts?limit=100&cursor=" + url.QueryEscape(c)
				}
			}
			if ranked != n {
				return fmt.Errorf("sort=%s: %d of %d posts ranked", sort, ranked, n)
			}
		}
		return nil
	})

	// Scores rewritten all through the walks.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		wrng := rand.New(rand.NewPCG(5, 6))
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			scoreAll(t, h, wrng, ids)
		}
	})
	for _, sort := range []string{"top", "trending"} {
		seen := map[float64]int{}
		path := "/v1/posts?limit=9&sort=" + sort
		last := 1e9
		for path != "" {
			st, _, page := h.do(t, "GET", path, "")
			if st != 200 || page["sort"] != sort {
				t.Fatalf("%s: %d %v", path, st, page)
			}
			for _, it := range page["items"].([]any) {
				item := it.(map[string]any)
				seen[item["id"].(float64)]++
				rank, ok := item["rank"].(float64)
				if !ok {
					t.Fatalf("item without a rank: %v", item)
				}
				if rank > last {
					t.Fatalf("%s: rank %v after %v: not in order", sort, rank, last)
				}
				last = rank
				var total float64
				for _, c := range item["distribution"].([]any) {
					total += c.(float64)
				}
				if total != item["user_count"].(float64) {
					t.Fatalf("distribution %v does not add up to user_count %v", item["distribution"], item["user_count"])
				}
			}
			path = ""
			if c, ok := page["next_cursor"].(string); ok {
				path = "/v1/posts?limit=9&cursor=" + url.QueryEscape(c)
			}
			time.Sleep(15 * time.Millisecond)
		}
		if len(seen) != n {
			t.Fatalf("sort=%s: the walk showed %d of %d posts", sort, len(seen), n)
		}
		for id, k := range seen {
			if k != 1 {
				t.Fatalf("sort=%s: post %v shown %d times", sort, id, k)
			}
		}
	}

	// The replaced app's route: ordering=-rate_average, its links keep
	// the ordering and the ranking.
	seen := map[float64]int{}
	next := "/api/post?limit=50&ordering=-rate_average"
	for next != "" {
		st, _, page := h.do(t, "GET", next, "")
		if st != 200 {
			t.Fatalf("%s: %d %v", next, st, page)
		}
		for _, it := range page["results"].([]any) {
			item := it.(map[string]any)
			seen[item["id"].(float64)]++
			if _, ok := item["rank"]; !ok {
				t.Fatalf("seed item without a rank: %v", item)
			}
		}
		next = ""
		if s, ok := page["next"].(string); ok {
			u, err := url.Parse(s)
			if err != nil || u.Query().Get("ordering") != "-rate_average" || u.Query().Get("ranking") == "" {
				t.Fatalf("next link %q", s)
			}
			next = s
		}
		time.Sleep(30 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("ordering=-rate_average: %d of %d posts", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("ordering=-rate_average: post %v shown %d times", id, k)
		}
	}

	for path, field := range map[string]string{
		"/v1/posts?sort=best":        "sort",
		"/v1/posts?sort=top&after=3": "after",
		"/v1/posts?cursor=bm9wZQ":    "cursor",
		"/v1/posts?sort=trending&cursor=" + url.QueryEscape((&cursor{order: "top", next: 1, lastID: 1}).String()): "cursor",
	} {
		if st, _, p := h.do(t, "GET", path, ""); st != 400 || p["field"] != field {
			t.Errorf("%s: %d %v, want 400 on %s", path, st, p, field)
		}
	}
	// In the id order the distribution is there too, and no rank.
	_, _, page := h.do(t, "GET", "/v1/posts?limit=1", "")
	item := page["items"].([]any)[0].(map[string]any)
	if _, has := item["rank"]; has || len(item["distribution"].([]any)) != 6 {
		t.Errorf("id order item: %v", item)
	}
}
