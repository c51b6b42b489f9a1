package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ratestream/ratestream/pkg/launch"
)

// child is one supervised process: restarted when it dies, as compose's
// `restart: on-failure` would, until the stack stops.
type child struct {
	name   string
	bin    string
	args   []string
	env    []string
	runDir string
	logf   func(format string, args ...any)
	// ready (a base URL whose /readyz answers 200 when ready) or tcp (an
	// address that accepts connections) says the process came up healthy: its restart
	// backoff then starts again from the shortest.
	ready, tcp string

	mu   sync.Mutex
	proc *launch.Process
}

func (c *child) pidFile() string { return filepath.Join(c.runDir, c.name+".pid") }
func (c *child) logFile() string { return filepath.Join(c.runDir, "logs", c.name+".log") }

// minBackoff is the first restart delay, and the delay after a process
// that had come up healthy dies.
const minBackoff = 200 * time.Millisecond

// supervise runs the child until ctx is cancelled, restarting it after each
// exit with a backoff that grows only while it keeps failing before it is
// healthy: a process that was serving and is killed comes back at once.
func (c *child) supervise(ctx context.Context, started chan<- struct{}) {
	backoff := minBackoff
	first := true
	for ctx.Err() == nil {
		begun := time.Now()
		err := c.start()
		if first {
			close(started)
			first = false
		}
		var wasHealthy atomic.Bool
		if err != nil {
			c.logf("%s: start failed: %v", c.name, err)
		} else {
			wctx, stopWatch := context.WithCancel(ctx)
			go c.watchHealth(wctx, &wasHealthy)
			err = c.current().Wait()
			stopWatch()
			_ = os.Remove(c.pidFile())
		}
		if ctx.Err() != nil {
			return
		}
		if wasHealthy.Load() || time.Since(begun) > 30*time.Second {
			backoff = minBackoff
		}
		c.logf("%s exited (%v); restarting in %s (log: %s)", c.name, exitText(err), backoff, c.logFile())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// watchHealth sets healthy once the process answers as ready.
func (c *child) watchHealth(ctx context.Context, healthy *atomic.Bool) {
	const forever = 365 * 24 * time.Hour // until ctx ends: the process exited
	var err error
	switch {
	case c.ready != "":
		err = launch.WaitReady(ctx, c.ready, forever)
	case c.tcp != "":
		err = launch.WaitTCP(ctx, c.tcp, forever)
	default:
		return
	}
	if err == nil {
		healthy.Store(true)
	}
}

func (c *child) start() error {
	out, err := os.OpenFile(c.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	// Own process group: a Ctrl-C in the terminal reaches the supervisor,
	// which then stops children in order.
	p, err := launch.Start(launch.Spec{Path: c.bin, Args: c.args, Env: c.env, Output: out, OwnGroup: true})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.proc = p
	c.mu.Unlock()
	return os.WriteFile(c.pidFile(), []byte(strconv.Itoa(p.Pid())+"\n"), 0o644)
}

func (c *child) current() *launch.Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc
}

// stop sends SIGTERM and waits up to grace before SIGKILL.
func (c *child) stop(grace time.Duration) {
	p := c.current()
	if p == nil {
		return
	}
	if err := p.Stop(grace); err != nil {
		c.logf("%v", err)
	}
	_ = os.Remove(c.pidFile())
}

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	// A zombie still answers signal 0; look at its state.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	for i := 0; i < len(b)-2; i++ {
		if b[i] == ')' {
			return b[i+2] != 'Z'
		}
	}
	return true
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
