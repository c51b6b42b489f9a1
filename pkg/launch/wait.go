// Package launch is what starting another process needs from outside it:
// waiting until it listens, and until it says it is ready.
package launch

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// poll is how often the waits try again.
const poll = 100 * time.Millisecond

// WaitTCP waits until addr accepts a TCP connection, for at most timeout.
func WaitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := (&net.Dialer{Timeout: 200 * time.Millisecond}).DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
	return fmt.Errorf("%s not reachable after %s", addr, timeout)
}

// WaitReady waits until base's /readyz answers 200, for at most timeout.
func WaitReady(ctx context.Context, base string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
	return fmt.Errorf("%s not ready after %s", base, timeout)
}
