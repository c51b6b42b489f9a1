package launch

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Spec says how to start a program.
type Spec struct {
	// Path is the program; a bare name is looked up as Sibling does.
	Path string
	Args []string
	// Dir is the working directory; empty is this process's.
	Dir string
	// Env is added to this process's environment (later entries win).
	Env []string
	// Output receives the program's stdout, and its stderr unless Stderr
	// is set; nil discards them.
	Output, Stderr io.Writer
	// OwnGroup starts the program in a process group of its own, so a
	// Ctrl-C in the terminal reaches only the parent, which then stops its
	// children in the order it chooses.
	OwnGroup bool
}

// Process is a started program. Every method is safe to call from any
// goroutine, and Stop may be called more than once.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts the program described by s.
func Start(s Spec) (*Process, error) {
	path := s.Path
	if filepath.Base(path) == path {
		path = Sibling(path)
	}
	cmd := exec.Command(path, s.Args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Dir = s.Dir
	if s.Output != nil {
		cmd.Stdout, cmd.Stderr = s.Output, s.Output
	}
	if s.Stderr != nil {
		cmd.Stderr = s.Stderr
	}
	// A program's own children can hold its output open after it has
	// exited; its end is its own exit, not theirs.
	cmd.WaitDelay = 2 * time.Second
	if s.OwnGroup {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &Process{Name: filepath.Base(path), cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Sibling is the path of a project program: the one next to this
// program's own binary (make build puts them together), else the bare name
// for exec to find on PATH.
func Sibling(name string) string {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return name
}

// Pid is the program's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the program has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports, without waiting, whether the program has ended and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Wait waits for the program to exit and returns how it ended (nil for
// exit status 0).
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// State is the ended program's state (resource usage, exit code); nil
// while it runs.
func (p *Process) State() *os.ProcessState {
	select {
	case <-p.done:
		return p.cmd.ProcessState
	default:
		return nil
	}
}

// ErrKilled says the program did not stop within its grace and was killed.
var ErrKilled = errors.New("did not stop in time; killed")

// Stop asks the program to stop (SIGTERM), waits up to grace, then kills
// it, and returns once it has exited.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s %w after %s", p.Name, ErrKilled, grace)
	}
}

// Kill ends the program at once (SIGKILL) and waits until it has.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// FreeAddr returns a loopback address whose port was free a moment ago.
// The port is below Linux's ephemeral range (32768-60999): a port the
// kernel hands out itself (":0") can be taken by any outgoing connection
// between this pick and the program's bind.
func FreeAddr() (string, error) {
	for range 1000 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		return addr, nil
	}
	return "", errors.New("no free port between 20000 and 32000")
}
