package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestHandleMapsErrorsInOnePlace(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		err        error
		cancel     bool
		status     int
		retryAfter string
		logged     string
		level      zapcore.Level
	}{
		{"ok", nil, false, 200, "", "", 0},
		{"bad request", Bad(422, "score", "score must be 0 to 5"), false, 422, "", "", 0},
		{"wrapped problem", fmt.Errorf("ctx: %w", Bad(404, "id", "no post")), false, 404, "", "", 0},
		{"unavailable", Unavailable(1500*time.Millisecond, "retry", errors.New("db down")), false, 503, "2", "request not served", zapcore.WarnLevel},
		{"too many", TooMany(time.Second, "slow down"), false, 429, "1", "", 0},
		{"plain error", errors.New("boom"), false, 500, "", "request failed", zapcore.ErrorLevel},
		{"client went away", context.Canceled, true, StatusClientClosed, "", "client closed the request before the answer", zapcore.InfoLevel},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zap.DebugLevel)
			gin.SetMode(gin.ReleaseMode)
			e := gin.New()
			e.Use(func(g *gin.Context) { g.Set(ctxLogger, zap.New(core)); g.Next() })
			e.GET("/x", Handle(func(g *gin.Context) error {
				if c.err == nil {
					g.Status(200)
				}
				return c.err
			}))
			ctx, cancel := context.WithCancel(context.Background())
			if c.cancel {
				cancel()
			}
			defer cancel()
			req := httptest.NewRequest(http.MethodGet, "/x", nil).WithContext(ctx)
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d", rec.Code, c.status)
			}
			if got := rec.Header().Get("Retry-After"); got != c.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, c.retryAfter)
			}
			if c.status >= 400 && c.status != StatusClientClosed && rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("content type %q", rec.Header().Get("Content-Type"))
			}
			if c.logged == "" {
				if logs.Len() != 0 {
					t.Errorf("logged %v", logs.All())
				}
				return
			}
			if l := logs.FilterMessage(c.logged).All(); len(l) != 1 || l[0].Level != c.level {
				t.Errorf("want one %q at %s, got %v", c.logged, c.level, logs.All())
			}
		})
	}
}
