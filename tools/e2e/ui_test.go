package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ratestream/ratestream/tools/testenv"
)

// A campaign against a live stack shows on the web page, in a real
// browser (headless Chromium, installed by make test): the list flags the
// campaigned post and links to it; its page shades the held-out windows.
// Screenshots of both pages go to simulation/out/.
func TestWebPageShowsACampaign(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: scripts/need.sh chromium=chromium installs it (make test does)")
	}
	s := startStack(t)
	for _, title := range []string{"Quiet post", "Campaigned post", "Another post"} {
		if st, _ := call(t, "POST", s.query+"/v1/posts", fmt.Sprintf(`{"title":%q}`, title)); st != 201 {
			t.Fatalf("create: %d", st)
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	rate := func(post int, user string, score int) {
		resp, err := client.Post(fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, post), "application/json",
			bytes.NewBufferString(fmt.Sprintf(`{"user_id":%q,"score":%d}`, user, score)))
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Errorf("rating: %d", resp.StatusCode)
		}
	}
	waitPostsKnown(t, s, 3)
	// Honest raters at a steady pace (WINDOW=1s on the test stack).
	rng := rand.New(rand.NewPCG(3, 4))
	honest := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			rate(1+rng.IntN(3), fmt.Sprintf("honest-%d", rng.Uint64()), 3+rng.IntN(3))
		}
	}
	honest(15 * time.Second)
	// The campaign: 400 new accounts give post 2 a zero within a second.
	var wg sync.WaitGroup
	for w := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				rate(2, fmt.Sprintf("campaign-%d-%d", w, i), 0)
			}
		}()
	}
	wg.Wait()
	honest(5 * time.Second)
	testenv.Eventually(t, 30*time.Second, func() error {
		_, p := call(t, "GET", s.query+"/v1/posts/2", "")
		if f, _ := p["flags"].(map[string]any); f["under_campaign"] != true || p["score"] == nil || p["score"].(float64) < 2.5 {
			return fmt.Errorf("post 2: %v", p)
		}
		return nil
	})

	out := filepath.Join(testenv.Root(), "simulation", "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1100, 1400))
	actx, cancelA := chromedp.NewExecAllocator(t.Context(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()

	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	_, err = chromedp.Run(ctx, chromedp.Navigate(s.query+"/ui/"))
	step("open the list", err)
	_, err = chromedp.Run(ctx, chromedp.WaitVisible(chromedp.CSS("main table")))
	step("wait for the table", err)
	list, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	step("read the list", err)
	linkCount, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('a[href="/ui/posts/2"]').length`))
	step("count links", err)
	listShot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	step("screenshot the list", err)
	_, err = chromedp.Run(ctx, chromedp.Click(chromedp.CSS(`a[href="/ui/posts/2"]`)))
	step("follow the link", err)
	_, err = chromedp.Run(ctx, chromedp.WaitVisible(chromedp.CSS("figure svg")))
	step("wait for the charts", err)
	flagText, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main > p")))
	step("read the flag", err)
	shaded, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg rect[fill="#f4c7c3"]').length`))
	step("count shaded windows", err)
	postShot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	step("screenshot the post", err)
	if linkCount != 1 || !strings.Contains(list, "Campaigned post") || !strings.Contains(list, "under campaign since") {
		t.Errorf("list page: %d links to post 2; text:\n%s", linkCount, list)
	}
	if !strings.Contains(flagText, "Under campaign since") || shaded < 2 { // a window on each chart, and the legends
		t.Errorf("post page: %d shaded rectangles; %q", shaded, flagText)
	}
	// The best first, from the order links: a rank column and each
	// post's ratings by score.
	_, err = chromedp.Run(ctx, chromedp.Navigate(s.query+"/ui/"))
	step("open the list again", err)
	_, err = chromedp.Run(ctx, chromedp.Click(chromedp.CSS(`nav a[href="/ui/?sort=top"]`)))
	step("follow the top rated link", err)
	_, err = chromedp.Run(ctx, chromedp.WaitVisible(chromedp.CSS("main table")))
	step("wait for the sorted table", err)
	top, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main table")))
	step("read the sorted list", err)
	if !strings.Contains(top, "Rank") || !strings.Contains(top, "Ratings by score") || !strings.Contains(top, "5: ") {
		t.Errorf("top rated page:\n%s", top)
	}
	for name, b := range map[string][]byte{"ui-list.png": listShot, "ui-post.png": postShot} {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", out)
}
