// Package httpserver is the one HTTP bootstrap of every ratestream service:
// gin with request ids, access logs, panic recovery, Prometheus metrics,
// /healthz, /readyz and graceful shutdown.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/buildinfo"
)

// Config holds the timeouts shared by every service's HTTP server.
type Config struct {
	ReadTimeout     time.Duration `env:"HTTP_READ_TIMEOUT" default:"5s" help:"time to read a whole request"`
	WriteTimeout    time.Duration `env:"HTTP_WRITE_TIMEOUT" default:"10s" help:"time to write a response"`
	IdleTimeout     time.Duration `env:"HTTP_IDLE_TIMEOUT" default:"60s" help:"keep-alive idle time"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" default:"15s" help:"grace period for requests in flight on SIGTERM"`
	Pprof           bool          `env:"HTTP_PPROF" default:"false" help:"serve Go profiles under /debug/pprof"`
	AdminAddr       string        `env:"ADMIN_ADDR" help:"serve /metrics, /readyz and profiles on this address only (e.g. :9090, a port only the cluster reaches), not on the API's; empty: on the API's address"`
	ReadyInterval   time.Duration `env:"READY_INTERVAL" default:"2s" help:"how often the readiness checks run; /readyz serves the last outcome"`
	TrustedProxies  []string      `env:"TRUSTED_PROXIES" help:"comma-separated addresses or CIDRs of proxies whose X-Forwarded-For names the client (default: none; the client is the peer)"`
}

// Check reports whether one dependency is reachable.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Server is a gin engine with the shared middleware and endpoints mounted.
type Server struct {
	Engine   *gin.Engine
	admin    *gin.Engine // nil: the operational routes are on Engine
	Registry *prometheus.Registry
	log      *zap.Logger
	cfg      Config
	addr     string
	checks   []Check
	readyG   prometheus.Gauge
	last     atomic.Pointer[readyState] // nil until the first checks end
	srv      *http.Server
	adminSrv *http.Server
	err      error // a setting that New could not apply; Run returns it
}

// New builds a server listening on addr. Routes are added to Engine by the
// caller before Run.
func New(log *zap.Logger, cfg Config, addr string, checks ...Check) *Server {
	gin.SetMode(gin.ReleaseMode)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	e := gin.New()
	e.ContextWithFallback = true
	e.HandleMethodNotAllowed = true
	s := &Server{Engine: e, Registry: reg, log: log, cfg: cfg, addr: addr, checks: checks,
		readyG: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ratestream_ready",
			Help: "1 while every readiness check passes (what /readyz answers), 0 otherwise; evaluated every READY_INTERVAL.",
		})}
	reg.MustRegister(s.readyG)
	// The client address (rate limits, logs) comes from X-Forwarded-For
	// only when the peer is a trusted proxy; by default none is.
	if err := e.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		s.err = fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	e.Use(requestID(), s.recovery(), accessLog(log), newHTTPMetrics(reg).middleware())
	e.NoRoute(notFound)
	e.NoMethod(methodNotAllowed)
	healthz := func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }
	e.GET("/healthz", healthz)
	ops := e
	if cfg.AdminAddr != "" {
		// Metrics, readiness (its failures name hosts and errors) and
		// profiles on a port of their own, which only the cluster
		// reaches: the API's port, behind a Service and an ingress,
		// serves the API and /healthz alone.
		s.admin = gin.New()
		s.admin.Use(requestID(), s.recovery())
		s.admin.NoRoute(notFound)
		s.admin.GET("/healthz", healthz)
		ops = s.admin
	}
	ops.GET("/readyz", s.ready)
	ops.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	if cfg.Pprof {
		ops.GET("/debug/pprof/*name", func(c *gin.Context) {
			if c.Param("name") == "/profile" {
				pprof.Profile(c.Writer, c.Request)
				return
			}
			pprof.Index(c.Writer, c.Request)
		})
	}
	return s
}

// Run serves until ctx is cancelled, then lets requests in flight finish
// within the shutdown timeout. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	if s.err != nil {
		return s.err
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened (tests use port 0).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.srv = &http.Server{
		Handler:           s.Engine,
		ReadTimeout:       s.cfg.ReadTimeout,
		ReadHeaderTimeout: s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    32 << 10, // room for a refused 16 KB token to get a 401, not a 431
	}
	errc := make(chan error, 2)
	go func() { errc <- s.srv.Serve(ln) }()
	servers := []*http.Server{s.srv}
	if s.admin != nil {
		aln, err := net.Listen("tcp", s.cfg.AdminAddr)
		if err != nil {
			s.srv.Close()
			return fmt.Errorf("ADMIN_ADDR: %w", err)
		}
		s.adminSrv = &http.Server{Handler: s.admin, ReadHeaderTimeout: s.cfg.ReadTimeout, WriteTimeout: max(s.cfg.WriteTimeout, 35*time.Second)}
		go func() { errc <- s.adminSrv.Serve(aln) }()
		servers = append(servers, s.adminSrv)
		s.log.Info("http operations listening", zap.String("addr", aln.Addr().String()))
	}
	go s.watchReadiness(ctx)
	s.log.Info("http listening", zap.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		for _, srv := range servers {
			srv.Close()
		}
		return err
	case <-ctx.Done():
	}
	s.log.Info("http shutting down", zap.Duration("grace", s.cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			return err
		}
	}
	for range servers {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}

// readyState is the outcome of one run of the readiness checks.
type readyState struct {
	failed gin.H // check name: error
	at     time.Time
}

func (s *Server) interval() time.Duration {
	if s.cfg.ReadyInterval > 0 {
		return s.cfg.ReadyInterval
	}
	return 2 * time.Second
}

// readiness runs every check, records the outcome in ratestream_ready and
// keeps it for /readyz.
func (s *Server) readiness(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(s.interval(), 2*time.Second))
	defer cancel()
	failed := gin.H{}
	for _, ch := range s.checks {
		if err := ch.Fn(ctx); err != nil {
			failed[ch.Name] = err.Error()
		}
	}
	if len(failed) > 0 {
		s.readyG.Set(0)
	} else {
		s.readyG.Set(1)
	}
	s.last.Store(&readyState{failed: failed, at: time.Now()})
}

// watchReadiness runs the checks every interval, from the start: /readyz
// only reads their last outcome, so that however often it is asked, a
// dependency is dialled once an interval.
func (s *Server) watchReadiness(ctx context.Context) {
	t := time.NewTicker(s.interval())
	defer t.Stop()
	for {
		s.readiness(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ready serves the last outcome of the checks with its age. None yet, or
// one older than a few intervals (the checks hang), is not ready.
func (s *Server) ready(c *gin.Context) {
	st := s.last.Load()
	if st == nil {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "failed": gin.H{"readiness": "the first checks have not finished"}})
		return
	}
	age := time.Since(st.at)
	body := gin.H{"status": "ok", "checked_at": st.at.UTC().Format(time.RFC3339Nano), "age_seconds": age.Seconds()}
	failed := st.failed
	if limit := 3*s.interval() + 2*time.Second; age > limit {
		failed = gin.H{"readiness": fmt.Sprintf("the last checks ended %s ago (more than %s)", age.Round(time.Millisecond), limit)}
	}
	if len(failed) > 0 {
		body["status"], body["failed"] = "unavailable", failed
		c.JSON(http.StatusServiceUnavailable, body)
		return
	}
	c.JSON(http.StatusOK, body)
}
