package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"
)

// Every service exports which build it runs.
func TestMetricsCarryTheBuild(t *testing.T) {
	t.Parallel()
	s := New(zap.NewNop(), Config{}, "127.0.0.1:0")
	rec := httptest.NewRecorder()
	s.Engine.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if !strings.Contains(string(body), `ratestream_build_info{goversion="go`) {
		t.Fatalf("no ratestream_build_info in /metrics:\n%.2000s", body)
	}
}

// An invalid TRUSTED_PROXIES stops the service at start, with the cause.
func TestInvalidTrustedProxiesFailRun(t *testing.T) {
	t.Parallel()
	s := New(zap.NewNop(), Config{TrustedProxies: []string{"not-an-address"}}, "127.0.0.1:0")
	if err := s.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "TRUSTED_PROXIES") {
		t.Fatalf("Run = %v, want a TRUSTED_PROXIES error", err)
	}
}

// A client choosing its method cannot add metric series: every method
// outside the standard ones is one label value, on matched and unmatched
// routes alike.
func TestMetricLabelsAreAClosedSet(t *testing.T) {
	t.Parallel()
	s := New(zap.NewNop(), Config{}, "127.0.0.1:0")
	s.Engine.GET("/v1/thing", func(c *gin.Context) { c.Status(204) })
	scrape := func() string {
		rec := httptest.NewRecorder()
		s.Engine.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	series := func(body string) int { return strings.Count(body, "\nhttp_requests_total{") }
	for _, path := range []string{"/v1/thing", "/nowhere"} {
		s.Engine.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
		s.Engine.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("BREW", path, nil))
	}
	scrape() // its own series, counted after it answers
	before := scrape()
	long := strings.Repeat("M", 16<<10)
	for i := range 500 {
		for _, path := range []string{"/v1/thing", "/nowhere"} {
			s.Engine.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(fmt.Sprintf("%s%d", long, i), path, nil))
		}
	}
	after := scrape()
	if series(after) != series(before) {
		t.Errorf("1,000 requests with new methods took http_requests_total from %d series to %d", series(before), series(after))
	}
	if strings.Contains(after, "MMMM") || strings.Contains(after, "BREW") {
		t.Errorf("a client's method is a label value:\n%.3000s", after)
	}
	if len(after) > len(before)+4096 {
		t.Errorf("/metrics grew from %d to %d bytes", len(before), len(after))
	}
	if !strings.Contains(after, `method="other"`) {
		t.Errorf("no method=\"other\" series:\n%.3000s", after)
	}
}

// However often /readyz is asked, each dependency is checked once an
// interval, and /readyz serves that outcome with its age.
func TestReadinessChecksRunOnTheirOwnClock(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	var down atomic.Bool
	s := New(zap.NewNop(), Config{ReadyInterval: 200 * time.Millisecond, ShutdownTimeout: 5 * time.Second}, "127.0.0.1:0",
		Check{Name: "broker", Fn: func(context.Context) error {
			calls.Add(1)
			if down.Load() {
				return errors.New("connection refused")
			}
			return nil
		}})
	addr := serve(t, s)
	url := "http://" + addr + "/readyz"
	get := func() (int, map[string]any) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	deadline := time.Now().Add(5 * time.Second)
	for code, _ := get(); code != http.StatusOK; code, _ = get() {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	start, before := time.Now(), calls.Load()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 100 {
				if code, body := get(); code != http.StatusOK || body["age_seconds"] == nil {
					t.Errorf("/readyz = %d %v", code, body)
					return
				}
			}
		})
	}
	wg.Wait()
	n, allowed := calls.Load()-before, int64(time.Since(start)/(200*time.Millisecond))+2
	if n > allowed {
		t.Errorf("2,000 readiness requests in %s ran the check %d times, want at most %d", time.Since(start).Round(time.Millisecond), n, allowed)
	}
	down.Store(true)
	deadline = time.Now().Add(5 * time.Second)
	for {
		code, body := get()
		if code == http.StatusServiceUnavailable {
			if f, _ := body["failed"].(map[string]any); f["broker"] != "connection refused" {
				t.Errorf("failed = %v, want the broker's error", body["failed"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a failing check never made /readyz unavailable")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// With ADMIN_ADDR, metrics, readiness and profiles are served there and
// nowhere on the API's port, which a Service and an ingress expose.
func TestOperationsOnTheirOwnPort(t *testing.T) {
	t.Parallel()
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	admin := free()
	s := New(zap.NewNop(), Config{AdminAddr: admin, Pprof: true, ReadyInterval: 100 * time.Millisecond, ShutdownTimeout: 5 * time.Second}, "127.0.0.1:0")
	s.Engine.GET("/v1/thing", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	addr := serve(t, s)
	code := func(addr, path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(5 * time.Second)
	for code(admin, "/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the operations port never answered ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	api := addr
	for _, c := range []struct {
		addr, path string
		want       int
	}{
		{api, "/v1/thing", 204}, {api, "/healthz", 200}, {api, "/metrics", 404}, {api, "/readyz", 404}, {api, "/debug/pprof/", 404},
		{admin, "/metrics", 200}, {admin, "/readyz", 200}, {admin, "/healthz", 200}, {admin, "/debug/pprof/", 200}, {admin, "/v1/thing", 404},
	} {
		if got := code(c.addr, c.path); got != c.want {
			t.Errorf("%s%s: %d, want %d", c.addr, c.path, got, c.want)
		}
	}
}

// serve runs s on a loopback port until the test ends and returns the
// address.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		// Connections the client dialled but never used count as busy
		// for a shutdown (5 s): close them first.
		http.DefaultClient.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}
