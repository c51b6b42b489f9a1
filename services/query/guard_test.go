package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratestream/ratestream/tools/testenv"
)

// One client cannot take the query service from the others: explanations
// beyond their slots get 429 at once (never a wait on the pool my_score
// uses), the same request within QUERY_HEAVY_CACHE is answered from
// memory, and each address has an allowance of explanations, new posts
// and lookups of posts the view does not hold.
func TestOneClientCannotTakeTheService(t *testing.T) {
	h := start(t, func(c *Config) {
		c.Limits.HeavyConns, c.Limits.HeavyRateIP = 1, 0 // two slots, no per-address limit
		c.Limits.CreateRate, c.Limits.CreateBurst = 1, 5
		c.Limits.MissRate, c.Limits.MissBurst = 1, 10
	})
	campaigned(t, h)
	testenv.Eventually(t, 10*time.Second, func() error {
		if st, _, _ := h.do(t, "GET", "/v1/posts/1/explain", ""); st != 200 {
			return fmt.Errorf("explain %d", st)
		}
		return nil
	})

	// 64 distinct heavy requests at once: at most the slots compute, the
	// rest are refused at once, none fails otherwise.
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			st, hdr, _ := h.do(t, "GET", fmt.Sprintf("/ui/posts/1?history=%dh", 24+i), "")
			mu.Lock()
			codes[st]++
			mu.Unlock()
			if st == 429 && hdr.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		})
	}
	wg.Wait()
	if codes[200] == 0 || codes[429] == 0 || codes[200]+codes[429] != 64 {
		t.Errorf("64 distinct explanations at once: %v, want some 200, the rest 429, nothing else", codes)
	}

	// The same request again is an answer from memory.
	before := metric(t, h, `query_explanations_total{outcome="computed"}`)
	for range 20 {
		if st, _, _ := h.do(t, "GET", "/v1/posts/1/explain?history=3h", ""); st != 200 {
			t.Fatalf("explain: %d", st)
		}
	}
	if n := metric(t, h, `query_explanations_total{outcome="computed"}`) - before; n != 1 {
		t.Errorf("20 identical explanations computed %v times, want 1", n)
	}

	count := func(method, path, body string, n int) map[int]int {
		out := map[int]int{}
		for range n {
			st, _, _ := h.do(t, method, path, body)
			out[st]++
		}
		return out
	}
	if got := count("POST", "/v1/posts", `{"title":"spam"}`, 12); got[201] > 6 || got[429] < 6 {
		t.Errorf("12 posts created at once from one address: %v, want at most the burst of 5 (+1)", got)
	}
	if got := count("GET", "/v1/posts/987654321", "", 30); got[404] > 11 || got[429] < 19 {
		t.Errorf("30 lookups of a post that does not exist: %v, want at most the burst of 10 (+1) to reach the database", got)
	}
}

// metric reads one sample of the query service's /metrics.
func metric(t *testing.T, h *harness, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(metricsBody(t, h), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// metricsBody is the service's /metrics page.
func metricsBody(t *testing.T, h *harness) string {
	t.Helper()
	resp, err := http.Get(h.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
