// Package e2e starts the whole system as `make run` does, each part its
// own process, and checks it through the HTTP APIs only.
package e2e

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/launch"
	"github.com/ratestream/ratestream/tools/testenv"
)

type stack struct {
	ingest, query string
	windower      string // the first windower's base URL
	runDir        string
	env           []string // how to reach its database and broker
	proc          *launch.Process
}

// startStack runs `stack run` with the given extra settings.
func startStack(t *testing.T, env ...string) *stack {
	t.Helper()
	bin := testenv.Binaries(t)
	// A database of the test's own, unless env names one (DATABASE_URL=).
	var dbURL string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "DATABASE_URL="); ok {
			dbURL = v
		}
	}
	if dbURL == "" {
		dbURL = testenv.NewDatabase(t).URL
	}
	s := &stack{runDir: t.TempDir()}
	// A service's second replica listens 10 ports above the first (stack
	// REPLICAS): take ports whose neighbour 10 above is free too.
	addr := func() string {
		for range 100 {
			p := testenv.FreePort(t)
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+10)); err == nil {
				l.Close()
				return fmt.Sprintf("127.0.0.1:%d", p)
			}
		}
		t.Fatal("no pair of free ports")
		return ""
	}
	ingest, query, windower := addr(), addr(), addr()
	s.ingest, s.query, s.windower = "http://"+ingest, "http://"+query, "http://"+windower
	brokerAddr, brokers := addr(), ""
	for _, e := range env { // a cluster of the test's own (BROKERS=n)
		if v, ok := strings.CutPrefix(e, "DEVBROKER_ADDR="); ok {
			brokerAddr = v
		}
		if v, ok := strings.CutPrefix(e, "KAFKA_BROKERS="); ok {
			brokers = v
		}
	}
	s.env = []string{"DATABASE_URL=" + dbURL, "KAFKA_BROKERS=" + cmp.Or(brokers, brokerAddr)}
	out, err := os.Create(filepath.Join(s.runDir, "stack.out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	s.proc = testenv.Launch(t, launch.Spec{
		Path: filepath.Join(bin, "stack"), Args: []string{"run"}, Dir: testenv.Root(),
		Env: append([]string{
			"RATESTREAM_RUN_DIR=" + s.runDir, "DATABASE_URL=" + dbURL,
			"DEVBROKER_ADDR=" + brokerAddr, "INGEST_ADDR=" + ingest, "QUERY_ADDR=" + query,
			"WINDOWER_ADDR=" + windower, "SCORER_ADDR=" + addr(),
			"WINDOW=1s", "GRACE=1s", "LOG_LEVEL=warn"}, env...),
		Output: out, Stderr: os.Stderr,
	})
	// RATESTREAM_E2E_LOGS=DIR keeps every log of every stack under DIR;
	// registered first, so that it runs once the stack has stopped and
	// the logs are whole.
	if dir := os.Getenv("RATESTREAM_E2E_LOGS"); dir != "" {
		t.Cleanup(func() {
			keepLogs(t, filepath.Join(s.runDir, "logs"), filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+time.Now().Format("-150405")))
		})
	}
	t.Cleanup(func() {
		if err := s.proc.Stop(60 * time.Second); err != nil {
			t.Errorf("stack did not stop within 60 s of SIGTERM: %v", err)
		} else if _, err := s.proc.Exited(); err != nil {
			t.Errorf("stack did not stop cleanly: %v", err)
		}
	})
	// On failure, the windowers' last words (the run directory goes away).
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(s.runDir, "logs", "windower*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("%s, last lines:\n%s", filepath.Base(l), strings.Join(lines[max(0, len(lines)-25):], "\n"))
		}
	})
	testenv.WaitHTTP(t, s.ingest+"/readyz", 60*time.Second)
	testenv.WaitHTTP(t, s.query+"/readyz", 60*time.Second)
	return s
}

// keepLogs copies the log files of a run directory to dir, named after
// the test, a run that passes included.
func keepLogs(t *testing.T, from, dir string) {
	logs, _ := filepath.Glob(filepath.Join(from, "*.log"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("keep logs: %v", err)
		return
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, filepath.Base(l)), b, 0o644)
		}
		if err != nil {
			t.Errorf("keep logs: %v", err)
		}
	}
	t.Logf("logs kept in %s", dir)
}

