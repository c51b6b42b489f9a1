// Package limit implements per-key rate limits (per user, per client IP)
// with GCRA: one int64 per active key, so a million distinct users cost
// tens of megabytes, and idle keys are swept.
package limit

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

const shards = 64

// Limiter allows Rate events per second per key with bursts of Burst.
// A zero Rate disables it.
type Limiter struct {
	emission  time.Duration // time between events at the steady rate
	tolerance time.Duration // how far ahead of now a key may run
	seed      maphash.Seed
	shards    [shards]shard
	now       func() time.Time
}

type shard struct {
	mu  sync.Mutex
	tat map[string]int64 // theoretical arrival time, unix ns
}

// New returns a limiter; rate <= 0 means unlimited.
func New(rate float64, burst int) *Limiter {
	l := &Limiter{seed: maphash.MakeSeed(), now: time.Now}
	if rate > 0 {
		if burst < 1 {
			burst = 1
		}
		l.emission = time.Duration(float64(time.Second) / rate)
		l.tolerance = l.emission * time.Duration(burst-1)
	}
	for i := range l.shards {
		l.shards[i].tat = map[string]int64{}
	}
	return l
}

// SweepInterval is how often Sweep should run: as often as an idle key's
// allowance fills up again (at least a second, at most a minute). Maps do
// not shrink, so the sweep's spacing bounds the memory: at 10k ratings/s
// from distinct users a minute is 600k keys, two seconds 20k.
func (l *Limiter) SweepInterval() time.Duration {
	return min(max(l.tolerance+l.emission, time.Second), time.Minute)
}

// Allow takes one event for key. When refused it says how long to wait.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l.emission == 0 {
		return true, 0
	}
	now := l.now().UnixNano()
	s := &l.shards[maphash.String(l.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	tat := max(s.tat[key], now)
	if wait := tat - now - int64(l.tolerance); wait > 0 {
		return false, time.Duration(wait)
	}
	s.tat[key] = tat + int64(l.emission)
	return true, 0
}

// Sweep forgets keys whose allowance is full again, every interval until
// ctx ends.
func (l *Limiter) Sweep(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := l.now().UnixNano()
		for i := range l.shards {
			s := &l.shards[i]
			s.mu.Lock()
			for k, tat := range s.tat {
				if tat <= now {
					delete(s.tat, k)
				}
			}
			s.mu.Unlock()
		}
	}
}
