package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/scoring"
)

// rowCache keeps, for each partition, the rating_averages and post_stats
// rows that this instance's last committed batch of the partition read or
// wrote, so that the next batch reads from PostgreSQL only the rows it has
// not seen yet.
//
// Why it cannot go stale: the windower is the only writer of those rows,
// each post's rows are written only by the batches of its partition, and
// they are a function of the partition's log up to the stored offset. So
// while the partition's stored position (read under lock at the start of
// every batch) is the one our last commit stored, the cached rows are the
// stored rows. Any other position (another instance applied batches in
// between, or ours failed, or its commit's outcome is unknown) empties the
// partition's cache before the batch loads anything.
type rowCache struct {
	limit        int // rows across all partitions; a partition that would pass it starts again empty
	hits, misses atomic.Int64

	mu    sync.Mutex
	parts map[int]*partRows
	rows  int // cached rows across partitions
}

// partRows are the cached rows of one partition. mu is held for the whole
// of a batch's transaction.
type partRows struct {
	mu      sync.Mutex
	at      position // what our last commit stored; !at.Exists: nothing cached
	windows map[fold.WindowKey]scoring.Window
	posts   map[int64]fold.Post
	swept   time.Time // eviction cutoff of the last sweep
	gone    bool      // forgotten: keeps nothing more
}

func newRowCache(limit int) *rowCache {
	return &rowCache{limit: limit, parts: map[int]*partRows{}}
}

// register exports the cache's reads.
func (c *rowCache) register(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "windower_cached_rows_total", Help: "Window and post rows a batch took from memory instead of PostgreSQL.",
		}, func() float64 { return float64(c.hits.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "windower_loaded_rows_total", Help: "Window and post rows a batch asked PostgreSQL for (some do not exist yet).",
		}, func() float64 { return float64(c.misses.Load()) }),
	)
}

// count records how many rows a batch found in memory and asked for.
func (c *rowCache) count(hits, misses int) {
	if c != nil {
		c.hits.Add(int64(hits))
		c.misses.Add(int64(misses))
	}
}

// partition returns the partition's rows, locked; release unlocks them.
// A nil cache hands out an unshared empty set, so that every batch loads
// everything.
func (c *rowCache) partition(p int) *partRows {
	if c == nil {
		return &partRows{}
	}
	c.mu.Lock()
	r, ok := c.parts[p]
	if !ok {
		r = &partRows{}
		c.parts[p] = r
	}
	c.mu.Unlock()
	r.mu.Lock()
	return r
}

func (c *rowCache) release(r *partRows) {
	if c != nil {
		r.mu.Unlock()
	}
}

// forget drops a partition's rows.
func (c *rowCache) forget(p int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	r, ok := c.parts[p]
	delete(c.parts, p)
	c.mu.Unlock()
	if !ok {
		return
	}
	r.mu.Lock()
	c.drop(r)
	r.gone = true // a batch still running on it keeps nothing
	r.mu.Unlock()
}

// holds reports whether the cached rows are the stored rows of a
// partition that stands at cur. Nothing is held while another consumer
// key stores positions in the database (cur.Others): that is another
// writer of the same rows (a replay or a second windower group pointed at
// this database), and the cache cannot know what it wrote.
func (r *partRows) holds(cur position) bool {
	return r.at.Exists && cur.Exists && r.at.Next == cur.Next && r.at.MaxEventTime.Equal(cur.MaxEventTime) &&
		r.at.Foreign == cur.Foreign && cur.Others.IsZero()
}

// drop empties the partition's rows.
func (c *rowCache) drop(r *partRows) {
	if c == nil || !r.at.Exists && len(r.windows)+len(r.posts) == 0 {
		return
	}
	c.mu.Lock()
	c.rows -= len(r.windows) + len(r.posts)
	c.mu.Unlock()
	r.at, r.windows, r.posts, r.swept = position{}, nil, nil, time.Time{}
}

// keep records the rows of st, which a batch committed, as the stored
// rows of the partition at pos. Once the watermark reaches a new window
// it forgets the windows it closed and the posts not rated in a window
// still open: what late events and re-ratings touch there is read again
// from PostgreSQL.
func (c *rowCache) keep(r *partRows, st *fold.State, partition int, pos position, p scoring.Params, grace time.Duration) {
	if c == nil || st == nil || r.gone || !pos.Others.IsZero() {
		return
	}
	if r.windows == nil {
		r.windows = map[fold.WindowKey]scoring.Window{}
		r.posts = map[int64]fold.Post{}
	}
	before := len(r.windows) + len(r.posts)
	for k, w := range st.Windows {
		if x := st.Posts[k.PostID]; x != nil && x.Partition == partition {
			r.windows[k] = w
		}
	}
	for id, x := range st.Posts {
		if x.Partition == partition { // another partition's post is its to keep
			r.posts[id] = *x
		}
	}
	r.at = pos
	if !pos.MaxEventTime.IsZero() {
		if cutoff := p.WindowStart(pos.MaxEventTime.Add(-grace)); cutoff.After(r.swept) {
			r.swept = cutoff
			for k := range r.windows {
				if k.Start.Before(cutoff) {
					delete(r.windows, k)
				}
			}
			for id, x := range r.posts {
				if x.Tracker.Current.Before(cutoff) {
					delete(r.posts, id)
				}
			}
		}
	}
	c.mu.Lock()
	c.rows += len(r.windows) + len(r.posts) - before
	over := c.rows > c.limit
	c.mu.Unlock()
	if over {
		c.drop(r)
	}
}
