package launch

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// WaitTCP returns once something listens, and gives up after its timeout.
func TestWaitTCP(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := WaitTCP(context.Background(), addr, time.Second); err != nil {
		t.Fatalf("listening: %v", err)
	}
	l.Close()
	if err := WaitTCP(context.Background(), addr, 300*time.Millisecond); err == nil {
		t.Fatal("nothing listens, yet it returned nil")
	}
}

// WaitReady waits through 503s until /readyz answers 200.
func TestWaitReady(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if err := WaitReady(context.Background(), srv.URL, 5*time.Second); err != nil || calls.Load() != 3 {
		t.Fatalf("WaitReady: %v after %d calls", err, calls.Load())
	}
	never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer never.Close()
	if err := WaitReady(context.Background(), never.URL, 300*time.Millisecond); err == nil {
		t.Fatal("never ready, yet it returned nil")
	}
}
