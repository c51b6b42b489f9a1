package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratestream/ratestream/pkg/launch"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/simulation/loadgen"
)

// e2eStep is one open-loop step of the whole pipeline.
type e2eStep struct {
	Load        string             `json:"load"`
	Preloaded   int64              `json:"preloaded_ratings"`
	Offered     float64            `json:"offered_per_s"`
	Achieved    float64            `json:"achieved_2xx_per_s"`
	P50ms       float64            `json:"p50_ms"`
	P99ms       float64            `json:"p99_ms"`
	Errors      float64            `json:"error_share"`
	Dropped     int                `json:"dropped"`
	LagMax      float64            `json:"windower_lag_max_events"`
	LagMaxSec   float64            `json:"windower_lag_max_s"`
	MyScoreP99  float64            `json:"my_score_visible_p99_ms"`
	Closes      []closeReport      `json:"windows_closed"`
	ScoreP99    float64            `json:"score_after_close_p99_ms"` // over every post of every window in Closes
	CPUPerOp    map[string]float64 `json:"cpu_us_per_rating"`
	CPUTotal    float64            `json:"cpu_us_per_rating_total"`
	LoadCPU     float64            `json:"load_generator_cpu_us_per_request"`
	MachineBusy float64            `json:"machine_busy_share"`
	RSSMB       map[string]float64 `json:"rss_max_mb"`
	// RowsPerRating is PostgreSQL's rows inserted, updated or deleted
	// per accepted rating, by table (pg_stat_user_tables).
	RowsPerRating map[string]float64 `json:"pg_rows_written_per_rating"`
	// WALPerRating is the WAL PostgreSQL wrote per accepted rating, in
	// bytes (pg_stat_wal, the whole server).
	WALPerRating float64 `json:"pg_wal_bytes_per_rating"`
}

