// Command stack runs the whole ratestream system on loopback, each part a
// process of its own: the dev broker, the migrations, and the ingest,
// windower, scorer and query services. It restarts a process that dies and
// stops everything on Ctrl-C or SIGTERM.
//
//	stack run      start and stay in the foreground
//	stack run-bg   start in the background, return when healthy
//	stack stop     stop a stack started with run or run-bg
//	stack status   show what runs
//
// PostgreSQL is prepared by scripts/postgres.sh (or taken from
// DATABASE_URL); binaries are looked up next to this one.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ratestream/ratestream/pkg/auth"
	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/launch"
	"github.com/ratestream/ratestream/pkg/migrate"
)

type settings struct {
	RunDir       string        `env:"RATESTREAM_RUN_DIR" default:".run" help:"pid files, logs, broker data"`
	BrokerAddr   string        `env:"DEVBROKER_ADDR" default:"127.0.0.1:9092" help:"dev broker address"`
	IngestAddr   string        `env:"INGEST_ADDR" default:"127.0.0.1:8080" help:"ingest HTTP address"`
	QueryAddr    string        `env:"QUERY_ADDR" default:"127.0.0.1:8081" help:"query HTTP address"`
	WindowerAddr string        `env:"WINDOWER_ADDR" default:"127.0.0.1:8082" help:"windower health/metrics address"`
	ScorerAddr   string        `env:"SCORER_ADDR" default:"127.0.0.1:8083" help:"scorer health/metrics address"`
	StartTimeout time.Duration `env:"STACK_START_TIMEOUT" default:"60s" help:"how long run-bg waits for health"`
	Replicas     int           `env:"REPLICAS" default:"1" help:"processes of each service; replica n (from 2) is named SERVICE-n and listens 10×(n-1) ports above the first"`
	Brokers      int           `env:"BROKERS" default:"1" help:"dev brokers in one cluster (broker n listens n-1 ports above DEVBROKER_ADDR); from 3, topics are created with replication 3 and min.insync.replicas 2"`
}

// brokerAddrs lists the dev brokers' addresses: DEVBROKER_ADDR and the
// ports above it.
func (cfg settings) brokerAddrs() ([]string, error) {
	host, p, err := net.SplitHostPort(cfg.BrokerAddr)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil {
		return nil, fmt.Errorf("DEVBROKER_ADDR %q: want HOST:PORT", cfg.BrokerAddr)
	}
	out := make([]string, max(cfg.Brokers, 1))
	for i := range out {
		out[i] = net.JoinHostPort(host, strconv.Itoa(port+i))
	}
	return out, nil
}

// replication is how topics are created: on three brokers or more,
// replicated three times and acknowledged by two (acks=all then fails
// rather than rest on one copy).
func (cfg settings) replication() []string {
	if cfg.Brokers < 3 {
		return nil
	}
	return []string{"KAFKA_REPLICATION=3", "KAFKA_MIN_INSYNC_REPLICAS=2"}
}

// replica is one process of a service.
type replica struct {
	service, name, addr string
}

// replicas lists every service process: the first of each keeps the
// service's name and address.
func (cfg settings) replicas() []replica {
	var out []replica
	for _, svc := range []struct{ name, addr string }{
		{"ingest", cfg.IngestAddr}, {"windower", cfg.WindowerAddr}, {"scorer", cfg.ScorerAddr}, {"query", cfg.QueryAddr},
	} {
		for i := range max(cfg.Replicas, 1) {
			r := replica{service: svc.name, name: svc.name, addr: svc.addr}
			if i > 0 {
				r.name = fmt.Sprintf("%s-%d", svc.name, i+1)
				r.addr = offsetPort(svc.addr, 10*i)
			}
			out = append(out, r)
		}
	}
	return out
}

func offsetPort(addr string, by int) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(n+by))
}

func main() {
	var cfg settings
	if err := config.Load(&cfg, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, config.ErrHelp) {
			fmt.Println("\nusage: stack run|run-bg|stop|status")
			return
		}
		fail(err)
	}
	cmd := "run"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	var err error
	switch cmd {
	case "run":
		err = run(cfg)
	case "run-bg":
		err = runBackground(cfg)
	case "stop":
		err = stopStack(cfg)
	case "status":
		err = status(cfg)
	default:
		err = fmt.Errorf("unknown command %q: want run, run-bg, stop or status", cmd)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "stack:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Printf("%s stack: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func binDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "bin"
	}
	return filepath.Dir(exe)
}

