package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/database"
)

// Post is a post as the query service serves it (my_score is added per
// request).
type Post struct {
	ID        int64
	Title     string
	Score     *float64
	UserCount int64
}

// view is the in-memory table of posts and scores that pages are served
// from. It follows the 'posts' and 'post_scores' notification channels,
// so it is as fresh as the scorer's last write, and resyncs periodically.
type view struct {
	pool  *pgxpool.Pool
	log   *zap.Logger
	every time.Duration

	mu     sync.RWMutex
	byID   map[int64]*Post
	ids    []int64 // sorted ascending
	loaded atomic.Bool

	pending chan []int64
}

func newView(pool *pgxpool.Pool, log *zap.Logger, every time.Duration) *view {
	return &view{pool: pool, log: log, every: every, byID: map[int64]*Post{}, pending: make(chan []int64, 1024)}
}

// Ready reports whether the first load finished.
func (v *view) Ready(context.Context) error {
	if !v.loaded.Load() {
		return fmt.Errorf("post view not loaded yet")
	}
	return nil
}

// run follows notifications and refreshes the posts they name.
func (v *view) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { v.refresher(ctx) })
	f := &database.Follower{
		Pool: v.pool, Log: v.log, Channels: []string{contract.ChannelPosts, contract.ChannelPostScores}, Every: v.every,
		Resync: v.reload,
		Notify: func(_, payload string) {
			var ids []int64
			for _, s := range strings.Split(payload, ",") {
				if id, err := strconv.ParseInt(s, 10, 64); err == nil {
					ids = append(ids, id)
				}
			}
			select {
			case v.pending <- ids:
			case <-ctx.Done():
			}
		},
	}
	f.Run(ctx)
}

// refresher reads the rows named by notifications, coalescing bursts into
// one query.
func (v *view) refresher(ctx context.Context) {
	for {
		var ids []int64
		select {
		case <-ctx.Done():
			return
		case ids = <-v.pending:
		}
	more:
		for len(ids) < 5000 {
			select {
			case more := <-v.pending:
				ids = append(ids, more...)
			default:
				break more
			}
		}
		if err := v.refresh(ctx, ids); err != nil && ctx.Err() == nil {
			v.log.Warn("refreshing posts failed", zap.Error(err))
		}
	}
}

const selectPosts = `
	SELECT p.id, p.title, s.score, COALESCE(s.user_count, 0)
	FROM posts p LEFT JOIN post_scores s ON s.post_id = p.id`

func (v *view) reload(ctx context.Context) error {
	rows, err := v.pool.Query(ctx, selectPosts+` ORDER BY p.id`)
	if err != nil {
		return fmt.Errorf("load posts: %w", err)
	}
	defer rows.Close()
	byID := make(map[int64]*Post, len(v.ids)+1024)
	var ids []int64
	for rows.Next() {
		p := &Post{}
		if err := rows.Scan(&p.ID, &p.Title, &p.Score, &p.UserCount); err != nil {
			return err
		}
		byID[p.ID] = p
		ids = append(ids, p.ID)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load posts: %w", err)
	}
	v.mu.Lock()
	v.byID, v.ids = byID, ids
	v.mu.Unlock()
	v.loaded.Store(true)
	return nil
}

func (v *view) refresh(ctx context.Context, ids []int64) error {
	rows, err := v.pool.Query(ctx, selectPosts+` WHERE p.id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		p := &Post{}
		if err := rows.Scan(&p.ID, &p.Title, &p.Score, &p.UserCount); err != nil {
			return err
		}
		v.put(p)
	}
	return rows.Err()
}

// put inserts or replaces a post. Entries are immutable once published.
func (v *view) put(p *Post) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.byID[p.ID]; !ok {
		i := sort.Search(len(v.ids), func(i int) bool { return v.ids[i] >= p.ID })
		v.ids = append(v.ids, 0)
		copy(v.ids[i+1:], v.ids[i:])
		v.ids[i] = p.ID
	}
	v.byID[p.ID] = p
}

// get returns a post by id.
func (v *view) get(id int64) (*Post, bool) {
	v.mu.RLock()
	p, ok := v.byID[id]
	v.mu.RUnlock()
	return p, ok
}

// after returns up to limit posts with id > after, and whether more follow.
func (v *view) after(after int64, limit int) ([]*Post, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	i := sort.Search(len(v.ids), func(i int) bool { return v.ids[i] > after })
	return v.slice(i, limit)
}

// page returns up to limit posts from position offset, and the total.
func (v *view) page(offset, limit int) ([]*Post, int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out, _ := v.slice(min(offset, len(v.ids)), limit)
	return out, len(v.ids)
}

func (v *view) slice(i, limit int) ([]*Post, bool) {
	j := min(i+limit, len(v.ids))
	out := make([]*Post, 0, j-i)
	for _, id := range v.ids[i:j] {
		out = append(out, v.byID[id])
	}
	return out, j < len(v.ids)
}
