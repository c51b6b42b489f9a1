package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratestream/ratestream/pkg/tally"
)

// myScoreLoader answers "what did this user give these posts" for many
// concurrent requests with one indexed query: requests arriving within a
// short window are merged, which turns thousands of tiny queries a second
// into a few hundred larger ones.
type myScoreLoader struct {
	pool    *pgxpool.Pool
	wait    time.Duration // how long the first request of a batch waits for company
	maxKeys int           // (user, post) pairs per query
	in      chan *lookup
	slots   chan struct{} // queries in flight
}

type lookup struct {
	user  string
	ids   []int64
	reply chan lookupResult
}

type lookupResult struct {
	scores map[int64]int
	err    error
}

func newMyScoreLoader(pool *pgxpool.Pool, wait time.Duration, maxKeys, parallel int) *myScoreLoader {
	return &myScoreLoader{pool: pool, wait: wait, maxKeys: maxKeys, in: make(chan *lookup, 4096), slots: make(chan struct{}, parallel)}
}

// get returns the user's scores of the given posts.
func (l *myScoreLoader) get(ctx context.Context, user string, ids []int64) (map[int64]int, error) {
	q := &lookup{user: user, ids: ids, reply: make(chan lookupResult, 1)}
	select {
	case l.in <- q:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-q.reply:
		return r.scores, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run batches lookups until ctx ends.
func (l *myScoreLoader) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var batch []*lookup
		select {
		case <-ctx.Done():
			return
		case q := <-l.in:
			batch = append(batch, q)
		}
		keys := len(batch[0].ids)
		timer := time.NewTimer(l.wait)
	fill:
		for keys < l.maxKeys {
			select {
			case q := <-l.in:
				batch = append(batch, q)
				keys += len(q.ids)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		l.slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-l.slots }()
			l.answer(ctx, batch, keys)
		})
	}
}

func (l *myScoreLoader) answer(ctx context.Context, batch []*lookup, keys int) {
	users := make([]string, 0, keys)
	posts := make([]int64, 0, keys)
	for _, q := range batch {
		for _, id := range q.ids {
			users, posts = append(users, q.user), append(posts, id)
		}
	}
	byUser := map[string]map[int64]int{}
	votes, err := tally.VotesOf(ctx, l.pool, users, posts)
	for _, v := range votes {
		if byUser[v.UserID] == nil {
			byUser[v.UserID] = map[int64]int{}
		}
		byUser[v.UserID][v.PostID] = v.Score
	}
	if err != nil {
		err = fmt.Errorf("read callers' ratings: %w", err)
	}
	for _, q := range batch {
		q.reply <- lookupResult{scores: byUser[q.user], err: err}
	}
}
