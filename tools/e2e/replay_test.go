package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
	live := strings.TrimPrefix(s.env[0], "DATABASE_URL=")
	ratestream := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(testenv.Binaries(t), "ratestream"), args...)
		cmd.Env = append(os.Environ(), append(s.env, "WINDOW=1s", "GRACE=1s")...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Some raters are erased: replay must erase them at the same place.
	erased, pseudonyms := eraseSome(t, s, raters, 25, live, ratestream)
	waitUserCounts(t, s, ids, raters, 90*time.Second)

	fresh := testenv.NewDatabase(t)
	// Pointed at the live database by mistake, a replay is refused before
	// it writes anything: two writers of the same tables lose counts.
	if out, err := ratestream("replay", "--database", live); err == nil || !strings.Contains(out, `consumer "ratestream-windower"`) {
		t.Fatalf("replay into the live database: %v\n%s", err, out)
	}
	began = time.Now()
	if out, err := ratestream("replay", "--database", fresh.URL); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	t.Logf("replayed %d events in %s", total+1+retractions+len(erased)*12, time.Since(began).Round(time.Millisecond))
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
	forgotten(t, s, live, erased, pseudonyms, ratestream)

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

// eraseSome erases n raters (the first by name) with ratestream erase,
// takes them out of raters, and returns them with the pseudonyms they
// had.
func eraseSome(t *testing.T, s *stack, raters map[int]map[string]bool, n int, live string, ratestream func(...string) (string, error)) ([]string, []string) {
	t.Helper()
	all := map[string]bool{}
	for _, users := range raters {
		for u := range users {
			all[u] = true
		}
	}
	users := slices.Sorted(maps.Keys(all))[:n]
	conn, err := pgx.Connect(t.Context(), live)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(t.Context(), `SELECT pseudonym FROM user_pseudonyms WHERE user_id = ANY($1)`, users)
	pseudonyms, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(pseudonyms) != n {
		t.Fatalf("pseudonyms of the users to erase: %v (%d of %d)", err, len(pseudonyms), n)
	}
	args := []string{"erase", "-o", "json"}
	for _, u := range users {
		args = append(args, "--user", u)
	}
	out, err := ratestream(args...)
	if err != nil {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	var rep []struct {
		UserID  string `json:"user_id"`
		Mapped  bool   `json:"mapped"`
		InClear bool   `json:"in_clear"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep) != n {
		t.Fatalf("erase -o json: %v\n%s", err, out)
	}
	for _, r := range rep {
		if !r.Mapped || r.InClear {
			t.Errorf("erase %s: %+v", r.UserID, r)
		}
	}
	for _, u := range users {
		for _, raters := range raters {
			delete(raters, u)
		}
	}
	return users, pseudonyms
}

// forgotten checks that nothing readable names the erased users: the
// topic read from the beginning by kcat, every table of the live
// database, and the exports; and that their pseudonyms hold no vote.
func forgotten(t *testing.T, s *stack, live string, users, pseudonyms []string, ratestream func(...string) (string, error)) {
	t.Helper()
	mentions := func(what, text string) {
		for _, u := range users {
			// Quoted: "device-id-1" must not match inside "device-id-12".
			if strings.Contains(text, `"`+u+`"`) || strings.Contains(text, ","+u+",") {
				t.Errorf("%s names erased user %s", what, u)
				return
			}
		}
	}
	var topic strings.Builder
	erasures := 0
	for _, m := range readAll(t, s) {
		key, value := "", ""
		if m.Key != nil {
			key = *m.Key
		}
		if m.Payload != nil {
			value = *m.Payload
		}
		topic.WriteString(key + " " + value + "\n")
		if strings.Contains(value, `"op":"erase"`) {
			erasures++
		}
	}
	mentions("the topic (kcat)", topic.String())
	if erasures != len(users)*12 {
		t.Errorf("%d erase events on the topic, want %d", erasures, len(users)*12)
	}
	conn, err := pgx.Connect(t.Context(), live)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Every text column of every table of the schema, as JSON.
	rows, _ := conn.Query(t.Context(), `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 10 {
		t.Fatalf("tables: %v %v", tables, err)
	}
	for _, table := range tables {
		var dump string
		if err := conn.QueryRow(t.Context(), `SELECT coalesce(string_agg(to_jsonb(x)::text, ','), '') FROM `+pgx.Identifier{table}.Sanitize()+` x`).Scan(&dump); err != nil {
			t.Fatal(err)
		}
		mentions("table "+table, dump)
	}
	var votes int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM ratings WHERE user_id = ANY($1)`, pseudonyms).Scan(&votes); err != nil || votes != 0 {
		t.Errorf("%d votes of erased pseudonyms left (%v)", votes, err)
	}
	for _, what := range []string{"ratings", "events"} {
		file := filepath.Join(t.TempDir(), what+".csv")
		if out, err := ratestream("export", what, "-o", "csv", "--file", file); err != nil {
			t.Fatalf("export %s: %v\n%s", what, err, out)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		mentions("export "+what, strings.ReplaceAll(string(b), "\n", ",\n,"))
	}
}
