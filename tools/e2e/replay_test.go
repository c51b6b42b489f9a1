package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratestream/ratestream/tools/testenv"
)

// A live stack takes 100,000 ratings while its windower and scorer are
// killed with SIGKILL; `ratestream replay` rebuilds its state from the
// topic into an empty database, and `ratestream verify` finds the two
// identical; `ratestream backtest` with the live settings reproduces
// every live score; a rating changed by hand is then reported as exactly
// its post.
func TestReplayThenVerifyIdentical(t *testing.T) {
	if testing.Short() {
		t.Skip("long: 100,000 ratings under kills, then a replay")
	}
	s := startStack(t, "WINDOWER_SESSION_TIMEOUT=6s", "WINDOWER_STALL_TIMEOUT=10s")
	const posts, total = 20, 100_000
	var ids []int
	for i := range posts {
		st, p := call(t, "POST", s.query+"/v1/posts", fmt.Sprintf(`{"title":"replay %d"}`, i))
		if st != 201 {
			t.Fatalf("create: %d", st)
		}
		ids = append(ids, int(p["id"].(float64)))
	}
	began := time.Now()
	raters := rateUnderKills(t, s, ids, total, 200*time.Microsecond, 99) // at most 5,000 ratings/s
	t.Logf("%d ratings accepted in %s under kills", total, time.Since(began).Round(time.Millisecond))
	// Some raters take their rating back, and some of them rate again:
	// replay must land on the same rows, tombstones included.
	retractions := retractSome(t, s, raters, 500, 99)
	waitUserCounts(t, s, ids, raters, 90*time.Second)

	live := strings.TrimPrefix(s.env[0], "DATABASE_URL=")
	fresh := testenv.NewDatabase(t)
	ratestream := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(testenv.Binaries(t), "ratestream"), args...)
		cmd.Env = append(os.Environ(), append(s.env, "WINDOW=1s", "GRACE=1s")...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Pointed at the live database by mistake, a replay is refused before
	// it writes anything: two writers of the same tables lose counts.
	if out, err := ratestream("replay", "--database", live); err == nil || !strings.Contains(out, `consumer "ratestream-windower"`) {
		t.Fatalf("replay into the live database: %v\n%s", err, out)
	}
	began = time.Now()
	if out, err := ratestream("replay", "--database", fresh.URL); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	t.Logf("replayed %d events in %s", total+1+retractions, time.Since(began).Round(time.Millisecond))
	// The live scorer may still be settling the last windows: verify until
	// it has (bounded), then it must say identical.
	var out string
	testenv.Eventually(t, 30*time.Second, func() error {
		var err error
		out, err = ratestream("verify", "--database", live, "--against", fresh.URL, "--against-group", "ratestream-replay")
		if err != nil || !strings.HasPrefix(out, "identical") {
			return fmt.Errorf("verify: %v\n%s", err, out)
		}
		return nil
	})
	t.Log(strings.TrimSpace(out))

	// The live strategy and settings, backtested from the stored windows
	// at the same event time, give every live score.
	testenv.Eventually(t, 30*time.Second, func() error {
		out, err := ratestream("backtest", "-o", "json")
		if err != nil {
			return fmt.Errorf("backtest: %v\n%s", err, out)
		}
		var rep struct {
			Posts []struct {
				PostID     int64    `json:"post_id"`
				Difference *float64 `json:"difference"`
			} `json:"posts"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			return fmt.Errorf("backtest -o json: %v\n%s", err, out)
		}
		if len(rep.Posts) != posts {
			return fmt.Errorf("backtest: %d posts, want %d", len(rep.Posts), posts)
		}
		for _, p := range rep.Posts {
			if p.Difference == nil || math.Abs(*p.Difference) > 1e-9 {
				return fmt.Errorf("post %d: backtest differs from the live score by %v", p.PostID, p.Difference)
			}
		}
		return nil
	})

	post := ids[2]
	if _, err := fresh.Pool.Exec(t.Context(), `UPDATE ratings SET score = (score + 1) % 6 WHERE post_id = $1 AND user_id = (SELECT min(user_id) FROM ratings WHERE post_id = $1)`, post); err != nil {
		t.Fatal(err)
	}
	out, err := ratestream("verify", "--database", live, "--against", fresh.URL, "--against-group", "ratestream-replay")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.HasPrefix(out, fmt.Sprintf("post %d: ratings differ", post)) || strings.Count(out, "\n") != 2 {
		t.Fatalf("after changing one rating: %v\n%s", err, out)
	}
}
