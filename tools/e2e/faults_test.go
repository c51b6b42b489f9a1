package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratestream/ratestream/tools/testenv"
)

// Ratings with unique users flow while, one after another, the broker is
// killed with SIGKILL (the supervisor restarts it on its log), PostgreSQL
// is stopped and started again, and the windower is killed with SIGKILL.
// Nobody restarts anything by hand. Afterwards every post's user_count
// equals the distinct users who got a 2xx for it: nothing lost, nothing
// counted twice; and the score topic's latest record of every post is the
// one post_scores makes. The recovery time of each fault is logged: from the fault
// until ratings are accepted again and every partition has moved on.
func TestFaultsLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kills the broker, restarts PostgreSQL, kills the windower")
	}
	pg := testenv.NewPostgres(t)
	s := startStack(t, "DATABASE_URL="+pg.URL)
	l := startLoad(t, s, 48)

	// (a) The broker dies.
	before := l.settle()
	at := time.Now()
	s.kill9(t, "broker")
	l.recovered("broker killed -9", at, before)

	// (b) PostgreSQL stops and starts again.
	before = l.settle()
	at = time.Now()
	pg.Stop(t)
	time.Sleep(time.Second)
	pg.Start(t)
	l.recovered("PostgreSQL restarted (down 1 s)", at, before)

	// (c) The windower dies.
	before = l.settle()
	at = time.Now()
	s.kill9(t, "windower")
	l.recovered("windower killed -9", at, before)

	l.finish()
}

// load rates posts with new users from six workers, each retrying a
// rating until it gets a 2xx, and remembers every rating that got one.
type load struct {
	t      *testing.T
	s      *stack
	ids    []int
	mu     sync.Mutex
	raters map[int]map[string]bool // post -> users whose rating got a 2xx
	status map[int]int             // answers by status (0: no answer)
	lastOK atomic.Int64            // unix nanos of the latest 2xx
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startLoad(t *testing.T, s *stack, posts int) *load {
	t.Helper()
	l := &load{t: t, s: s, status: map[int]int{}, stop: make(chan struct{})}
	for i := range posts {
		st, p := call(t, "POST", s.query+"/v1/posts", fmt.Sprintf(`{"title":"faults %d"}`, i))
		if st != 201 {
			t.Fatalf("create: %d", st)
		}
		l.ids = append(l.ids, int(p["id"].(float64)))
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if st, _ := call(t, "POST", fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, l.ids[0]), `{"user_id":"warm","score":3}`); st != 202 {
			return fmt.Errorf("ingest answers %d", st)
		}
		return nil
	})
	l.raters = map[int]map[string]bool{l.ids[0]: {"warm": true}}
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 6 {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				post, user := l.ids[(w*5+i)%posts], fmt.Sprintf("w%d-%d", w, i)
				body := fmt.Sprintf(`{"user_id":%q,"score":%d}`, user, i%6)
				for {
					code := 0
					resp, err := client.Post(fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, post), "application/json", bytes.NewBufferString(body))
					if err == nil {
						resp.Body.Close()
						code = resp.StatusCode
					}
					l.mu.Lock()
					l.status[code]++
					l.mu.Unlock()
					if code/100 == 2 {
						l.lastOK.Store(time.Now().UnixNano())
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				l.mu.Lock()
				if l.raters[post] == nil {
					l.raters[post] = map[string]bool{}
				}
				l.raters[post][user] = true
				l.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	return l
}

// recovered waits until a rating was accepted after the fault and every
// partition stored an offset beyond where it stood before the fault.
func (l *load) recovered(fault string, at time.Time, before map[int]lagRow) {
	t := l.t
	t.Helper()
	testenv.Eventually(t, 90*time.Second, func() error {
		if l.lastOK.Load() < at.UnixNano() {
			return fmt.Errorf("no rating accepted since the fault")
		}
		rows, err := lagRows(t, l.s)
		if err != nil {
			return err
		}
		for p, r := range before {
			if rows[p].Stored <= r.Stored {
				return fmt.Errorf("partition %d still at %d", p, rows[p].Stored)
			}
		}
		return nil
	})
	t.Logf("%s: ratings accepted and every partition moving again %s after the fault", fault, time.Since(at).Round(10*time.Millisecond))
}

// settle lets the load run a moment and returns where every partition
// stands.
func (l *load) settle() map[int]lagRow {
	t := l.t
	t.Helper()
	time.Sleep(3 * time.Second)
	rows, err := lagRows(t, l.s)
	if err != nil || len(rows) < 10 {
		t.Fatalf("stored offsets: %d partitions, %v", len(rows), err)
	}
	return rows
}

// finish stops the load and checks that every post's user_count equals
// the distinct users who got a 2xx for it (nothing lost, nothing counted
// twice), and that the score topic's latest record of every post is the
// one post_scores makes. It returns the answers by status.
func (l *load) finish() map[int]int {
	t := l.t
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	began := time.Now()
	waitUserCounts(t, l.s, l.ids, l.raters, 90*time.Second)
	n := 0
	for _, r := range l.raters {
		n += len(r)
	}
	t.Logf("%d distinct accepted raters, every post's user_count right %s after the load ended; answers by status %v",
		n, time.Since(began).Round(10*time.Millisecond), l.status)
	scoreTopicEqualsPostScores(t, l.s, 90*time.Second)
	return l.status
}
