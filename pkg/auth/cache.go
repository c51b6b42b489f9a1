package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// maxCacheAge bounds how long a verified token is trusted without
// checking it again: a key removed from the JWKS stops working within it.
const maxCacheAge = time.Minute

// cache remembers verified tokens, as clients reuse a token for many
// requests: verifying an RS256 signature costs far more than the rest of
// a rating. Bounded in size; an entry ends at the token's exp or after
// maxCacheAge, whichever comes first.
type cache struct {
	mu   sync.Mutex
	max  int
	byID map[[32]byte]entry
}

type entry struct {
	id    Identity
	until time.Time
}

func newCache(max int) *cache { return &cache{max: max, byID: map[[32]byte]entry{}} }

func (c *cache) get(raw string, now time.Time) (Identity, bool) {
	k := sha256.Sum256([]byte(raw))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[k]
	if !ok {
		return Identity{}, false
	}
	if !now.Before(e.until) {
		delete(c.byID, k)
		return Identity{}, false
	}
	return e.id, true
}

func (c *cache) put(raw string, id Identity, now time.Time) {
	k := sha256.Sum256([]byte(raw))
	end := now.Add(maxCacheAge)
	if id.Expires.Before(end) {
		end = id.Expires
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byID) >= c.max {
		// Full: forget expired entries, and an arbitrary eighth if
		// that is not enough.
		drop := c.max / 8
		for key, e := range c.byID {
			if !now.Before(e.until) {
				delete(c.byID, key)
			} else if drop > 0 {
				delete(c.byID, key)
				drop--
			}
		}
	}
	c.byID[k] = entry{id: id, until: end}
}
