package httpserver

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

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
