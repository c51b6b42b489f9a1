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
	const posts = 48
	var ids []int
	for i := range posts {
		st, p := call(t, "POST", s.query+"/v1/posts", fmt.Sprintf(`{"title":"faults %d"}`, i))
		if st != 201 {
			t.Fatalf("create: %d", st)
		}
		ids = append(ids, int(p["id"].(float64)))
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if st, _ := call(t, "POST", fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, ids[0]), `{"user_id":"warm","score":3}`); st != 202 {
			return fmt.Errorf("ingest answers %d", st)
		}
		return nil
	})

	// The load: each worker rates with new users, retrying a rating until
	// it gets a 2xx (a 503 while the broker is down is expected).
	var mu sync.Mutex
	raters := map[int]map[string]bool{ids[0]: {"warm": true}}
	var lastOK atomic.Int64 // unix nanos of the latest 2xx
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				post, user := ids[(w*5+i)%posts], fmt.Sprintf("w%d-%d", w, i)
				body := fmt.Sprintf(`{"user_id":%q,"score":%d}`, user, i%6)
				for {
					resp, err := client.Post(fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, post), "application/json", bytes.NewBufferString(body))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode/100 == 2 {
							lastOK.Store(time.Now().UnixNano())
							break
						}
					}
					time.Sleep(50 * time.Millisecond)
				}
				mu.Lock()
				if raters[post] == nil {
					raters[post] = map[string]bool{}
				}
				raters[post][user] = true
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	// recovered waits until a rating was accepted after the fault and every
	// partition stored an offset beyond where it stood before the fault.
	recovered := func(fault string, at time.Time, before map[int]lagRow) {
		t.Helper()
		testenv.Eventually(t, 90*time.Second, func() error {
			if lastOK.Load() < at.UnixNano() {
				return fmt.Errorf("no rating accepted since the fault")
			}
			rows, err := lagRows(t, s)
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
	settle := func() map[int]lagRow {
		t.Helper()
		time.Sleep(3 * time.Second)
		rows, err := lagRows(t, s)
		if err != nil || len(rows) < 10 {
			t.Fatalf("stored offsets: %d partitions, %v", len(rows), err)
		}
		return rows
	}

	// (a) The broker dies.
	before := settle()
	at := time.Now()
	s.kill9(t, "broker")
	recovered("broker killed -9", at, before)

	// (b) PostgreSQL stops and starts again.
	before = settle()
	at = time.Now()
	pg.Stop(t)
	time.Sleep(time.Second)
	pg.Start(t)
	recovered("PostgreSQL restarted (down 1 s)", at, before)

	// (c) The windower dies.
	before = settle()
	at = time.Now()
	s.kill9(t, "windower")
	recovered("windower killed -9", at, before)

	close(stop)
	wg.Wait()
	began := time.Now()
	waitUserCounts(t, s, ids, raters, 90*time.Second)
	n := 0
	for _, r := range raters {
		n += len(r)
	}
	t.Logf("%d distinct accepted raters, every post's user_count right %s after the load ended", n, time.Since(began).Round(10*time.Millisecond))
	// The score topic lost nothing to the broker's death or PostgreSQL's
	// restart: its latest record of every post is post_scores'.
	scoreTopicEqualsPostScores(t, s, 90*time.Second)
}