func call(t *testing.T, method, url, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func TestWholeSystemThroughHTTP(t *testing.T) {
	s := startStack(t)

	// Posts, through both shapes.
	var ids []int
	for i := 0; i < 5; i++ {
		path, code := "/v1/posts", 201
		if i%2 == 1 {
			path = "/api/post"
		}
		st, p := call(t, "POST", s.query+path, fmt.Sprintf(`{"title":"post %d"}`, i))
		if st != code {
			t.Fatalf("create post: %d %v", st, p)
		}
		ids = append(ids, int(p["id"].(float64)))
	}
	p1, p2 := ids[0], ids[1]
	rate := func(post int, user string, score int) time.Time {
		st, body := call(t, "POST", fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, post), fmt.Sprintf(`{"user_id":%q,"score":%d}`, user, score))
		if st != 202 {
			t.Fatalf("rate %d by %s: %d %v", post, user, st, body)
		}
		return time.Now()
	}
	myScore := func(post int, user string) any {
		_, p := call(t, "GET", fmt.Sprintf("%s/v1/posts/%d", s.query, post), "", "X-User-ID", user)
		return p["my_score"]
	}

	// A new post is rateable within a second (ingest learns of it by
	// notification), and the first rating may wait for the windower to
	// join its group.
	testenv.Eventually(t, time.Second, func() error {
		st, body := call(t, "POST", fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, ids[4]), `{"user_id":"warm","score":3}`)
		if st != 202 {
			return fmt.Errorf("rating the newest post: %d %v", st, body)
		}
		return nil
	})
	testenv.Eventually(t, 60*time.Second, func() error {
		if v := myScore(ids[4], "warm"); v != float64(3) {
			return fmt.Errorf("my_score %v", v)
		}
		return nil
	})

	rate(p1, "u1", 5)
	rate(p1, "u2", 3)
	rate(p2, "u1", 4) // the same user on another post: both votes stand
	rate(p1, "u3", 1)
	st, body := call(t, "POST", s.ingest+"/api/rate", fmt.Sprintf(`{"post":%d,"user_id":"u3","score":4}`, p1))
	if st != 201 {
		t.Fatalf("seed-shaped re-rating: %d %v", st, body)
	}
	rerated := time.Now()
	for _, bad := range []string{`{"user_id":"u1","score":9}`, `{"user_id":"","score":1}`, `nope`} {
		if st, _ := call(t, "POST", fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, p1), bad); st < 400 || st >= 500 {
			t.Errorf("bad input %s answered %d", bad, st)
		}
	}
	if st, _ := call(t, "POST", s.ingest+"/v1/posts/999999/ratings", `{"user_id":"u1","score":1}`); st != 404 {
		t.Errorf("unknown post answered %d", st)
	}

	// my_score follows the latest rating within a (generous) bound.
	testenv.Eventually(t, 3*time.Second, func() error {
		if v := myScore(p1, "u3"); v != float64(4) {
			return fmt.Errorf("u3's my_score on post %d is %v", p1, v)
		}
		return nil
	})
	t.Logf("re-rating visible as my_score after %s", time.Since(rerated))

	// Every other vote within the same bound: posts on other partitions
	// are committed by their own batches, so one post's rating showing
	// says nothing of another's.
	want := map[[2]any]any{
		{p1, "u1"}: float64(5), {p1, "u2"}: float64(3), {p1, "u3"}: float64(4),
		{p2, "u1"}: float64(4), {p2, "u2"}: nil, {ids[2], "u1"}: nil,
	}
	testenv.Eventually(t, 3*time.Second, func() error {
		for k, v := range want {
			if got := myScore(k[0].(int), k[1].(string)); got != v {
				return fmt.Errorf("my_score of %s on post %d = %v, want %v", k[1], k[0], got, v)
			}
		}
		return nil
	})

	// Scores and distinct raters, once the scorer has caught up.
	testenv.Eventually(t, 10*time.Second, func() error {
		_, a := call(t, "GET", fmt.Sprintf("%s/v1/posts/%d", s.query, p1), "")
		_, b := call(t, "GET", fmt.Sprintf("%s/v1/posts/%d", s.query, p2), "")
		if a["user_count"] != float64(3) || a["score"] == nil || b["user_count"] != float64(1) || b["score"] != float64(4) {
			return fmt.Errorf("post %d: %v; post %d: %v", p1, a, p2, b)
		}
		return nil
	})
	_, a := call(t, "GET", fmt.Sprintf("%s/v1/posts/%d", s.query, ids[3]), "")
	if a["score"] != nil || a["user_count"] != float64(0) {
		t.Errorf("unrated post: %v", a)
	}

	// Taking a rating back: my_score within the same bound as a rating,
	// the score and the raters once the scorer has caught up; a
	// retraction of nothing changes nothing.
	del := func(post int, user string) {
		if st, body := call(t, "DELETE", fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, post), "", "X-User-ID", user); st != 202 || body["op"] != "retract" {
			t.Fatalf("retract %d by %s: %d %v", post, user, st, body)
		}
	}
	del(p2, "u1")
	del(p1, "nobody")
	retracted := time.Now()
	testenv.Eventually(t, 3*time.Second, func() error {
		if v := myScore(p2, "u1"); v != nil {
			return fmt.Errorf("u1's my_score on post %d after the retraction: %v", p2, v)
		}
		return nil
	})
	t.Logf("retraction visible as my_score after %s", time.Since(retracted))
	testenv.Eventually(t, 10*time.Second, func() error {
		_, a := call(t, "GET", fmt.Sprintf("%s/v1/posts/%d", s.query, p1), "")
		_, b := call(t, "GET", fmt.Sprintf("%s/v1/posts/%d", s.query, p2), "")
		if a["user_count"] != float64(3) || b["user_count"] != float64(0) || b["score"] != nil {
			return fmt.Errorf("post %d: %v; post %d: %v", p1, a, p2, b)
		}
		return nil
	})
	if st, _ := call(t, "DELETE", s.ingest+"/v1/posts/999999/ratings", "", "X-User-ID", "u1"); st != 404 {
		t.Errorf("retraction on an unknown post answered %d", st)
	}

	// The best first: the rated post ahead of the one whose only rating
	// was taken back, each with its ratings by score adding up to its
	// raters.
	testenv.Eventually(t, 10*time.Second, func() error {
		_, page := call(t, "GET", s.query+"/v1/posts?sort=top&limit=100", "")
		pos := map[float64]int{}
		for i, it := range page["items"].([]any) {
			item := it.(map[string]any)
			pos[item["id"].(float64)] = i
			var sum float64
			for _, c := range item["distribution"].([]any) {
				sum += c.(float64)
			}
			if sum != item["user_count"].(float64) {
				return fmt.Errorf("post %v: distribution %v, %v raters", item["id"], item["distribution"], item["user_count"])
			}
		}
		if len(pos) != 5 || pos[float64(p1)] >= pos[float64(p2)] {
			return fmt.Errorf("sort=top: %v", page["items"])
		}
		return nil
	})

	// Keyset pages list every post once.
	seen := map[float64]int{}
	after := "0"
	for {
		_, page := call(t, "GET", s.query+"/v1/posts?limit=2&after="+after, "")
		for _, it := range page["items"].([]any) {
			seen[it.(map[string]any)["id"].(float64)]++
		}
		if page["next_after"] == nil {
			break
		}
		after = strconv.Itoa(int(page["next_after"].(float64)))
	}
	if len(seen) != 5 {
		t.Errorf("keyset pages listed %d posts, want 5", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("post %v listed %d times", id, n)
		}
	}

	// The seed's page shape.
	_, page := call(t, "GET", s.query+"/api/post?limit=2&offset=0", "", "X-User-ID", "u1")
	for _, f := range []string{"limit", "offset", "count", "next", "previous", "results"} {
		if _, ok := page[f]; !ok {
			t.Errorf("seed page lacks %s: %v", f, page)
		}
	}
	first := page["results"].([]any)[0].(map[string]any)
	if first["my_score"] != float64(5) || first["user_count"] != float64(3) || first["rate_average"] == nil {
		t.Errorf("seed page's first post: %v", first)
	}
}

