package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/pkg/limit"
)

// Limits keep one client from hurting the others. The routes whose cost
// grows with a post's history (/v1/posts/:id/explain, /ui/posts/:id) run
// on a pool of their own, never on the one my_score and the pages share;
// at most twice as many run at once as it has connections, the rest get
// 429 at once; identical ones within HeavyCache share one answer. Per
// client address, those routes, post creation and lookups of posts the
// view does not hold have an allowance each.
type Limits struct {
	HeavyConns  int           `env:"QUERY_HEAVY_CONNS" default:"2" help:"database connections of /explain and /ui/posts/:id, apart from the pool of the other routes"`
	HeavyCache  time.Duration `env:"QUERY_HEAVY_CACHE" default:"2s" help:"how long an explanation is served again to the same request"`
	HeavyRateIP float64       `env:"QUERY_HEAVY_RATE_IP" default:"5" help:"/explain and /ui/posts/:id per second per client address (0: unlimited)"`
	HeavyBurst  int           `env:"QUERY_HEAVY_BURST_IP" default:"20" help:"burst of QUERY_HEAVY_RATE_IP"`
	CreateRate  float64       `env:"QUERY_CREATE_RATE_IP" default:"10" help:"posts created per second per client address (0: unlimited)"`
	CreateBurst int           `env:"QUERY_CREATE_BURST_IP" default:"50" help:"burst of QUERY_CREATE_RATE_IP"`
	MissRate    float64       `env:"QUERY_MISS_RATE_IP" default:"20" help:"lookups per second per client address of posts the view does not hold (0: unlimited)"`
	MissBurst   int           `env:"QUERY_MISS_BURST_IP" default:"50" help:"burst of QUERY_MISS_RATE_IP"`
}

// guard enforces Limits.
type guard struct {
	heavyPool         *pgxpool.Pool
	slots             chan struct{}
	ttl               time.Duration
	heavyIPs, creates *limit.Limiter
	misses            *limit.Limiter
	flight            singleflight.Group
	mu                sync.Mutex
	answers           map[string]answer
	outcomes          *prometheus.CounterVec
}

// answer is a rendered answer, served as it is, or the error that is the
// answer (an unknown post).
type answer struct {
	body []byte
	err  error
	at   time.Time
}

func newGuard(l Limits, heavyPool *pgxpool.Pool, reg prometheus.Registerer) *guard {
	g := &guard{
		heavyPool: heavyPool, slots: make(chan struct{}, 2*max(l.HeavyConns, 1)), ttl: l.HeavyCache,
		heavyIPs: limit.New(l.HeavyRateIP, l.HeavyBurst), creates: limit.New(l.CreateRate, l.CreateBurst),
		misses: limit.New(l.MissRate, l.MissBurst), answers: map[string]answer{},
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "query_explanations_total",
			Help: "Explanations (/explain, /ui/posts/:id) by outcome: computed, cached (a recent answer), shared (with the same request in flight), limited (the address's allowance), busy (no free slot: 429).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(g.outcomes)
	return g
}

// sweep forgets the limiters' idle keys until ctx ends.
func (g *guard) sweep(ctx context.Context) {
	for _, l := range []*limit.Limiter{g.heavyIPs, g.creates, g.misses} {
		go l.Sweep(ctx, l.SweepInterval())
	}
}

// allow takes one from a client's allowance, or says how long to wait.
func allow(c *gin.Context, l *limit.Limiter, what string) error {
	if ok, wait := l.Allow(c.ClientIP()); !ok {
		return httpserver.TooMany(wait, "too many "+what+" from this address")
	}
	return nil
}

// answer is the rendered answer of a heavy request (an explanation, a
// post's page), key naming it: an answer of the same request less than
// ttl old, or shared with the same request in flight, or rendered on the
// heavy pool if a slot is free; otherwise 429 at once. render's
// errNoPost is kept as an answer too.
func (g *guard) answer(c *gin.Context, key string, render func(context.Context, *pgxpool.Pool) ([]byte, error)) ([]byte, error) {
	if a, ok := g.cached(key); ok {
		g.outcomes.WithLabelValues("cached").Inc()
		return a.body, a.err
	}
	if err := allow(c, g.heavyIPs, "explanations"); err != nil {
		g.outcomes.WithLabelValues("limited").Inc()
		return nil, err
	}
	v, err, shared := g.flight.Do(key, func() (any, error) {
		select {
		case g.slots <- struct{}{}:
		default:
			g.outcomes.WithLabelValues("busy").Inc()
			return nil, httpserver.TooMany(time.Second, "every connection for explanations is busy; try again in a second")
		}
		g.outcomes.WithLabelValues("computed").Inc()
		defer func() { <-g.slots }()
		// Not the request's context: the answer is shared.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), 10*time.Second)
		defer cancel()
		body, err := render(ctx, g.heavyPool)
		if err == nil || errors.Is(err, errNoPost) {
			g.keep(key, answer{body: body, err: err, at: time.Now()})
		}
		return body, err
	})
	if shared {
		g.outcomes.WithLabelValues("shared").Inc()
	}
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

func (g *guard) cached(key string) (answer, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, ok := g.answers[key]
	return a, ok && time.Since(a.at) < g.ttl
}

// keep stores an answer; past 1,000 it first forgets the stale ones, and
// if all are fresh, all of them (the next requests compute again).
func (g *guard) keep(key string, a answer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.answers) >= 1000 {
		for k, old := range g.answers {
			if time.Since(old.at) >= g.ttl {
				delete(g.answers, k)
			}
		}
		if len(g.answers) >= 1000 {
			clear(g.answers)
		}
	}
	g.answers[key] = a
}
