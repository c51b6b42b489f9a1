package loadgen

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// An open-loop run counts the time a due request waited for a free VU:
// a server slower than the offered rate shows in the latency, not as a
// lower rate with good latencies (coordinated omission).
func TestRunRateAccountsForWaiting(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	req := func(ctx context.Context, c *http.Client, _ *rand.Rand) int {
		return Do(ctx, c, http.MethodPost, srv.URL, `{}`)
	}
	// Enough VUs: every request starts when due and takes about 20 ms.
	r := RunRate(context.Background(), RatePlan{Name: "enough", Rate: 100, Duration: time.Second, MaxVUs: 20, Request: req})
	if r.Requests != 100 || r.Errors != 0 || r.Dropped != 0 || r.P99ms > 200 || r.P50ms < 19 {
		t.Fatalf("enough VUs: %+v", r)
	}
	// One VU serves 50/s of the 100/s offered: requests queue, and the
	// wait is in their latency.
	r = RunRate(context.Background(), RatePlan{Name: "one VU", Rate: 100, Duration: time.Second, MaxVUs: 1, Request: req})
	if r.P99ms < 300 || r.Requests+r.Dropped != 100 || r.PerSecond > 80 {
		t.Fatalf("one VU: %+v", r)
	}
}