func TestKilledServiceIsRestarted(t *testing.T) {
	s := startStack(t)
	for _, name := range []string{"ingest", "windower"} {
		pid := s.kill9(t, name)
		killed := time.Now()
		testenv.Eventually(t, 10*time.Second, func() error {
			if np := s.pid(name); np == pid || np == 0 {
				return fmt.Errorf("%s not restarted yet", name)
			}
			return nil
		})
		t.Logf("%s restarted %s after kill -9", name, time.Since(killed))
	}
	testenv.WaitHTTP(t, s.ingest+"/healthz", 10*time.Second)
	if _, err := os.Stat(filepath.Join(s.runDir, "logs", "ingest.log")); err != nil {
		t.Errorf("no ingest log in the run directory: %v", err)
	}
	out, _ := os.ReadFile(filepath.Join(s.runDir, "stack.out"))
	for _, name := range []string{"ingest", "windower"} {
		if !strings.Contains(string(out), name+" exited (signal: killed); restarting") {
			t.Errorf("the restart of %s is not logged:\n%s", name, out)
		}
	}
}

// pid is the process a service of the stack runs as now, from the
// supervisor's pid file (0: none, e.g. between a death and its restart).
func (s *stack) pid(name string) int {
	b, _ := os.ReadFile(filepath.Join(s.runDir, name+".pid"))
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// kill9 sends SIGKILL to a service's process and returns its pid.
func (s *stack) kill9(t *testing.T, name string) int {
	t.Helper()
	pid := s.pid(name)
	if pid == 0 {
		t.Fatalf("%s is not running", name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	return pid
}

// pause stops a service's process with SIGSTOP: unlike a kill, it keeps
// its place in the supervisor. The returned func resumes it; the test's
// end does if nothing else did.
func (s *stack) pause(t *testing.T, name string) (resume func()) {
	t.Helper()
	pid := s.pid(name)
	if pid == 0 {
		t.Fatalf("%s is not running", name)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	resume = func() { once.Do(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) }
	t.Cleanup(resume)
	return resume
}
