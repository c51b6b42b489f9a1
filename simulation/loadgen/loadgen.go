// Package loadgen is an HTTP load generator. Run is closed-loop: a number
// of virtual users each send a request, wait for the answer, optionally
// sleep, and repeat until the duration ends. RunRate is open-loop: requests
// start at a constant rate (k6's constant-arrival-rate). Both record every
// latency and status so that reports give exact percentiles.
package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Request is one virtual user's next call. It returns the HTTP status (0
// for a transport error).
type Request func(ctx context.Context, c *http.Client, rng *rand.Rand) int

// Plan is one load phase.
type Plan struct {
	Name     string
	VUs      int
	Duration time.Duration
	MaxSleep time.Duration // each VU sleeps uniformly in [0, MaxSleep) between requests
	Request  Request
	// OK says which statuses count as success (default: 2xx).
	OK func(status int) bool
}

// Result summarises a phase.
type Result struct {
	Name      string         `json:"name"`
	VUs       int            `json:"vus"`
	Seconds   float64        `json:"seconds"`
	Requests  int            `json:"requests"`
	PerSecond float64        `json:"req_per_s"`
	P50ms     float64        `json:"p50_ms"`
	P90ms     float64        `json:"p90_ms"`
	P99ms     float64        `json:"p99_ms"`
	MaxMs     float64        `json:"max_ms"`
	Errors    int            `json:"errors"`
	ErrorRate float64        `json:"error_share"`
	Statuses  map[string]int `json:"statuses"`
	// Dropped counts open-loop requests that were due but could not start
	// before the phase ended (RunRate only).
	Dropped int `json:"dropped,omitempty"`
}

// Client returns an HTTP client sized for vus concurrent connections.
func Client(vus int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        vus * 2,
		MaxIdleConnsPerHost: vus * 2,
		MaxConnsPerHost:     vus,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// Run executes the plan and reports.
func Run(ctx context.Context, p Plan) Result {
	if p.OK == nil {
		p.OK = func(s int) bool { return s >= 200 && s < 300 }
	}
	c := Client(p.VUs)
	defer c.CloseIdleConnections()
	// The phase ends by not starting new requests: a request in flight at
	// the deadline runs to its answer and is counted, so that every 2xx
	// the server gave is seen by the report.
	deadline := time.Now().Add(p.Duration)
	stats := make([]vuStats, p.VUs)
	var wg sync.WaitGroup
	began := time.Now()
	for i := 0; i < p.VUs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i)+1, uint64(began.UnixNano())))
			st := vuStats{statuses: map[int]int{}}
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				status := p.Request(ctx, c, rng)
				st.lat = append(st.lat, time.Since(t0))
				st.statuses[status]++
				if p.MaxSleep > 0 {
					pause := min(time.Duration(rng.Int64N(int64(p.MaxSleep))), time.Until(deadline))
					select {
					case <-ctx.Done():
					case <-time.After(max(pause, 0)):
					}
				}
			}
			stats[i] = st
		}()
	}
	wg.Wait()
	elapsed := time.Since(began)
	r := summarize(p.Name, p.VUs, elapsed, stats, p.OK)
	if r.Requests > 0 {
		r.PerSecond = float64(r.Requests) / elapsed.Seconds()
	}
	return r
}

// vuStats is what one virtual user saw.
type vuStats struct {
	lat      []time.Duration
	statuses map[int]int
}

// summarize merges the virtual users' latencies and statuses into a
// Result with exact percentiles (PerSecond is the caller's).
func summarize(name string, vus int, elapsed time.Duration, stats []vuStats, ok func(int) bool) Result {
	r := Result{Name: name, VUs: vus, Seconds: elapsed.Seconds(), Statuses: map[string]int{}}
	var all []time.Duration
	for _, st := range stats {
		all = append(all, st.lat...)
		for s, n := range st.statuses {
			key := fmt.Sprint(s)
			if s == 0 {
				key = "transport_error"
			}
			r.Statuses[key] += n
			if !ok(s) {
				r.Errors += n
			}
		}
	}
	r.Requests = len(all)
	if r.Requests == 0 {
		return r
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	q := func(f float64) float64 {
		return float64(all[min(len(all)-1, int(f*float64(len(all))))].Microseconds()) / 1000
	}
	r.P50ms, r.P90ms, r.P99ms = q(0.50), q(0.90), q(0.99)
	r.MaxMs = float64(all[len(all)-1].Microseconds()) / 1000
	r.ErrorRate = float64(r.Errors) / float64(r.Requests)
	return r
}

// String is a one-line report.
func (r Result) String() string {
	var st []string
	for k, v := range r.Statuses {
		st = append(st, fmt.Sprintf("%s:%d", k, v))
	}
	sort.Strings(st)
	return fmt.Sprintf("%-22s vus=%-4d %8.0f req/s  p50 %6.2f ms  p90 %6.2f ms  p99 %6.2f ms  max %7.2f ms  errors %.4f%%  [%s]",
		r.Name, r.VUs, r.PerSecond, r.P50ms, r.P90ms, r.P99ms, r.MaxMs, r.ErrorRate*100, strings.Join(st, " "))
}

// Do sends one request and drains the answer.
func Do(ctx context.Context, c *http.Client, method, url, body string, header ...string) int {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// WriteJSON writes v as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
