package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratestream/ratestream/pkg/launch"
	"github.com/ratestream/ratestream/pkg/migrate"
)

// env owns what a benchmark starts: databases and processes, all torn
// down by close.
type env struct {
	admin   string // DATABASE_URL of the server benchmarks create databases on
	bin     string
	workDir string
	cleanup []func()
}

func newEnv(admin string) (*env, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ratestream-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{admin: admin, bin: filepath.Dir(exe), workDir: dir}
	e.cleanup = append(e.cleanup, func() { os.RemoveAll(dir) })
	return e, nil
}

func (e *env) close() {
	for i := len(e.cleanup) - 1; i >= 0; i-- {
		e.cleanup[i]()
	}
	e.cleanup = nil
}

// database creates and migrates a fresh database.
func (e *env) database(ctx context.Context) (string, *pgxpool.Pool, error) {
	url, drop, err := migrate.Scratch(ctx, e.admin, "bench")
	if err != nil {
		return "", nil, err
	}
	e.cleanup = append(e.cleanup, drop)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return "", nil, err
	}
	e.cleanup = append(e.cleanup, pool.Close)
	return url, pool, nil
}

// spawn starts a project command with extra environment; it is stopped
// with SIGTERM on close.
func (e *env) spawn(name string, envv ...string) (*proc, error) {
	return e.spawnArgs(name, nil, envv...)
}

// spawnArgs is spawn with command-line arguments.
func (e *env) spawnArgs(name string, args []string, envv ...string) (*proc, error) {
	logf, err := os.Create(filepath.Join(e.workDir, name+".log"))
	if err != nil {
		return nil, err
	}
	lp, err := launch.Start(launch.Spec{Path: filepath.Join(e.bin, name), Args: args,
		Env: append([]string{"LOG_LEVEL=warn"}, envv...), Output: logf})
	if err != nil {
		logf.Close()
		return nil, err
	}
	p := &proc{Process: lp, name: name, log: logf.Name(), pid: lp.Pid()}
	e.cleanup = append(e.cleanup, func() {
		_ = lp.Stop(20 * time.Second)
		logf.Close()
	})
	return p, nil
}

// proc is a spawned command.
type proc struct {
	*launch.Process
	name, log string
	pid       int
}

// maxRSS is the command's peak resident set in MB, once it has exited.
func (p *proc) maxRSS() float64 {
	if ru, ok := p.State().SysUsage().(*syscall.Rusage); ok {
		return float64(ru.Maxrss) / 1024 // kB on Linux
	}
	return 0
}

// wait waits for the command to exit and reports how it ended.
func (p *proc) wait() error {
	if err := p.Wait(); err != nil {
		b, _ := os.ReadFile(p.log)
		return fmt.Errorf("%s: %v: %s", p.name, err, b)
	}
	return nil
}

// exited reports an error once the command has ended, with its log.
func (p *proc) exited() error {
	if done, err := p.Exited(); done {
		b, _ := os.ReadFile(p.log)
		return fmt.Errorf("%s exited (%v): %s", p.name, err, b)
	}
	return nil
}

// broker starts a memory-only dev broker and returns its address.
func (e *env) broker(partitions int) (string, error) {
	addr, _, err := e.startBroker(partitions, "DEVBROKER_MEMORY_ONLY=true")
	return addr, err
}

// diskBroker starts a dev broker that keeps its log under the work
// directory, as the stack's does, and returns its address and its
// process, whose CPU the whole-pipeline benchmarks count.
func (e *env) diskBroker(partitions int) (string, *proc, error) {
	return e.startBroker(partitions, "DEVBROKER_DATA_DIR="+filepath.Join(e.workDir, "kafka"))
}

func (e *env) startBroker(partitions int, storage string) (string, *proc, error) {
	addr := freeAddr()
	p, err := e.spawn("devbroker", "DEVBROKER_ADDR="+addr, storage, fmt.Sprintf("KAFKA_PARTITIONS=%d", partitions))
	if err != nil {
		return "", nil, err
	}
	return addr, p, launch.WaitTCP(context.Background(), addr, 20*time.Second)
}

// spread sorts ds and gives its median, 99th percentile and maximum in
// milliseconds (zero when empty).
func spread(ds []time.Duration) (p50, p99, worst float64) {
	n := len(ds)
	if n == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return ms(ds[n/2]), ms(ds[min(n-1, n*99/100)]), ms(ds[n-1])
}

// freeAddr is a loopback address whose port was free a moment ago.
func freeAddr() string {
	addr, err := launch.FreeAddr()
	if err != nil {
		panic(err)
	}
	return addr
}
