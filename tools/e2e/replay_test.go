package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratestream/ratestream/tools/testenv"
)

// A live stack takes ratings; `ratestream replay` rebuilds its state from
// the topic into an empty database, and `ratestream verify` finds the two
// identical; a rating changed by hand is then reported as exactly its post.
func TestReplayThenVerifyIdentical(t *testing.T) {
	s := startStack(t)
	rng := rand.New(rand.NewPCG(5, 6))
	want := map[int]map[string]bool{}
	for i := 1; i <= 5; i++ {
		if st, _ := call(t, "POST", s.query+"/v1/posts", fmt.Sprintf(`{"title":"replay %d"}`, i)); st != 201 {
			t.Fatalf("create: %d", st)
		}
		want[i] = map[string]bool{}
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if st, _ := call(t, "POST", s.ingest+"/v1/posts/5/ratings", `{"user_id":"warm","score":1}`); st != 202 {
			return fmt.Errorf("ingest answers %d", st)
		}
		want[5]["warm"] = true
		return nil
	})
	for range 400 {
		post, user := 1+rng.IntN(5), fmt.Sprintf("u%d", rng.IntN(60))
		if st, _ := call(t, "POST", fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, post), fmt.Sprintf(`{"user_id":%q,"score":%d}`, user, rng.IntN(6))); st != 202 {
			t.Fatalf("rating: %d", st)
		}
		want[post][user] = true
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		for post, users := range want {
			if _, p := call(t, "GET", fmt.Sprintf("%s/v1/posts/%d", s.query, post), ""); p["user_count"] != float64(len(users)) {
				return fmt.Errorf("post %d: user_count %v of %d", post, p["user_count"], len(users))
			}
		}
		return nil
	})
	live := strings.TrimPrefix(s.env[0], "DATABASE_URL=")
	fresh := testenv.NewDatabase(t)
	ratestream := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(testenv.Binaries(t), "ratestream"), args...)
		cmd.Env = append(os.Environ(), append(s.env, "WINDOW=1s", "GRACE=1s")...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	began := time.Now()
	if out, err := ratestream("replay", "--database", fresh.URL); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	t.Logf("replayed in %s", time.Since(began).Round(time.Millisecond))
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

	if _, err := fresh.Pool.Exec(t.Context(), `UPDATE ratings SET score = (score + 1) % 6 WHERE post_id = 3 AND user_id = (SELECT min(user_id) FROM ratings WHERE post_id = 3)`); err != nil {
		t.Fatal(err)
	}
	out, err := ratestream("verify", "--database", live, "--against", fresh.URL, "--against-group", "ratestream-replay")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.HasPrefix(out, "post 3: ratings differ") || strings.Count(out, "\n") != 2 {
		t.Fatalf("after changing one rating: %v\n%s", err, out)
	}
}
