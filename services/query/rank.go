package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ratestream/ratestream/pkg/scoring"
)

// Rank is how the ordered lists rank posts.
type Rank struct {
	// PriorWeight is how many ratings of the site's mean a post's score
	// is blended with in the top order: a post with few raters sits near
	// the site's mean, one with many near its own score.
	PriorWeight float64 `env:"QUERY_TOP_PRIOR_WEIGHT" default:"20" help:"ratings' worth of the site's mean blended into each post's score for sort=top (a Bayesian average): one 5 does not outrank a thousand 4s"`
	// Every is how often an order is ranked again (when posts changed);
	// Keep how long a ranking stays available to the walks that use it
	// after their last page.
	Every time.Duration `env:"QUERY_RANK_INTERVAL" default:"5s" help:"how often sort=top and sort=trending are ranked again while posts change"`
	Keep  time.Duration `env:"QUERY_RANK_KEEP" default:"2m" help:"how long a ranking stays available to a walk after its last page (a walk paging slower starts over from the current ranking where it stood)"`
}

// The orders besides the id order.
const (
	orderTop      = "top"
	orderTrending = "trending"
)

// ranking is one order of every post at one moment, immutable: a walk
// through its pages by position never shows a post twice nor skips one,
// however scores move meanwhile.
type ranking struct {
	id    uint64
	order string
	built time.Time
	seen  uint64 // the view's version it was built from
	ids   []int64
	ranks []float64 // NaN: unranked (no score yet), after every ranked post
	used  time.Time // when a walk last asked for it (under rankings.mu)
}

// before reports whether (ra, a) comes before (rb, b) in a ranking:
// higher rank first, unranked last, then by id.
func before(ra float64, a int64, rb float64, b int64) bool {
	switch na, nb := math.IsNaN(ra), math.IsNaN(rb); {
	case na != nb:
		return nb
	case !na && ra != rb:
		return ra > rb
	}
	return a < b
}

// find is the position of the first post that comes after (rank, id)
// in r.
func (r *ranking) find(rank float64, id int64) int {
	return sort.Search(len(r.ids), func(m int) bool { return before(rank, id, r.ranks[m], r.ids[m]) })
}

// slice is the posts at positions [start, end) that the view still
// holds, with their ranks.
func (rs *rankings) slice(r *ranking, start, end int) ([]*Post, []float64) {
	posts := rs.view.GetMany(r.ids[start:end])
	ranks := make([]float64, 0, len(posts))
	j := start
	for _, p := range posts {
		for r.ids[j] != p.ID {
			j++
		}
		ranks = append(ranks, r.ranks[j])
		j++
	}
	return posts, ranks
}

// rankings keeps the current ranking of each order, rebuilt at most
// every Rank.Every when the view changed, and the rankings walks still
// use.
type rankings struct {
	cfg Rank
	// params are the scorer's scoring parameters (trending carries a
	// post's activity forward with them).
	params func() scoring.Params
	view   *view
	now    func() time.Time
	// instance names this process's rankings in cursors: another replica,
	// or this one restarted, does not hold them.
	instance uint32

	mu     sync.Mutex
	next   uint64
	byID   map[uint64]*ranking
	latest map[string]*ranking
	// building lets one request at a time rank an order again, outside
	// mu: the others are served the latest ranking meanwhile.
	building map[string]*sync.Mutex
}

func newRankings(cfg Rank, params func() scoring.Params, v *view) *rankings {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &rankings{cfg: cfg, params: params, view: v, now: time.Now, instance: binary.BigEndian.Uint32(b[:]),
		byID: map[uint64]*ranking{}, latest: map[string]*ranking{},
		building: map[string]*sync.Mutex{orderTop: {}, orderTrending: {}}}
}

// current is the order's latest ranking, ranked again first when it is
// older than Every and the posts changed since. Ranking happens outside
// the lock that serves walks: while one request ranks an order again,
// the others get its latest ranking (or, before the first, wait for it).
func (rs *rankings) current(order string) *ranking {
	now := rs.now()
	rs.mu.Lock()
	r := rs.latest[order]
	if r != nil && !rs.stale(r, now) {
		r.used = now
		rs.mu.Unlock()
		return r
	}
	rs.mu.Unlock()
	b := rs.building[order]
	if r == nil {
		b.Lock()
	} else if !b.TryLock() {
		rs.mu.Lock()
		r.used = now
		rs.mu.Unlock()
		return r
	}
	defer b.Unlock()
	rs.mu.Lock()
	if l := rs.latest[order]; l != nil && !rs.stale(l, now) { // ranked while this one waited
		l.used = now
		rs.mu.Unlock()
		return l
	}
	rs.next++
	id := rs.next
	rs.mu.Unlock()
	r = rs.build(order, id, now)
	r.used = now
	rs.mu.Lock()
	rs.latest[order] = r
	rs.byID[r.id] = r
	rs.forget(now)
	rs.mu.Unlock()
	return r
}

// stale reports whether r is older than Every and the posts changed
// since it was built.
func (rs *rankings) stale(r *ranking, now time.Time) bool {
	return now.Sub(r.built) >= rs.cfg.Every && rs.view.Version() != r.seen
}

