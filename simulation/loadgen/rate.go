package loadgen

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// RatePlan is an open-loop phase, as k6's constant-arrival-rate executor:
// requests start at a fixed rate whatever the answers' latency, from a
// pool of at most MaxVUs concurrent requests.
type RatePlan struct {
	Name     string
	Rate     float64 // requests per second
	Duration time.Duration
	MaxVUs   int
	Request  Request
	OK       func(status int) bool
}

// RunRate executes the plan. Each request's latency is measured from the
// moment it was due, not from when a free VU sent it: when the system
// falls behind, the wait counts (coordinated omission is accounted for).
// A request that is due while every VU is busy waits for one; Dropped
// counts those that, once the phase had ended, would still have had to
// wait for a busy VU.
func RunRate(ctx context.Context, p RatePlan) Result {
	if p.OK == nil {
		p.OK = func(s int) bool { return s >= 200 && s < 300 }
	}
	if p.MaxVUs <= 0 {
		p.MaxVUs = 1000
	}
	c := Client(p.MaxVUs)
	defer c.CloseIdleConnections()
	total := int(p.Rate * p.Duration.Seconds())
	interval := time.Duration(float64(time.Second) / p.Rate)
	due := make(chan time.Time, p.MaxVUs)
	stats := make([]vuStats, p.MaxVUs)
	began := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < p.MaxVUs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i)+1, uint64(began.UnixNano())))
			st := vuStats{statuses: map[int]int{}}
			for at := range due {
				if ctx.Err() != nil {
					continue
				}
				status := p.Request(ctx, c, rng)
				st.lat = append(st.lat, time.Since(at))
				st.statuses[status]++
			}
			stats[i] = st
		}()
	}
	dropped := 0
	end := began.Add(p.Duration)
	for i := 0; i < total && ctx.Err() == nil; i++ {
		at := began.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		if time.Now().After(end) {
			// Past the phase's end (the loop woke late, or waited for busy
			// VUs): what VUs can still take goes out; only what would wait
			// for a busy one is dropped, as k6 drops an iteration that
			// finds no free VU. A late wake-up of this loop is not the
			// system's doing.
			select {
			case due <- at:
				continue
			default:
				dropped = total - i
			}
			break
		}
		due <- at // blocks while every VU is busy: the wait is in the latency
	}
	close(due)
	wg.Wait()
	r := summarize(p.Name, p.MaxVUs, time.Since(began), stats, p.OK)
	r.Dropped = dropped
	if r.Requests > 0 {
		r.PerSecond = float64(r.Requests-r.Errors) / p.Duration.Seconds()
	}
	return r
}
