package e2e

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// TestRandomKillsLoseNothing kills the windower and the scorer with
// SIGKILL at random moments while ratings arrive through ingest (2 to 4
// kills each, some within a second of a restart, while the restarted
// process is joining its group), and checks that every post ends with
// user_count equal to the distinct users who got a 2xx for it. It runs
// three times (RATESTREAM_SOAK_RUNS sets how many: `make soak-crash`),
// every second run with two processes of each service (REPLICAS=2).
func TestRandomKillsLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("long: three runs of the stack under kills")
	}
	runs := 3
	if v := os.Getenv("RATESTREAM_SOAK_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("RATESTREAM_SOAK_RUNS=%q: want a positive number", v)
		}
		runs = n
	}
	held := 0
	for i := range runs {
		// Every second run has two processes of each service: two
		// windowers share the partitions, two scorers claim posts.
		replicas := 1 + i%2
		if t.Run(fmt.Sprintf("run-%d-replicas-%d", i, replicas), func(t *testing.T) { crashRun(t, uint64(i), replicas) }) {
			held++
		}
	}
	t.Logf("soak-crash: %d of %d runs held", held, runs)
}

func crashRun(t *testing.T, seed uint64, replicas int) {
	// A 6 s group session, as on a default Kafka (tools/e2e/replicas_test.go
	// covers the local stack's 2 s failover). Kills landing while a
	// restarted windower joins leave members that are gone in the group;
	// the windowers' monitors force the rebalance that drops them, and
	// must not keep the group rebalancing while doing so.
	s := startStack(t, "WINDOWER_SESSION_TIMEOUT=6s", "WINDOWER_STALL_TIMEOUT=10s", "WINDOWER_MONITOR_INTERVAL=1s", fmt.Sprintf("REPLICAS=%d", replicas))
	const posts, total = 40, 20000
	var ids []int
	for i := 0; i < posts; i++ {
		st, p := call(t, "POST", s.query+"/v1/posts", fmt.Sprintf(`{"title":"crash %d"}`, i))
		if st != 201 {
			t.Fatalf("create post: %d %v", st, p)
		}
		ids = append(ids, int(p["id"].(float64)))
	}
	raters := rateUnderKills(t, s, ids, total, 500*time.Microsecond, seed) // about 2,000 ratings/s

	began := time.Now()
	waitUserCounts(t, s, ids, raters, 90*time.Second)
	t.Logf("every post's user_count right %s after the load ended", time.Since(began).Round(time.Millisecond))
	scoreTopicEqualsPostScores(t, s, 60*time.Second)
}

// scoreTopicEqualsPostScores waits until the latest record of every post
// on the score topic, read from the beginning by kcat (librdkafka), is
// the record its post_scores row makes, byte for byte, and no record
// waits in the outbox.
func scoreTopicEqualsPostScores(t *testing.T, s *stack, within time.Duration) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), strings.TrimPrefix(s.env[0], "DATABASE_URL="))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	testenv.Eventually(t, within, func() error {
		waiting, err := tally.OutboxBacklog(t.Context(), conn)
		if err != nil || waiting != 0 {
			return fmt.Errorf("%d records in the outbox (%v)", waiting, err)
		}
		want, err := tally.ScoreRecords(t.Context(), conn)
		if err != nil {
			return err
		}
		latest := map[string]string{}
		for _, m := range readTopic(t, s, "post-scores.v1") {
			if m.Key != nil && m.Payload != nil {
				latest[*m.Key] = *m.Payload
			}
		}
		if len(latest) != len(want) {
			return fmt.Errorf("%d posts on the score topic, %d in post_scores", len(latest), len(want))
		}
		for id, rec := range want {
			if got := latest[strconv.FormatInt(id, 10)]; got != string(rec) {
				return fmt.Errorf("post %d: latest record %s, post_scores makes %s", id, got, rec)
			}
		}
		return nil
	})
}

// waitUserCounts waits until every post's user_count equals its distinct
// accepted raters.
func waitUserCounts(t *testing.T, s *stack, ids []int, raters map[int]map[string]bool, within time.Duration) {
	t.Helper()
	testenv.Eventually(t, within, func() error {
		var wrong []string
		for _, id := range ids {
			_, p := call(t, "GET", fmt.Sprintf("%s/v1/posts/%d", s.query, id), "")
			if got, want := p["user_count"], float64(len(raters[id])); got != want {
				wrong = append(wrong, fmt.Sprintf("post %d: %v of %v", id, got, want))
			}
		}
		if len(wrong) > 0 {
			return fmt.Errorf("%d posts short: %s", len(wrong), strings.Join(wrong, "; "))
		}
		return nil
	})
}

