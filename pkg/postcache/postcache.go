// Package postcache keeps the set of existing post ids in memory, so that
// ingest can refuse ratings of unknown posts without a database round trip.
// It loads every id at start, learns of new posts from the 'posts'
// notification channel within milliseconds, and reloads periodically as a
// safety net for notifications lost while disconnected.
package postcache

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/database"
)

// Cache is a concurrent set of post ids.
type Cache struct {
	pool    *pgxpool.Pool
	log     *zap.Logger
	refresh time.Duration

	mu     sync.RWMutex
	ids    map[int64]struct{}
	loaded atomic.Bool
}

// New returns an empty cache; Run fills it.
func New(pool *pgxpool.Pool, log *zap.Logger, refresh time.Duration) *Cache {
	return &Cache{pool: pool, log: log, refresh: refresh, ids: map[int64]struct{}{}}
}

// Has reports whether the post exists.
func (c *Cache) Has(id int64) bool {
	c.mu.RLock()
	_, ok := c.ids[id]
	c.mu.RUnlock()
	return ok
}

// Len is the number of known posts.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.ids)
}

// Ready reports whether the first full load finished.
func (c *Cache) Ready(context.Context) error {
	if !c.loaded.Load() {
		return fmt.Errorf("post cache not loaded yet")
	}
	return nil
}

// Run keeps the cache current until ctx ends.
func (c *Cache) Run(ctx context.Context) {
	f := &database.Follower{
		Pool: c.pool, Log: c.log, Channels: []string{contract.ChannelPosts}, Every: c.refresh,
		Resync: c.reload,
		Notify: func(_, payload string) {
			if id, err := strconv.ParseInt(payload, 10, 64); err == nil {
				c.mu.Lock()
				c.ids[id] = struct{}{}
				c.mu.Unlock()
			}
		},
	}
	f.Run(ctx)
}

func (c *Cache) reload(ctx context.Context) error {
	rows, err := c.pool.Query(ctx, "SELECT id FROM posts")
	if err != nil {
		return fmt.Errorf("load post ids: %w", err)
	}
	defer rows.Close()
	ids := make(map[int64]struct{}, c.Len()+1024)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids[id] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load post ids: %w", err)
	}
	c.mu.Lock()
	// Keep ids that arrived by notification during the load.
	for id := range c.ids {
		ids[id] = struct{}{}
	}
	c.ids = ids
	c.mu.Unlock()
	c.loaded.Store(true)
	return nil
}