func run(cfg settings) error {
	if err := os.MkdirAll(filepath.Join(cfg.RunDir, "logs"), 0o755); err != nil {
		return err
	}
	pidFile := filepath.Join(cfg.RunDir, "stack.pid")
	if pid, ok := readPid(pidFile); ok && pid != os.Getpid() && alive(pid) {
		return fmt.Errorf("a stack already runs (pid %d); `make stop` first", pid)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	defer os.Remove(pidFile)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Database.
	dbURL, err := postgresURL()
	if err != nil {
		return err
	}
	// Broker first: the services need it to start.
	brokers, err := cfg.brokerAddrs()
	if err != nil {
		return err
	}
	brokerEnv := []string{
		"DEVBROKER_ADDR=" + cfg.BrokerAddr,
		"DEVBROKER_DATA_DIR=" + filepath.Join(cfg.RunDir, "kafka"),
		fmt.Sprintf("DEVBROKER_BROKERS=%d", len(brokers)),
	}
	brokerEnv = append(brokerEnv, cfg.replication()...)
	broker := newChild(cfg, "broker", "devbroker", brokerEnv)
	broker.tcp = cfg.BrokerAddr
	bctx, stopBroker := context.WithCancel(context.Background())
	defer stopBroker()
	startChild(bctx, broker)
	if err := launch.WaitTCP(ctx, cfg.BrokerAddr, 30*time.Second); err != nil {
		broker.stop(5 * time.Second)
		return fmt.Errorf("broker: %w (see %s)", err, broker.logFile())
	}

	// Migrations.
	v, err := migrate.Up(dbURL)
	if err != nil {
		broker.stop(5 * time.Second)
		return err
	}
	logf("database migrated to version %d", v)

	// Services.
	common := append([]string{"DATABASE_URL=" + dbURL, "KAFKA_BROKERS=" + strings.Join(brokers, ",")}, cfg.replication()...)
	authEnv, err := devAuth(cfg)
	if err != nil {
		broker.stop(5 * time.Second)
		return err
	}
	common = append(common, authEnv...)
	// A windower that dies hands its partitions on once its group session
	// expires: on this broker (which allows sessions from 1 s) a short one
	// makes that take about two seconds.
	if os.Getenv("WINDOWER_SESSION_TIMEOUT") == "" {
		common = append(common, "WINDOWER_SESSION_TIMEOUT=2s")
	}
	var services []*child
	for _, r := range cfg.replicas() {
		env := append([]string{strings.ToUpper(r.service) + "_ADDR=" + r.addr}, common...)
		c := newChild(cfg, r.name, r.service, env)
		c.ready = "http://" + r.addr
		services = append(services, c)
	}
	sctx, stopServices := context.WithCancel(context.Background())
	defer stopServices()
	for _, s := range services {
		startChild(sctx, s)
	}
	printWelcome(cfg)

	<-ctx.Done()
	logf("stopping")
	stopServices()
	for _, s := range services {
		s.stop(20 * time.Second)
	}
	stopBroker()
	broker.stop(10 * time.Second)
	if os.Getenv("DATABASE_URL") == "" {
		_ = exec.Command(postgresScript(), "stop").Run()
	}
	logf("stopped")
	return nil
}

func newChild(cfg settings, name, bin string, env []string) *child {
	return &child{name: name, bin: filepath.Join(binDir(), bin), env: env, runDir: cfg.RunDir, logf: logf}
}

func startChild(ctx context.Context, c *child) {
	started := make(chan struct{})
	go c.supervise(ctx, started)
	<-started
	logf("%s started (pid file %s, log %s)", c.name, c.pidFile(), c.logFile())
}

// devAuth gives the services, with AUTH_MODE=jwt and no identity provider
// configured, the local one: an HS256 secret in the run directory (made
// once) with which `ratestream token` signs tokens.
func devAuth(cfg settings) ([]string, error) {
	if os.Getenv("AUTH_MODE") != auth.ModeJWT || os.Getenv("AUTH_JWKS_URL") != "" || os.Getenv("AUTH_HS256_SECRET_FILE") != "" {
		return nil, nil
	}
	path, err := filepath.Abs(auth.DevSecretFile(cfg.RunDir))
	if err != nil {
		return nil, err
	}
	if err := auth.EnsureDevSecret(path); err != nil {
		return nil, err
	}
	env := []string{"AUTH_HS256_SECRET_FILE=" + path}
	if os.Getenv("AUTH_ISSUER") == "" {
		env = append(env, "AUTH_ISSUER="+auth.DevIssuer)
	}
	if os.Getenv("AUTH_AUDIENCE") == "" {
		env = append(env, "AUTH_AUDIENCE="+auth.DevAudience)
	}
	logf("AUTH_MODE=jwt with the local secret %s: bin/ratestream token --sub USER makes a token", path)
	return env, nil
}

func postgresURL() (string, error) {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u, nil
	}
	out, err := exec.Command(postgresScript(), "start").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return "", fmt.Errorf("start postgres: %w:\n%s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("start postgres: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// postgresScript is scripts/postgres.sh of the checkout the binaries were
// built into (bin/ sits next to scripts/), so the stack starts from any
// working directory.
func postgresScript() string {
	return filepath.Join(binDir(), "..", "scripts", "postgres.sh")
}

func printWelcome(cfg settings) {
	fmt.Printf(`
ratestream is up:
  ingest    http://%[1]s   (POST /v1/posts/{id}/ratings, POST /api/rate)
  query     http://%[2]s   (GET/POST /v1/posts, GET/POST /api/post)
  windower  http://%[3]s/metrics
  scorer    http://%[4]s/metrics
  broker    %[5]s   logs in %[6]s/logs

Try:
  curl -s -XPOST http://%[2]s/v1/posts -H 'Content-Type: application/json' -d '{"title":"hello"}'
  curl -s -XPOST http://%[1]s/v1/posts/1/ratings -H 'Content-Type: application/json' -d '{"user_id":"u-1","score":4}'
  curl -s http://%[2]s/v1/posts/1 -H 'X-User-ID: u-1'

Ctrl-C stops everything.
`, cfg.IngestAddr, cfg.QueryAddr, cfg.WindowerAddr, cfg.ScorerAddr, cfg.BrokerAddr, cfg.RunDir)
	if cfg.Replicas > 1 {
		fmt.Printf("%d processes of each service:", cfg.Replicas)
		for _, r := range cfg.replicas() {
			fmt.Printf(" %s=%s", r.name, r.addr)
		}
		fmt.Println()
	}
}

func readPid(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 0
}

func healthURLs(cfg settings) map[string]string {
	out := map[string]string{}
	for _, r := range cfg.replicas() {
		out[r.name] = "http://" + r.addr + "/healthz"
	}
	return out
}

func healthy(url string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func runBackground(cfg settings) error {
	if err := os.MkdirAll(filepath.Join(cfg.RunDir, "logs"), 0o755); err != nil {
		return err
	}
	if pid, ok := readPid(filepath.Join(cfg.RunDir, "stack.pid")); ok && alive(pid) {
		return fmt.Errorf("a stack already runs (pid %d)", pid)
	}
	logPath := filepath.Join(cfg.RunDir, "logs", "stack.log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "run")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	_ = cmd.Process.Release()
	deadline := time.Now().Add(cfg.StartTimeout)
	for time.Now().Before(deadline) {
		all := true
		for _, u := range healthURLs(cfg) {
			all = all && healthy(u)
		}
		if all {
			printWelcome(cfg)
			fmt.Printf("running in the background; `make stop` stops it, log in %s\n", logPath)
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("not healthy after %s; see %s", cfg.StartTimeout, logPath)
}

func stopStack(cfg settings) error {
	pid, ok := readPid(filepath.Join(cfg.RunDir, "stack.pid"))
	if !ok || !alive(pid) {
		fmt.Println("no stack running")
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 600 && alive(pid); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if alive(pid) {
		return fmt.Errorf("stack (pid %d) did not stop within 60s", pid)
	}
	fmt.Println("stopped")
	return nil
}

func status(cfg settings) error {
	pid, ok := readPid(filepath.Join(cfg.RunDir, "stack.pid"))
	if !ok || !alive(pid) {
		fmt.Println("stack: not running")
	} else {
		fmt.Printf("stack: running (pid %d)\n", pid)
	}
	urls := healthURLs(cfg)
	names := []string{"broker"}
	for _, r := range cfg.replicas() {
		names = append(names, r.name)
	}
	for _, name := range names {
		line := name + ": "
		if p, ok := readPid(filepath.Join(cfg.RunDir, name+".pid")); ok && alive(p) {
			line += fmt.Sprintf("running (pid %d)", p)
		} else {
			line += "not running"
		}
		if u, ok := urls[name]; ok {
			if healthy(u) {
				line += ", healthy"
			} else {
				line += ", not answering " + u
			}
		}
		fmt.Println(line)
	}
	return nil
}
