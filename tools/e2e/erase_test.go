package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/tools/testenv"
)

// Ratings of a user race the user's erasure (16 writers, through ingest,
// while `ratestream erase` runs): once the windower has read the whole
// topic, no vote of the pseudonym the user had is left, however the
// ratings and the erase events interleaved on the topic; ratings accepted
// after the erasure count under a new pseudonym, at most one per post.
func TestRatingsRacingAnErasureDoNotOutliveIt(t *testing.T) {
	// Ingest holds ratings 100 ms for company before it writes them, the
	// erasure 10 ms: ratings that read the pseudonym just before the
	// erasure reach the topic after its erase events (stragglers).
	s := startStack(t, "RATE_LIMIT_USER=0", "KAFKA_BATCH_TIMEOUT=100ms")
	ratestream := filepath.Join(testenv.Binaries(t), "ratestream")
	var ids []int
	for i := range 6 {
		st, p := call(t, "POST", s.query+"/v1/posts", fmt.Sprintf(`{"title":"erase race %d"}`, i))
		if st != 201 {
			t.Fatalf("create: %d", st)
		}
		ids = append(ids, int(p["id"].(float64)))
	}
	live := strings.TrimPrefix(s.env[0], "DATABASE_URL=")
	conn, err := pgx.Connect(t.Context(), live)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	pseudonymOf := func(user string) string {
		var p string
		_ = conn.QueryRow(t.Context(), `SELECT pseudonym FROM user_pseudonyms WHERE user_id = $1`, user).Scan(&p)
		return p
	}
	rate := func(post int, user string) int {
		st, _ := call(t, "POST", fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, post), fmt.Sprintf(`{"user_id":%q,"score":4}`, user))
		return st
	}

	old := map[string]string{} // erased pseudonym -> user
	for round := range 4 {
		user := fmt.Sprintf("racer-%d", round)
		testenv.Eventually(t, 10*time.Second, func() error {
			if st := rate(ids[0], user); st != 202 {
				return fmt.Errorf("warm-up rating: %d", st)
			}
			return nil
		})
		old[pseudonymOf(user)] = user
		var stop atomic.Bool
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					rate(ids[(g+i)%len(ids)], user)
				}
			}()
		}
		time.Sleep(200 * time.Millisecond)
		cmd := exec.Command(ratestream, "erase", "--user", user)
		cmd.Env = append(os.Environ(), s.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("erase: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
		stop.Store(true)
		wg.Wait()
	}

	// How the race went on the topic (kcat), and where it ends.
	ends := map[int]int64{}
	erasedOn := map[string]map[int]bool{}
	stragglers := 0
	for _, m := range readAll(t, s) {
		ends[m.Partition] = max(ends[m.Partition], m.Offset+1)
		if m.Payload == nil {
			continue
		}
		e, err := rating.Unmarshal([]byte(*m.Payload))
		if err != nil {
			continue
		}
		if _, ok := old[e.UserID]; !ok {
			continue
		}
		if e.Erase {
			if erasedOn[e.UserID] == nil {
				erasedOn[e.UserID] = map[int]bool{}
			}
			erasedOn[e.UserID][m.Partition] = true
		} else if erasedOn[e.UserID][m.Partition] {
			stragglers++
		}
	}
	t.Logf("%d ratings of the erased pseudonyms reached the topic after their erase event", stragglers)
	if stragglers == 0 {
		t.Fatal("no rating reached the topic after its user's erase event: the race did not happen")
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		rows, err := lagRows(t, s)
		if err != nil {
			return err
		}
		for p, end := range ends {
			if rows[p].Stored < end {
				return fmt.Errorf("partition %d: windower at %d of %d", p, rows[p].Stored, end)
			}
		}
		return nil
	})
	pseudonyms := make([]string, 0, len(old))
	for p := range old {
		pseudonyms = append(pseudonyms, p)
	}
	var left, twice int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM ratings WHERE user_id = ANY($1)`, pseudonyms).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d votes of erased pseudonyms outlived their erasure", left)
	}
	// Each racer has at most one vote per post (under the new pseudonym).
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM (SELECT m.user_id, r.post_id FROM ratings r
		JOIN user_pseudonyms m ON m.pseudonym = r.user_id WHERE m.user_id LIKE 'racer-%' GROUP BY 1, 2 HAVING count(*) > 1) x`).Scan(&twice); err != nil || twice != 0 {
		t.Fatalf("%d (user, post) pairs with two votes (%v)", twice, err)
	}
}
