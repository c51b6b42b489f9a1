package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
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
	// ready (a URL answering 200 when ready) or tcp (an address that
	// accepts connections) says the process came up healthy: its restart
	// backoff then starts again from the shortest.
	ready, tcp string

	mu  sync.Mutex
	cmd *exec.Cmd
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
			err = c.cmd.Wait()
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
	if c.ready == "" && c.tcp == "" {
		return
	}
	client := http.Client{Timeout: 500 * time.Millisecond}
	for ctx.Err() == nil {
		if c.ready != "" {
			if resp, err := client.Get(c.ready); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					healthy.Store(true)
					return
				}
			}
		} else if conn, err := net.DialTimeout("tcp", c.tcp, 500*time.Millisecond); err == nil {
			conn.Close()
			healthy.Store(true)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *child) start() error {
	out, err := os.OpenFile(c.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(c.bin, c.args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: a Ctrl-C in the terminal reaches the supervisor,
	// which then stops children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	c.mu.Lock()
	c.cmd = cmd
	c.mu.Unlock()
	return os.WriteFile(c.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
}

// stop sends SIGTERM and waits up to grace before SIGKILL.
func (c *child) stop(grace time.Duration) {
	c.mu.Lock()
	cmd := c.cmd
	c.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	pid := cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		c.logf("%s did not stop within %s; killing", c.name, grace)
		_ = syscall.Kill(pid, syscall.SIGKILL)
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