// e2eBench runs the whole pipeline on this machine (broker, ingest,
// windower, scorer, query, PostgreSQL, and the load generator, all
// co-located) under the seed's random_rating load (1,000 posts, a million
// device ids), offered open-loop at fixed rates, and measures per step:
// achieved rate, latency from the due time, the windower's lag, how soon
// a rating shows as my_score, how soon after a window closes the scores
// of the posts rated in it are updated (each step starts so that one
// closes 8 s into it), CPU per rating of each process (from /proc) and
// RSS. With -e2e-preload N, the database first holds N ratings over
// 100,000 other posts.
func e2eBench(ctx context.Context, e *env, o opts) ([]figure, error) {
	url, pool, err := e.database(ctx)
	if err != nil {
		return nil, err
	}
	if o.preload > 0 {
		began := time.Now()
		if err := preload(ctx, pool, o.preload); err != nil {
			return nil, err
		}
		fmt.Printf("preloaded %d ratings over 100,000 posts in %s\n", o.preload, time.Since(began).Round(time.Second))
	}
	if cmd, err := e.spawn("mkposts", "DATABASE_URL="+url); err != nil || cmd.wait() != nil {
		return nil, fmt.Errorf("seed posts: %v", err)
	}
	brokerAddr, broker, err := e.diskBroker(12)
	if err != nil {
		return nil, err
	}
	cl, err := closeSettings()
	if err != nil {
		return nil, err
	}
	common := append([]string{"DATABASE_URL=" + url, "KAFKA_BROKERS=" + brokerAddr}, cl.env()...)
	addrs := map[string]string{}
	procs := map[string]*proc{"broker": broker}
	for _, name := range []string{"ingest", "windower", "scorer", "query"} {
		addrs[name] = freeAddr()
		p, err := e.spawn(name, append([]string{strings.ToUpper(name) + "_ADDR=" + addrs[name]}, common...)...)
		if err != nil {
			return nil, err
		}
		procs[name] = p
	}
	for _, name := range []string{"ingest", "windower", "scorer", "query"} {
		if err := launch.WaitReady(ctx, "http://"+addrs[name], 60*time.Second); err != nil {
			return nil, err
		}
	}
	tg := loadgen.Target{Ingest: "http://" + addrs["ingest"], Posts: 1000, Users: 1_000_000}
	setup := e2eSetup{addrs: addrs, procs: procs, pool: pool, closes: cl, step: o.step, posts: tg.Posts,
		scores: followScores(ctx, brokerAddr)}
	warm := loadgen.RunRate(ctx, loadgen.RatePlan{Name: "warm-up", Rate: 1000, Duration: 5 * time.Second, MaxVUs: 200, Request: tg.RateRequest()})
	fmt.Println(warm)

	var steps []e2eStep
	record := func(st e2eStep, err error) error {
		if err != nil {
			return err
		}
		st.Preloaded = o.preload
		steps = append(steps, st)
		printStep(st)
		return nil
	}
	for _, rate := range o.rates {
		err := record(e2eRun(ctx, setup, e2eStep{Load: "open loop", Offered: rate}, func() (loadgen.Result, float64, error) {
			self0 := procCPU(os.Getpid())
			r := loadgen.RunRate(ctx, loadgen.RatePlan{Name: fmt.Sprintf("e2e %.0f/s", rate), Rate: rate, Duration: o.step, MaxVUs: 400, Request: tg.RateRequest()})
			return r, procCPU(os.Getpid()) - self0, nil
		}))
		if err != nil {
			return nil, err
		}
	}
	// The same load from wrk, a client no one here wrote and far cheaper
	// per request than Go's, in a closed loop: what the pipeline sustains
	// when the load generator leaves it most of the machine.
	if _, err := exec.LookPath("wrk"); err == nil {
		err := record(e2eRun(ctx, setup, e2eStep{Load: "wrk -t2 -c200 (closed loop)"}, func() (loadgen.Result, float64, error) {
			return runWrk(ctx, "http://"+addrs["ingest"], o.step)
		}))
		if err != nil {
			return nil, err
		}
	} else {
		fmt.Println("wrk is not installed (make bench-e2e installs it): no closed-loop step")
	}
	out := filepath.Join("simulation", "out", "bench-e2e.json")
	if o.preload > 0 {
		out = filepath.Join("simulation", "out", "bench-e2e-preloaded.json")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err == nil {
		if f, err := os.Create(out); err == nil {
			_ = loadgen.WriteJSON(f, steps)
			f.Close()
			fmt.Println("wrote", out)
		}
	}
	var figs []figure
	for _, s := range steps {
		label := s.label()
		if o.preload > 0 {
			label += fmt.Sprintf(", %dM stored", o.preload/1_000_000)
		}
		figs = append(figs,
			plain("e2e", label+": achieved", s.Achieved, "ratings/s"),
			plain("e2e", label+": 2xx p99", s.P99ms, "ms"),
			plain("e2e", label+": windower lag max", s.LagMaxSec, "s"),
			plain("e2e", label+": my_score visible p99", s.MyScoreP99, "ms"),
			closeFigure(label, s),
			target("e2e", label+": CPU per rating, all processes", s.CPUTotal, "µs", "<= 100", s.CPUTotal <= 100))
	}
	return figs, nil
}

// e2eSetup is the running pipeline a step measures.
type e2eSetup struct {
	addrs  map[string]string
	procs  map[string]*proc
	pool   *pgxpool.Pool
	closes closes
	scores *topicScores // the score topic, as a query replica reads it
	step   time.Duration
	posts  int // the load rates posts 1..posts
}

// closeLead is how far into a step a window closes: each step starts so
// (at most one window's wait) while windows are at most closeAlignMax.
const closeLead, closeAlignMax = 8 * time.Second, 2 * time.Minute

// e2eRun measures the pipeline while drive loads it for the setup's step;
// drive returns the load's summary and the CPU seconds the load generator
// spent.
func e2eRun(ctx context.Context, s e2eSetup, st e2eStep, drive func() (loadgen.Result, float64, error)) (e2eStep, error) {
	addrs, procs := s.addrs, s.procs
	if s.closes.params.Window <= closeAlignMax {
		s.closes.align(ctx, closeLead)
	}
	// The windows that close while the load runs (and at least a second
	// before it ends, so that every partition's watermark passes them):
	// how soon the scores of the posts rated in each are updated.
	began := time.Now()
	var closesWG sync.WaitGroup
	var closesMu sync.Mutex
	var closed []closeReport
	var after []time.Duration
	ids := make([]int64, s.posts)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	for end := s.closes.next(began); end.Add(s.closes.grace).Before(began.Add(s.step - time.Second)); end = end.Add(s.closes.params.Window) {
		closesWG.Add(1)
		go func() {
			defer closesWG.Done()
			delays, missing, err := s.closes.scoresAfterClose(ctx, s.pool, s.scores, ids, end, 10*time.Second)
			if err != nil {
				fmt.Println("score after close:", err)
				return
			}
			r := reportClose(end, delays, missing)
			fmt.Println(" ", r)
			closesMu.Lock()
			closed = append(closed, r)
			after = append(after, delays...)
			for range missing {
				after = append(after, 10*time.Second) // beyond the bound: counted as the bound
			}
			closesMu.Unlock()
		}()
	}
	st.CPUPerOp, st.RSSMB = map[string]float64{}, map[string]float64{}
	cpu0 := cpuSeconds(procs)
	busy0, all0 := machineCPU()
	rows0, wal0, err := rowsWritten(ctx, s.pool)
	if err != nil {
		return st, err
	}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fresh []time.Duration
	// Samplers: lag and RSS; and my_score probes.
	wg.Add(2)
	go func() {
		defer wg.Done()
		for sctx.Err() == nil {
			lag := metricSum("http://"+addrs["windower"], "windower_consumer_lag")
			mu.Lock()
			st.LagMax = max(st.LagMax, lag)
			for name, p := range procs {
				st.RSSMB[name] = max(st.RSSMB[name], rssMB(p.pid))
			}
			mu.Unlock()
			sleep(sctx, 500*time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		c := &http.Client{Timeout: 5 * time.Second}
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
		for i := 0; sctx.Err() == nil; i++ {
			post, user := 1+rng.IntN(1000), fmt.Sprintf("fresh-%d-%d", rng.Uint32(), i)
			body := fmt.Sprintf(`{"user_id":%q,"score":%d}`, user, 1+rng.IntN(5))
			if loadgen.Do(sctx, c, http.MethodPost, fmt.Sprintf("http://%s/v1/posts/%d/ratings", addrs["ingest"], post), body) == http.StatusAccepted {
				acked := time.Now()
				for time.Since(acked) < 10*time.Second && sctx.Err() == nil {
					if myScoreVisible(sctx, c, "http://"+addrs["query"], post, user) {
						mu.Lock()
						fresh = append(fresh, time.Since(acked))
						mu.Unlock()
						break
					}
					sleep(sctx, 5*time.Millisecond)
				}
			}
			sleep(sctx, 200*time.Millisecond)
		}
	}()
	r, loadCPU, err := drive()
	if err != nil {
		stop()
		wg.Wait()
		return st, err
	}
	// Let the pipeline drain what was accepted, then read the CPU spent on it.
	drainUntil := time.Now().Add(30 * time.Second)
	for time.Now().Before(drainUntil) && metricSum("http://"+addrs["windower"], "windower_consumer_lag") > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	stop()
	wg.Wait()
	cpu1 := cpuSeconds(procs)
	rows1, wal1, err := rowsWritten(ctx, s.pool)
	if err != nil {
		return st, err
	}
	busy1, all1 := machineCPU()
	accepted := float64(r.Requests - r.Errors)
	st.Achieved, st.P50ms, st.P99ms, st.Errors, st.Dropped = r.PerSecond, r.P50ms, r.P99ms, r.ErrorRate, r.Dropped
	if st.Achieved > 0 {
		st.LagMaxSec = st.LagMax / st.Achieved
	}
	st.CPUPerOp = cpuPerRequest(cpu0, cpu1, accepted)
	for _, us := range st.CPUPerOp {
		st.CPUTotal += us
	}
	st.WALPerRating = float64(wal1-wal0) / accepted
	st.RowsPerRating = map[string]float64{}
	for table, n := range rows1 {
		if d := n - rows0[table]; d > 0 {
			st.RowsPerRating[table] = float64(d) / accepted
		}
	}
	st.LoadCPU = loadCPU / float64(max(r.Requests, 1)) * 1e6
	if all1 > all0 {
		st.MachineBusy = (busy1 - busy0) / (all1 - all0)
	}
	_, st.MyScoreP99, _ = spread(fresh)
	closesWG.Wait()
	st.Closes = closed
	_, st.ScoreP99, _ = spread(after)
	return st, nil
}

// rowsWritten reads, per table, the rows inserted, updated and deleted so
// far, and the WAL bytes the server wrote. The statistics reach the views
// within a second of a transaction's end; the step's drain waits longer
// than that.
func rowsWritten(ctx context.Context, pool *pgxpool.Pool) (map[string]int64, int64, error) {
	var wal int64
	if err := pool.QueryRow(ctx, `SELECT wal_bytes::bigint FROM pg_stat_wal`).Scan(&wal); err != nil {
		return nil, 0, err
	}
	rows, err := pool.Query(ctx, `SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables`)
	if err != nil {
		return nil, 0, err
	}
	out := map[string]int64{}
	for rows.Next() {
		var t string
		var n int64
		if err := rows.Scan(&t, &n); err != nil {
			return nil, 0, err
		}
		out[t] = n
	}
	return out, wal, rows.Err()
}

// closeFigure is the score's delay after its window closed, against the
// issue's 2 s; a step in which no window closed says so.
func closeFigure(label string, s e2eStep) figure {
	if len(s.Closes) == 0 {
		return plain("e2e", label+": score updated after window close p99 (no window closed)", 0, "ms")
	}
	return target("e2e", label+": score updated after window close p99", s.ScoreP99, "ms", "<= 2000", s.ScoreP99 <= 2000)
}

// label names a step: its offered rate, or the closed-loop load.
func (s e2eStep) label() string {
	if s.Offered == 0 {
		return s.Load
	}
	return fmt.Sprintf("%.0f/s offered", s.Offered)
}

func printStep(s e2eStep) {
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s: achieved %.0f/s, 2xx p50 %.1f ms p99 %.1f ms, errors %.3f%%, dropped %d\n",
		s.label(), s.Achieved, s.P50ms, s.P99ms, s.Errors*100, s.Dropped)
	fmt.Fprintf(tw, "  windower lag max %.0f events (%.2f s), my_score visible p99 %.0f ms\n",
		s.LagMax, s.LagMaxSec, s.MyScoreP99)
	if len(s.Closes) > 0 {
		fmt.Fprintf(tw, "  score updated after its window closed: p99 %.0f ms over %d windows\n", s.ScoreP99, len(s.Closes))
	} else {
		fmt.Fprintln(tw, "  no window closed during the step")
	}
	fmt.Fprintln(tw, "  process\tCPU µs/rating\tRSS max MB")
	names := make([]string, 0, len(s.CPUPerOp))
	for n := range s.CPUPerOp {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%.1f\t%.0f\n", n, s.CPUPerOp[n], s.RSSMB[n])
	}
	fmt.Fprintf(tw, "  total\t%.1f\t\n", s.CPUTotal)
	tables := make([]string, 0, len(s.RowsPerRating))
	total := 0.0
	for t, n := range s.RowsPerRating {
		tables = append(tables, fmt.Sprintf("%s %.2f", t, n))
		total += n
	}
	sort.Strings(tables)
	fmt.Fprintf(tw, "  PostgreSQL rows written per rating: %.2f (%s); WAL %.0f bytes per rating\n", total, strings.Join(tables, ", "), s.WALPerRating)
	fmt.Fprintf(tw, "  (load generator\t%.1f µs/request; machine busy %.0f%%)\n", s.LoadCPU, s.MachineBusy*100)
	tw.Flush()
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func myScoreVisible(ctx context.Context, c *http.Client, query string, post int, user string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/posts/%d", query, post), nil)
	req.Header.Set("X-User-ID", user)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var p struct {
		MyScore *int `json:"my_score"`
	}
	return json.NewDecoder(resp.Body).Decode(&p) == nil && p.MyScore != nil
}

// metricSum adds up every sample of a metric on a /metrics page.
func metricSum(base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// cpuSeconds reads user+system CPU of each process, and of every
// PostgreSQL process (the server's backends and workers) as "postgres".
func cpuSeconds(procs map[string]*proc) map[string]float64 {
	out := map[string]float64{}
	for name, p := range procs {
		out[name] = procCPU(p.pid)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "postgres" {
			out["postgres"] += procCPU(pid)
		}
	}
	return out
}

// machineCPU is the machine's busy and total CPU time from /proc/stat, in
// clock ticks: how close a step came to using every core.
func machineCPU() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		total += v
		if i != 3 && i != 4 { // idle and iowait
			busy += v
		}
	}
	return busy, total
}

// procCPU is utime+stime of a process in seconds (clock ticks of 1/100 s).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}

func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// preload stores n ratings over 100,000 posts (ids 1,000,001 on), with
// their windows and totals: the "flat as the data grows" run.
func preload(ctx context.Context, pool *pgxpool.Pool, n int64) error {
	if _, err := pool.Exec(ctx, `INSERT INTO posts (id, title) SELECT 1000000 + i, 'preloaded ' || i FROM generate_series(1, 100000) AS i`); err != nil {
		return fmt.Errorf("preload: %w", err)
	}
	return tally.Synthesize(ctx, pool, tally.Synthetic{FirstPost: 1_000_001, Posts: 100_000, Votes: n,
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Step: 10 * time.Millisecond, WindowWidth: time.Minute, Windows: true})
}
