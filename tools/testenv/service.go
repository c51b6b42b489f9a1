package testenv

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ratestream/ratestream/pkg/config"
)

// Defaults is a service's configuration as it loads with no environment,
// the way its main loads it, with HTTP on a free loopback port (addr
// points at the config's listen address field).
func Defaults[C any](t testing.TB, addr func(*C) *string) C {
	t.Helper()
	var cfg C
	if err := config.Load(&cfg, nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	*addr(&cfg) = FreeAddr(t)
	return cfg
}

// Service is a service running in-process for a test.
type Service struct {
	Name string
	Addr string
	// Base is http://Addr.
	Base string
	// Logs holds everything the service logged; a failing test prints the
	// last of it.
	Logs *observer.ObservedLogs
	stop func()
}

// Serve runs a service's run function in-process until the test ends or
// Stop is called. It does not wait for the service; WaitReady does.
func Serve(t testing.TB, name, addr string, run func(context.Context, *zap.Logger) error) *Service {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	s := &Service{Name: name, Addr: addr, Base: "http://" + addr, Logs: logs}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, zap.New(core)) }()
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30 s", name)
		}
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			s.printLogs(t, 40)
		}
	})
	return s
}

// WaitReady waits until the service's /readyz answers 200, for 20 s.
func (s *Service) WaitReady(t testing.TB) *Service {
	t.Helper()
	WaitHTTP(t, s.Base+"/readyz", 20*time.Second)
	return s
}

// Stop stops the service and waits for it (30 s at most); the test's end
// does it too.
func (s *Service) Stop() { s.stop() }

func (s *Service) printLogs(t testing.TB, last int) {
	all := s.Logs.All()
	var b strings.Builder
	for _, e := range all[max(0, len(all)-last):] {
		b.WriteString(e.Time.Format("15:04:05.000 "))
		b.WriteString(e.Level.CapitalString() + " " + e.Message)
		for k, v := range e.ContextMap() {
			b.WriteString(" " + k + "=")
			b.WriteString(strings.ReplaceAll(strings.TrimSpace(fmt.Sprint(v)), "\n", " "))
		}
		b.WriteByte('\n')
	}
	t.Logf("%s, last %d of %d log lines:\n%s", s.Name, min(last, len(all)), len(all), b.String())
}