// get is the ranking a cursor names, if this process still holds it.
func (rs *rankings) get(instance uint32, id uint64) (*ranking, bool) {
	if instance != rs.instance {
		return nil, false
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.byID[id]
	if ok {
		r.used = rs.now()
	}
	return r, ok
}

// forget drops the rankings no walk used for Keep, except the latest.
func (rs *rankings) forget(now time.Time) {
	for id, r := range rs.byID {
		if rs.latest[r.order] != r && now.Sub(r.used) > rs.cfg.Keep {
			delete(rs.byID, id)
		}
	}
}

// build ranks every post of the view.
func (rs *rankings) build(order string, id uint64, now time.Time) *ranking {
	r := &ranking{id: id, order: order, built: now, seen: rs.view.Version()}
	type entry struct {
		id   int64
		rank float64
	}
	var posts []*Post
	var sum, count float64 // the site's mean, over every counted rating
	rs.view.Each(func(_ int64, p *Post) {
		posts = append(posts, p)
		if p.Score != nil && p.UserCount > 0 {
			sum += *p.Score * float64(p.UserCount)
			count += float64(p.UserCount)
		}
	})
	mean := 0.0
	if count > 0 {
		mean = sum / count
	}
	params := rs.params()
	entries := make([]entry, len(posts))
	for i, p := range posts {
		entries[i] = entry{id: p.ID, rank: rs.rank(order, p, mean, params, now)}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		switch {
		case before(a.rank, a.id, b.rank, b.id):
			return -1
		case before(b.rank, b.id, a.rank, a.id):
			return 1
		}
		return 0
	})
	r.ids, r.ranks = make([]int64, len(entries)), make([]float64, len(entries))
	for i, e := range entries {
		r.ids[i], r.ranks[i] = e.id, e.rank
	}
	return r
}

// rank is a post's value in an order; NaN when it has none.
func (rs *rankings) rank(order string, p *Post, mean float64, params scoring.Params, now time.Time) float64 {
	switch order {
	case orderTop:
		if p.Score == nil || p.UserCount == 0 {
			return math.NaN()
		}
		n, w := float64(p.UserCount), rs.cfg.PriorWeight
		return (w*mean + n**p.Score) / (w + n)
	case orderTrending:
		if p.ActivityAt == nil {
			return 0
		}
		return params.ActivityAt(p.Activity, *p.ActivityAt, now)
	}
	return math.NaN()
}

// cursor is where a walk through a ranking stands: the ranking (this
// process's instance and its id) and the position of the next post, and
// the last post shown with its rank, from which a walk whose ranking is
// gone goes on in the current one.
type cursor struct {
	order    string
	instance uint32
	ranking  uint64
	next     int
	lastRank float64
	lastID   int64
}

func (c cursor) String() string {
	s := strings.Join([]string{"r1", c.order, strconv.FormatUint(uint64(c.instance), 16), strconv.FormatUint(c.ranking, 16),
		strconv.Itoa(c.next), strconv.FormatUint(math.Float64bits(c.lastRank), 16), strconv.FormatInt(c.lastID, 10)}, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func parseCursor(s string) (cursor, error) {
	bad := fmt.Errorf("not a cursor this service gave")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) > 200 {
		return cursor{}, bad
	}
	f := strings.Split(string(raw), ".")
	if len(f) != 7 || f[0] != "r1" || (f[1] != orderTop && f[1] != orderTrending) {
		return cursor{}, bad
	}
	inst, e1 := strconv.ParseUint(f[2], 16, 32)
	id, e2 := strconv.ParseUint(f[3], 16, 64)
	next, e3 := strconv.Atoi(f[4])
	bits, e4 := strconv.ParseUint(f[5], 16, 64)
	last, e5 := strconv.ParseInt(f[6], 10, 64)
	if e1 != nil || e2 != nil || e3 != nil || e4 != nil || e5 != nil || next < 0 || last < 1 {
		return cursor{}, bad
	}
	return cursor{order: f[1], instance: uint32(inst), ranking: id, next: next, lastRank: math.Float64frombits(bits), lastID: last}, nil
}

// page is up to limit posts of order from where c stands (nil: the
// start), with each post's rank, and the cursor of the next page (nil at
// the end).
func (rs *rankings) page(order string, c *cursor, limit int) ([]*Post, []float64, *cursor) {
	var r *ranking
	start := 0
	if c != nil {
		var ok bool
		if r, ok = rs.get(c.instance, c.ranking); ok && r.order == order && c.next <= len(r.ids) {
			start = c.next
		} else {
			r = rs.current(order)
			start = r.find(c.lastRank, c.lastID)
		}
	} else {
		r = rs.current(order)
	}
	end := min(start+limit, len(r.ids))
	posts, ranks := rs.slice(r, start, end)
	if end >= len(r.ids) || len(posts) == 0 {
		return posts, ranks, nil
	}
	return posts, ranks, &cursor{order: order, instance: rs.instance, ranking: r.id, next: end,
		lastRank: r.ranks[end-1], lastID: r.ids[end-1]}
}

// offsetPage is the replaced app's limit/offset page of a ranking: the
// one pinned (a link this process gave) if it still holds it, else the
// current one. It returns the ranking's total and its pin.
func (rs *rankings) offsetPage(order, pin string, offset, limit int) ([]*Post, []float64, int, string) {
	var r *ranking
	if inst, id, ok := parsePin(pin); ok {
		r, _ = rs.get(inst, id)
	}
	if r == nil || r.order != order {
		r = rs.current(order)
	}
	start := min(offset, len(r.ids))
	end := min(start+limit, len(r.ids))
	posts, ranks := rs.slice(r, start, end)
	return posts, ranks, len(r.ids), strconv.FormatUint(uint64(rs.instance), 16) + "." + strconv.FormatUint(r.id, 16)
}

func parsePin(s string) (uint32, uint64, bool) {
	a, b, ok := strings.Cut(s, ".")
	inst, e1 := strconv.ParseUint(a, 16, 32)
	id, e2 := strconv.ParseUint(b, 16, 64)
	return uint32(inst), id, ok && e1 == nil && e2 == nil
}