// rateUnderKills sends total ratings of the given posts through ingest,
// one every interval (random users of a pool of 3,000 for every 20,000
// ratings, random scores), each retried until it gets a 2xx, while the
// windower and the scorer are killed at random (killRandomly). It returns
// the users who got a 2xx, by post.
func rateUnderKills(t *testing.T, s *stack, ids []int, total int, interval time.Duration, seed uint64) map[int]map[string]bool {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 17))
	users := max(3000, total*3/20)
	rateURL := func(post int) string { return fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, post) }
	warm := ids[len(ids)-1]
	testenv.Eventually(t, 5*time.Second, func() error {
		if st, _ := call(t, "POST", rateURL(warm), `{"user_id":"warm","score":3}`); st != 202 {
			return fmt.Errorf("ingest answers %d", st)
		}
		return nil
	})

	// The load: paced, each rating retried until it gets a 2xx.
	type job struct {
		post  int
		user  string
		score int
	}
	jobs := make(chan job, 256)
	var mu sync.Mutex
	raters := map[int]map[string]bool{warm: {"warm": true}}
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				body := fmt.Sprintf(`{"user_id":%q,"score":%d}`, j.user, j.score)
				for attempt := 0; ; attempt++ {
					resp, err := client.Post(rateURL(j.post), "application/json", bytes.NewBufferString(body))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode/100 == 2 {
							break
						}
					}
					if attempt == 50 {
						t.Errorf("rating %v never accepted: %v", j, err)
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				mu.Lock()
				if raters[j.post] == nil {
					raters[j.post] = map[string]bool{}
				}
				raters[j.post][j.user] = true
				mu.Unlock()
			}
		}()
	}
	killsDone := make(chan struct{})
	go func() {
		defer close(killsDone)
		var kwg sync.WaitGroup
		for _, name := range []string{"windower", "scorer"} {
			kwg.Add(1)
			krng := rand.New(rand.NewPCG(seed, uint64(len(name))))
			go func() {
				defer kwg.Done()
				killRandomly(t, s, name, krng)
			}()
		}
		kwg.Wait()
	}()
	tick := time.NewTicker(interval)
	for i := 0; i < total; i++ {
		<-tick.C
		jobs <- job{ids[rng.IntN(len(ids))], "u-" + strconv.Itoa(rng.IntN(users)), rng.IntN(6)}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	<-killsDone
	return raters
}

// killRandomly sends SIGKILL to a service 2 to 4 times over about ten
// seconds; after about half the kills it waits for the restart and kills
// the new process again within a second.
func killRandomly(t *testing.T, s *stack, name string, rng *rand.Rand) {
	pid := func() int { return s.pid(name) }
	restarted := func(old int) int {
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if p := pid(); p != 0 && p != old {
				return p
			}
		}
		t.Errorf("%s not restarted within 10s", name)
		return 0
	}
	kills := 2 + rng.IntN(3)
	for k := 0; k < kills; k++ {
		time.Sleep(time.Duration(300+rng.IntN(3000)) * time.Millisecond)
		p := pid()
		if p == 0 {
			continue
		}
		_ = syscall.Kill(p, syscall.SIGKILL)
		if k+1 < kills && rng.IntN(2) == 0 {
			np := restarted(p)
			time.Sleep(time.Duration(100+rng.IntN(800)) * time.Millisecond)
			if np != 0 {
				_ = syscall.Kill(np, syscall.SIGKILL)
				k++
			}
		}
	}
}

// retractSome takes back n ratings of raters (chosen by seed), one after
// another so that each follows the rating it takes back, rates again
// after one in five of them, and keeps raters true to what stands. It
// returns how many events it sent.
func retractSome(t *testing.T, s *stack, raters map[int]map[string]bool, n int, seed uint64) int {
	t.Helper()
	type pair struct {
		post int
		user string
	}
	var all []pair
	for post, users := range raters {
		for u := range users {
			all = append(all, pair{post, u})
		}
	}
	slices.SortFunc(all, func(a, b pair) int { return cmp.Or(cmp.Compare(a.post, b.post), strings.Compare(a.user, b.user)) })
	rng := rand.New(rand.NewPCG(seed, 23))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	sent := 0
	until2xx := func(method, url, body string, header ...string) {
		testenv.Eventually(t, 10*time.Second, func() error {
			if st, p := call(t, method, url, body, header...); st/100 != 2 {
				return fmt.Errorf("%s %s: %d %v", method, url, st, p)
			}
			return nil
		})
		sent++
	}
	for i, p := range all[:min(n, len(all))] {
		url := fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, p.post)
		until2xx("DELETE", url, "", "X-User-ID", p.user)
		delete(raters[p.post], p.user)
		if i%5 == 0 {
			until2xx("POST", url, fmt.Sprintf(`{"user_id":%q,"score":%d}`, p.user, rng.IntN(6)))
			raters[p.post][p.user] = true
		}
	}
	return sent
}
