package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratestream/ratestream/tools/testenv"
)

// gauge reads one unlabelled metric from a service's /metrics.
func gauge(base, name string) (float64, bool) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

func plus10(base string) string {
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	n, _ := strconv.Atoi(port)
	return "http://" + net.JoinHostPort(host, strconv.Itoa(n+10))
}

// make run REPLICAS=2 runs two processes of each service. When one
// windower is killed with SIGKILL, the other consumes its partitions
// again within seconds (the local stack's 2 s group session), the
// supervisor restarts it without growing its backoff (it had been
// healthy), and no rating is lost or counted twice.
func TestTwoReplicasFailOver(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kills a windower of a two-replica stack")
	}
	s := startStack(t, "REPLICAS=2")
	second := plus10(s.windower)
	testenv.WaitHTTP(t, second+"/readyz", 60*time.Second)
	testenv.WaitHTTP(t, plus10(s.ingest)+"/readyz", 60*time.Second)
	testenv.WaitHTTP(t, plus10(s.query)+"/readyz", 60*time.Second)
	const posts = 36
	var ids []int
	for i := range posts {
		st, p := call(t, "POST", s.query+"/v1/posts", fmt.Sprintf(`{"title":"replicas %d"}`, i))
		if st != 201 {
			t.Fatalf("create: %d", st)
		}
		ids = append(ids, int(p["id"].(float64)))
	}
	// Both windowers own partitions.
	testenv.Eventually(t, 30*time.Second, func() error {
		a, _ := gauge(s.windower, "windower_assigned_partitions")
		b, _ := gauge(second, "windower_assigned_partitions")
		if a == 0 || b == 0 || a+b != 12 {
			return fmt.Errorf("assigned partitions %v and %v", a, b)
		}
		return nil
	})

	// A steady load through both ingests, unique users.
	var mu sync.Mutex
	raters := map[int]map[string]bool{}
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := s.ingest
			if w%2 == 1 {
				base = plus10(s.ingest)
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				post, user := ids[(w*7+i)%posts], fmt.Sprintf("w%d-u%d", w, i)
				resp, err := client.Post(fmt.Sprintf("%s/v1/posts/%d/ratings", base, post), "application/json",
					strings.NewReader(fmt.Sprintf(`{"user_id":%q,"score":4}`, user)))
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 202 {
					sent.Add(1)
					mu.Lock()
					if raters[post] == nil {
						raters[post] = map[string]bool{}
					}
					raters[post][user] = true
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(3 * time.Second)

	kill := func() time.Duration {
		t.Helper()
		before, err := lagRows(t, s)
		if err != nil {
			t.Fatal(err)
		}
		s.kill9(t, "windower")
		killed := time.Now()
		// Every partition moves past where it stood at the kill.
		if len(before) != 12 {
			t.Fatalf("stored offsets of %d partitions, want 12", len(before))
		}
		testenv.Eventually(t, 30*time.Second, func() error {
			rows, err := lagRows(t, s)
			if err != nil {
				return err
			}
			for p, r := range rows {
				if r.Stored <= before[p].Stored {
					return fmt.Errorf("partition %d still at %d", p, r.Stored)
				}
			}
			return nil
		})
		return time.Since(killed)
	}
	first := kill()
	t.Logf("after kill -9 of a windower, every partition moved again within %s", first.Round(10*time.Millisecond))
	testenv.WaitHTTP(t, s.windower+"/readyz", 30*time.Second) // restarted
	time.Sleep(2 * time.Second)
	again := kill()
	t.Logf("killed again once it was back: every partition moved again within %s", again.Round(10*time.Millisecond))
	// Generous bounds: the figures are printed above (and by make soak-crash).
	if first > 10*time.Second || again > 10*time.Second {
		t.Errorf("partitions idle for %s and %s after a windower died", first, again)
	}
	close(stop)
	wg.Wait()

	// The supervisor restarted it at the shortest delay both times: it had
	// been healthy.
	out, err := os.ReadFile(filepath.Join(s.runDir, "stack.out"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "windower exited (signal: killed); restarting in 200ms"); n != 2 {
		t.Errorf("want two restarts of the windower after 200ms, found %d:\n%s", n, out)
	}
	waitUserCounts(t, s, ids, raters, 60*time.Second)
	t.Logf("%d ratings accepted, every post's user_count right", sent.Load())
}

type lagRow struct{ Stored int64 }

// lagRows reads the windower's stored offsets by partition.
func lagRows(t *testing.T, s *stack) (map[int]lagRow, error) {
	t.Helper()
	url := strings.TrimPrefix(s.env[0], "DATABASE_URL=")
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(t.Context())
	rows, err := conn.Query(t.Context(), `SELECT partition, next_offset FROM consumer_offsets WHERE consumer = 'ratestream-windower'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[int]lagRow{}
	for rows.Next() {
		var p int
		var r lagRow
		if err := rows.Scan(&p, &r.Stored); err != nil {
			return nil, err
		}
		m[p] = r
	}
	return m, rows.Err()
}
