package main

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/scoring"
)

func testRankings(now *time.Time) (*rankings, *view) {
	v := &view{}
	params := scoring.DefaultParams(time.Minute)
	rs := newRankings(Rank{PriorWeight: 20, Every: 5 * time.Second, Keep: 2 * time.Minute}, func() scoring.Params { return params }, v)
	rs.now = func() time.Time { return *now }
	return rs, v
}

func scored(id int64, score float64, raters int64) *Post {
	return &Post{ID: id, Title: "p", Score: &score, UserCount: raters}
}

// One lucky 5 does not outrank a thousand 4s; a post without a score is
// listed after every ranked one, with a null rank.
func TestTopIsConfidenceAware(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	rs, v := testRankings(&now)
	v.Put(1, scored(1, 5, 1))
	v.Put(2, scored(2, 4, 1000))
	v.Put(3, &Post{ID: 3, Title: "unrated"})
	v.Put(4, scored(4, 3, 500))
	posts, ranks, next := rs.page(orderTop, nil, 10)
	if next != nil || len(posts) != 4 {
		t.Fatalf("%d posts, next %v", len(posts), next)
	}
	if ids := [4]int64{posts[0].ID, posts[1].ID, posts[2].ID, posts[3].ID}; ids != [4]int64{2, 1, 4, 3} {
		t.Fatalf("order %v, want the thousand 4s first and the unrated post last", ids)
	}
	if !math.IsNaN(ranks[3]) || ranks[0] <= ranks[1] {
		t.Fatalf("ranks %v", ranks)
	}
	if ranks[1] >= 4 {
		t.Fatalf("one 5 ranks %.3f: pulled to the site's mean it must stay under 4", ranks[1])
	}
}

// Recent honest activity wins over activity that has decayed since.
func TestTrendingDecays(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	rs, v := testRankings(&now)
	old, recent := now.Add(-6*time.Hour).Truncate(time.Minute), now.Add(-time.Minute).Truncate(time.Minute)
	v.Put(1, &Post{ID: 1, Title: "was busy", Activity: 40, ActivityAt: &old})
	v.Put(2, &Post{ID: 2, Title: "busy now", Activity: 6, ActivityAt: &recent})
	v.Put(3, &Post{ID: 3, Title: "never rated"})
	posts, ranks, _ := rs.page(orderTrending, nil, 10)
	if posts[0].ID != 2 || posts[1].ID != 1 || posts[2].ID != 3 || ranks[2] != 0 {
		t.Fatalf("order %d %d %d, ranks %v", posts[0].ID, posts[1].ID, posts[2].ID, ranks)
	}
}

// A walk through a sorted list shows every post exactly once while
// scores move, posts are re-ranked and the clock runs between its pages.
func TestASortedWalkIsStableUnderUpdates(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	rs, v := testRankings(&now)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 1000
	for id := int64(1); id <= n; id++ {
		v.Put(id, scored(id, float64(rng.IntN(501))/100, rng.Int64N(50)))
	}
	for _, order := range []string{orderTop, orderTrending} {
		seen := map[int64]int{}
		var cur *cursor
		pages := 0
		for {
			posts, _, next := rs.page(order, cur, 7)
			for _, p := range posts {
				seen[p.ID]++
			}
			// Between pages: scores move (ranks swap), time passes, and
			// the order is ranked again.
			for range 50 {
				id := 1 + rng.Int64N(n)
				at := now.Truncate(time.Minute)
				p := scored(id, float64(rng.IntN(501))/100, rng.Int64N(50))
				p.Activity, p.ActivityAt = rng.Float64()*20, &at
				v.Put(id, p)
			}
			now = now.Add(6 * time.Second)
			rs.page(order, nil, 3) // another client starts a walk: the order is ranked again
			pages++
			if next == nil {
				break
			}
			cur = next
			// Through its string form, as a client sends it back.
			c, err := parseCursor(next.String())
			if err != nil {
				t.Fatal(err)
			}
			cur = &c
		}
		if len(seen) != n {
			t.Fatalf("%s: the walk showed %d of %d posts", order, len(seen), n)
		}
		for id, k := range seen {
			if k != 1 {
				t.Fatalf("%s: post %d shown %d times", order, id, k)
			}
		}
		if len(rs.byID) > 1+int(rs.cfg.Keep/(6*time.Second))+2 {
			t.Fatalf("%d rankings kept", len(rs.byID))
		}
		t.Logf("%s: %d pages, %d rankings held", order, pages, len(rs.byID))
	}
}

// A cursor whose ranking is gone (another replica, a restart, a walk
// slower than Keep) goes on in the current ranking from the last post
// shown; a cursor that is not one is refused.
func TestACursorOutlivesItsRanking(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	rs, v := testRankings(&now)
	for id := int64(1); id <= 30; id++ {
		v.Put(id, scored(id, float64(id%6), 10))
	}
	_, _, next := rs.page(orderTop, nil, 10)
	other, _ := testRankings(&now)
	other.view = v
	posts, _, _ := other.page(orderTop, next, 10)
	first, _, _ := rs.page(orderTop, nil, 20)
	if len(posts) != 10 || posts[0].ID != first[10].ID {
		t.Fatalf("continued at post %d, want %d", posts[0].ID, first[10].ID)
	}
	for _, bad := range []string{"", "x", "cjEudG9wLjEuMS4xLjAuMA", next.String() + "A"} {
		if _, err := parseCursor(bad); err == nil {
			t.Errorf("cursor %q accepted", bad)
		}
	}
}
