package launch

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStopEndsAProgramThatExitsOnSIGTERM(t *testing.T) {
	p, err := Start(Spec{Path: "/bin/sleep", Args: []string{"30"}})
	if err != nil {
		t.Fatal(err)
	}
	if done, _ := p.Exited(); done {
		t.Fatal("exited at once")
	}
	began := time.Now()
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if time.Since(began) > 5*time.Second {
		t.Fatalf("Stop took %s for a program that ends on SIGTERM", time.Since(began))
	}
	if done, err := p.Exited(); !done || err == nil {
		t.Fatalf("after Stop: done %v, err %v (want ended by a signal)", done, err)
	}
	if err := p.Stop(time.Second); err != nil {
		t.Fatalf("a second Stop: %v", err)
	}
}

func TestStopKillsAProgramThatIgnoresSIGTERM(t *testing.T) {
	var out strings.Builder
	p, err := Start(Spec{Path: "/bin/sh", Args: []string{"-c", `trap "" TERM; echo trapped; sleep 30 & wait`}, Output: &syncWriter{b: &out}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the trap is set
	err = p.Stop(500 * time.Millisecond)
	if !errors.Is(err, ErrKilled) {
		t.Fatalf("Stop: %v, want ErrKilled", err)
	}
	if p.State() == nil {
		t.Fatal("no state after Stop returned")
	}
}

func TestEnvAndDirReachTheProgram(t *testing.T) {
	var out strings.Builder
	dir := t.TempDir()
	p, err := Start(Spec{Path: "/bin/sh", Args: []string{"-c", `echo "$LAUNCH_TEST $(pwd)"`}, Dir: dir,
		Env: []string{"LAUNCH_TEST=a", "LAUNCH_TEST=b"}, Output: &syncWriter{b: &out}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out.String()), "b "+dir; got != want {
		t.Fatalf("output %q, want %q (the later setting wins, in the given directory)", got, want)
	}
}

func TestAMissingProgramIsAnErrorNamingIt(t *testing.T) {
	_, err := Start(Spec{Path: "no-such-program-here"})
	if err == nil || !strings.Contains(err.Error(), "no-such-program-here") {
		t.Fatalf("got %v", err)
	}
}

func TestFreeAddrIsBelowTheEphemeralRange(t *testing.T) {
	for range 20 {
		a, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(a, "127.0.0.1:2") && !strings.HasPrefix(a, "127.0.0.1:3") {
			t.Fatalf("%s", a)
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
