package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
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

	mu  sync.Mutex
	cmd *exec.Cmd
}

func (c *child) pidFile() string { return filepath.Join(c.runDir, c.name+".pid") }
func (c *child) logFile() string { return filepath.Join(c.runDir, "logs", c.name+".log") }

// supervise runs the child until ctx is cancelled, restarting it after each
// exit with a backoff that grows while it keeps crashing quickly.
func (c *child) supervise(ctx context.Context, started chan<- struct{}) {
	backoff := 500 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		begun := time.Now()
		err := c.start()
		if first {
			close(started)
			first = false
		}
		if err != nil {
			c.logf("%s: start failed: %v", c.name, err)
		} else {
			err = c.cmd.Wait()
			_ = os.Remove(c.pidFile())
		}
		if ctx.Err() != nil {
			return
		}
		if time.Since(begun) > 30*time.Second {
			backoff = 500 * time.Millisecond
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
