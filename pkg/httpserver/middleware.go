package httpserver

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/problem"
)

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-ID"

const ctxLogger = "httpserver.logger"

func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if id == "" || len(id) > 128 {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Header(RequestIDHeader, id)
		c.Set(RequestIDHeader, id)
		c.Next()
	}
}

// Logger returns the request-scoped logger (with the request id). It is
// built when asked for: most requests never log.
func Logger(c *gin.Context) *zap.Logger {
	if l, ok := c.Get(ctxLogger); ok {
		return l.(*zap.Logger).With(zap.String("request_id", c.GetString(RequestIDHeader)))
	}
	return zap.NewNop()
}

func accessLog(log *zap.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Set(ctxLogger, log)
		c.Next()
		status := c.Writer.Status()
		if c.Request.URL.Path == "/healthz" || c.Request.URL.Path == "/metrics" || c.Request.URL.Path == "/readyz" {
			return
		}
		lvl := zap.DebugLevel
		if status >= 500 {
			lvl = zap.WarnLevel
		}
		if ce := log.Check(lvl, "request"); ce != nil {
			ce.Write(
				zap.String("request_id", c.GetString(RequestIDHeader)),
				zap.String("method", clip(c.Request.Method)),
				zap.String("route", c.FullPath()),
				zap.String("path", clip(c.Request.URL.Path)),
				zap.Int("status", status),
				zap.Duration("latency", time.Since(start)),
				zap.String("client_ip", c.ClientIP()),
			)
		}
	}
}

// clip bounds what a client controls in a log line.
func clip(s string) string {
	const max = 256
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

func (s *Server) recovery() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("panic in handler", zap.Any("panic", r),
					zap.String("request_id", c.GetString(RequestIDHeader)),
					zap.ByteString("stack", debug.Stack()))
				if !c.Writer.Written() {
					problem.Write(c, http.StatusInternalServerError, "internal error", "")
				}
			}
		}()
		c.Next()
	}
}

func notFound(c *gin.Context) {
	problem.Write(c, http.StatusNotFound, "no such route", "")
}

func methodNotAllowed(c *gin.Context) {
	problem.Write(c, http.StatusMethodNotAllowed, "method not allowed on this route", "")
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *httpMetrics) middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		method := methodLabel(c.Request.Method)
		m.requests.WithLabelValues(route, method, strconv.Itoa(c.Writer.Status())).Inc()
		m.latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	}
}

// methodLabel is the method as a metric label, from a closed set: Go
// accepts any token of many kilobytes as a method, and a label taken from
// the request would add series, for good, for every new one a client
// sends.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
