package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ratestream/ratestream/tools/testenv"
)

type harness struct {
	*testenv.Service
	base string
	db   *testenv.Database
	// kafka has the score topic, fed from db's outbox by the scorer's
	// relay.
	kafka *testenv.Broker
	logs  *observer.ObservedLogs
}

func start(t *testing.T, tweak ...func(*Config)) *harness {
	t.Helper()
	h := &harness{db: testenv.NewDatabase(t)}
	cfg := testenv.Defaults(t, func(c *Config) *string { return &c.Addr })
	cfg.DB.URL = h.db.URL
	h.kafka = relayScores(t, h.db)
	cfg.Kafka = h.kafka.Config
	for _, f := range tweak {
		f(&cfg)
	}
	h.Service = testenv.Serve(t, "query", cfg.Addr, func(ctx context.Context, log *zap.Logger) error { return run(ctx, log, cfg) }).WaitReady(t)
	h.base, h.logs = h.Base, h.Logs
	return h
}

func (h *harness) do(t *testing.T, method, path, body string, header ...string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, resp.Header, m
}

func TestCreateAndReadPosts(t *testing.T) {
	h := start(t)
	st, hdr, p := h.do(t, "POST", "/v1/posts", `{"title":"  First post  "}`)
	if st != 201 || p["title"] != "First post" || p["score"] != nil || p["user_count"] != float64(0) || hdr.Get("Location") == "" {
		t.Fatalf("create: %d %v", st, p)
	}
	id := int64(p["id"].(float64))
	st, _, p = h.do(t, "POST", "/api/post", `{"title":"seed shaped"}`)
	if _, ok := p["rate_average"]; st != 201 || !ok || p["user_count"] != float64(0) {
		t.Fatalf("seed create: %d %v", st, p)
	}
	st, _, p = h.do(t, "GET", fmt.Sprintf("/v1/posts/%d", id), "")
	if st != 200 || p["title"] != "First post" || p["score"] != nil || p["my_score"] != nil {
		t.Fatalf("get: %d %v", st, p)
	}
	// Titles are stored in NFC; emoji joined by ZWJ stay allowed.
	st, _, p = h.do(t, "POST", "/v1/posts", `{"title":"Cafe\u0301 \ud83d\udc69\u200d\ud83d\udcbb"}`)
	if want := "Caf\u00e9 \U0001F469\u200d\U0001F4BB"; st != 201 || p["title"] != want {
		t.Fatalf("create unicode title: %d %v, want title %q", st, p, want)
	}
	// A post inserted behind the service's back (another instance) is
	// found too.
	var other int64
	if err := h.db.Pool.QueryRow(context.Background(), `INSERT INTO posts (title) VALUES ('elsewhere') RETURNING id`).Scan(&other); err != nil {
		t.Fatal(err)
	}
	if st, _, p = h.do(t, "GET", fmt.Sprintf("/v1/posts/%d", other), ""); st != 200 || p["title"] != "elsewhere" {
		t.Fatalf("get other: %d %v", st, p)
	}
}

func TestValidation(t *testing.T) {
	h := start(t)
	cases := []struct {
		method, path, body string
		header             []string
		status             int
		field              string
	}{
		{"POST", "/v1/posts", `{"title":""}`, nil, 422, "title"},
		{"POST", "/v1/posts", `{"title":"   "}`, nil, 422, "title"},
		{"POST", "/v1/posts", `{"title":"` + strings.Repeat("é", 201) + `"}`, nil, 422, "title"},
		{"POST", "/v1/posts", `{"title":5}`, nil, 422, "title"},
		{"POST", "/v1/posts", `{}`, nil, 422, "title"},
		{"POST", "/v1/posts", `{"title":"x","score":1}`, nil, 422, "score"},
		{"POST", "/v1/posts", `{"title":`, nil, 400, ""},
		{"POST", "/api/post", `["x"]`, nil, 400, ""},
		{"POST", "/v1/posts", `{"title":"a\u0000b"}`, nil, 422, "title"},
		{"POST", "/api/post", `{"title":"a\u0000b"}`, nil, 422, "title"},
		{"POST", "/v1/posts", `{"title":"two\nlines"}`, nil, 422, "title"},
		{"POST", "/v1/posts", `{"title":"cr\rhere"}`, nil, 422, "title"},
		{"POST", "/v1/posts", `{"title":"c1\u0085here"}`, nil, 422, "title"},
		{"POST", "/v1/posts", `{"title":"line\u2028sep"}`, nil, 422, "title"},
		{"POST", "/v1/posts", `{"title":"\u200b\u200c\u200d\ufeff"}`, nil, 422, "title"},
		{"POST", "/v1/posts", `{"title":"\u0301\u0302"}`, nil, 422, "title"},
		{"POST", "/v1/posts", "{\"title\":\"bad \xff bytes\"}", nil, 400, "title"},
		{"POST", "/v1/posts", `{"title":"\ud800"}`, nil, 400, "title"},
		{"POST", "/v1/posts", `{"title":"a","title":"b"}`, nil, 400, "title"},
		{"GET", "/v1/posts", "", []string{"X-User-ID", "a\xff\xfeb"}, 400, "X-User-ID"},
		{"GET", "/v1/posts", "", []string{"X-User-ID", "e\u0301"}, 400, "X-User-ID"},
		{"GET", "/v1/posts/1", "", []string{"X-User-ID", "a\u200bb"}, 400, "X-User-ID"},
		{"GET", "/v1/posts/abc", "", nil, 400, "id"},
		{"GET", "/v1/posts/0", "", nil, 400, "id"},
		{"GET", "/v1/posts/987654", "", nil, 404, "id"},
		{"GET", "/v1/posts?limit=0", "", nil, 400, "limit"},
		{"GET", "/v1/posts?limit=101", "", nil, 400, "limit"},
		{"GET", "/v1/posts?limit=ten", "", nil, 400, "limit"},
		{"GET", "/v1/posts?after=-1", "", nil, 400, "after"},
		{"GET", "/v1/posts?after=x", "", nil, 400, "after"},
		{"GET", "/v1/posts", "", []string{"X-User-ID", strings.Repeat("u", 129)}, 400, "X-User-ID"},
		{"GET", "/api/post", "", []string{"X-User-ID", strings.Repeat("u", 129)}, 400, "X-User-ID"},
	}
	for _, tc := range cases {
		st, hdr, p := h.do(t, tc.method, tc.path, tc.body, tc.header...)
		if st != tc.status || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s %s: %d %q, want %d problem", tc.method, tc.path, tc.body, st, hdr.Get("Content-Type"), tc.status)
			continue
		}
		if tc.field != "" && p["field"] != tc.field {
			t.Errorf("%s %s: field %v, want %s", tc.method, tc.path, p["field"], tc.field)
		}
	}
	req, _ := http.NewRequest("POST", h.base+"/v1/posts", strings.NewReader(`{"title":"x"}`))
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("text/plain: %d, want 415", resp.StatusCode)
	}
}

func TestKeysetPagesListEveryPostOnce(t *testing.T) {
	h := start(t)
	for i := 0; i < 25; i++ {
		if st, _, _ := h.do(t, "POST", "/v1/posts", fmt.Sprintf(`{"title":"p%d"}`, i)); st != 201 {
			t.Fatal(st)
		}
	}
	seen := map[float64]bool{}
	after, pages := "0", 0
	for {
		st, _, p := h.do(t, "GET", "/v1/posts?limit=10&after="+after, "")
		if st != 200 {
			t.Fatal(st, p)
		}
		pages++
		for _, it := range p["items"].([]any) {
			id := it.(map[string]any)["id"].(float64)
			if seen[id] {
				t.Fatalf("post %v listed twice", id)
			}
			seen[id] = true
		}
		if p["next_after"] == nil {
			break
		}
		after = fmt.Sprint(int64(p["next_after"].(float64)))
	}
	if len(seen) != 25 || pages != 3 {
		t.Fatalf("%d posts over %d pages, want 25 over 3", len(seen), pages)
	}
}

func TestSeedPagesAndMyScore(t *testing.T) {
	h := start(t)
	for i := 0; i < 12; i++ {
		h.do(t, "POST", "/api/post", fmt.Sprintf(`{"title":"p%d"}`, i))
	}
	if _, err := h.db.Pool.Exec(context.Background(), `
		INSERT INTO ratings (post_id, user_id, score, rated_at, event_id, window_start)
		VALUES (2, 'pseudonym-of-me', 4, now(), gen_random_uuid(), now()), (3, 'me', 1, now(), gen_random_uuid(), now());
		INSERT INTO user_pseudonyms VALUES ('me', 'pseudonym-of-me')`); err != nil {
		t.Fatal(err)
	}
	// Votes are stored under pseudonyms: "me"'s is post 2's, and the vote
	// stored under the id "me" itself (post 3) is not "me"'s, since "me"
	// has a pseudonym (below). A user without one reads votes stored under
	// the id (another producer writing ids in clear).
	if _, err := h.db.Pool.Exec(context.Background(), `INSERT INTO ratings (post_id, user_id, score, rated_at, event_id, window_start)
		VALUES (4, 'written-in-clear', 2, now(), gen_random_uuid(), now())`); err != nil {
		t.Fatal(err)
	}
	_, _, clear := h.do(t, "GET", "/v1/posts/4", "", "X-User-ID", "written-in-clear")
	if clear["my_score"] != float64(2) {
		t.Errorf("a user without a pseudonym: my_score %v, want 2", clear["my_score"])
	}
	st, _, p := h.do(t, "GET", "/api/post", "", "X-User-ID", "me")
	if st != 200 || p["count"] != float64(12) || p["limit"] != float64(10) || p["offset"] != float64(0) || p["previous"] != nil {
		t.Fatalf("first page: %d %v", st, p)
	}
	if next, _ := p["next"].(string); !strings.HasSuffix(next, "/api/post?limit=10&offset=10") {
		t.Errorf("next = %v", p["next"])
	}
	results := p["results"].([]any)
	if len(results) != 10 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		m := r.(map[string]any)
		want := any(nil)
		if m["id"] == float64(2) {
			want = float64(4)
		}
		if m["my_score"] != want {
			t.Errorf("post %v my_score %v, want %v", m["id"], m["my_score"], want)
		}
		if _, ok := m["rate_average"]; !ok {
			t.Errorf("seed result without rate_average: %v", m)
		}
	}
	// The seed's lenient parameters: bad values fall back to defaults,
	// limits above 50 are cut to 50.
	for q, want := range map[string][2]float64{"limit=abc&offset=zz": {10, 0}, "limit=500": {50, 0}, "limit=-3&offset=-2": {10, 0}, "limit=5&offset=10": {5, 10}} {
		_, _, p := h.do(t, "GET", "/api/post?"+q, "")
		if p["limit"] != want[0] || p["offset"] != want[1] {
			t.Errorf("%s: limit %v offset %v, want %v", q, p["limit"], p["offset"], want)
		}
	}
	_, _, p = h.do(t, "GET", "/api/post?limit=5&offset=10", "")
	if prev, _ := p["previous"].(string); !strings.HasSuffix(prev, "/api/post?limit=5&offset=5") || p["next"] != nil {
		t.Errorf("last page links: previous %v next %v", p["previous"], p["next"])
	}
}

// Concurrent callers share my_score queries; each must get its own
// ratings and nobody else's.
func TestConcurrentCallersGetTheirOwnScores(t *testing.T) {
	h := start(t)
	for i := 0; i < 5; i++ {
		h.do(t, "POST", "/v1/posts", fmt.Sprintf(`{"title":"p%d"}`, i))
	}
	if _, err := h.db.Pool.Exec(context.Background(), `
		INSERT INTO ratings (post_id, user_id, score, rated_at, event_id, window_start)
		SELECT p, 'user-' || u, (p + u) % 6, now(), gen_random_uuid(), now()
		FROM generate_series(1, 5) p, generate_series(0, 39) u WHERE (p + u) % 3 <> 0;
		INSERT INTO user_pseudonyms SELECT DISTINCT user_id, user_id FROM ratings`); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 40)
	for u := 0; u < 40; u++ {
		go func() {
			_, _, page := h.do(t, "GET", "/v1/posts?limit=5", "", "X-User-ID", fmt.Sprintf("user-%d", u))
			for _, it := range page["items"].([]any) {
				m := it.(map[string]any)
				p := int(m["id"].(float64))
				var want any
				if (p+u)%3 != 0 {
					want = float64((p + u) % 6)
				}
				if m["my_score"] != want {
					errs <- fmt.Errorf("user-%d post %d: my_score %v, want %v", u, p, m["my_score"], want)
					return
				}
			}
			errs <- nil
		}()
	}
	for i := 0; i < 40; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// A client that hangs up mid-request is logged as such (499), not as a
// server error; a real 500 is logged with its cause and the request id.
func TestHangUpsAreNotServerErrorsAndRealErrorsSayWhy(t *testing.T) {
	h := start(t, func(c *Config) { c.MyWait = 300 * time.Millisecond })
	if st, _, _ := h.do(t, "POST", "/v1/posts", `{"title":"p"}`); st != 201 {
		t.Fatalf("create: %d", st)
	}
	// The my_score lookup waits 300 ms to share its query; the client
	// gives up after 50 ms.
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, "GET", h.base+"/v1/posts", nil)
		req.Header.Set("X-User-ID", "gone")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		cancel()
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if n := h.logs.FilterMessage("client closed the request before the answer").Len(); n < 5 {
			return fmt.Errorf("%d hang-ups logged, want 5", n)
		}
		return nil
	})
	for _, e := range h.logs.All() {
		if st, ok := e.ContextMap()["status"]; ok && st == int64(500) {
			t.Errorf("a hang-up was logged as a 500: %v", e.ContextMap())
		}
	}

	// A real server error: the posts table is gone.
	if _, err := h.db.Pool.Exec(context.Background(), `ALTER TABLE posts RENAME TO posts_gone`); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", h.base+"/v1/posts", strings.NewReader(`{"title":"q"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-ID", "req-500")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("create with the table gone: %d, want 500", resp.StatusCode)
	}
	failed := h.logs.FilterMessage("request failed").All()
	if len(failed) != 1 {
		t.Fatalf("%d 'request failed' lines, want 1", len(failed))
	}
	m := failed[0].ContextMap()
	if m["request_id"] != "req-500" || !strings.Contains(fmt.Sprint(m["error"]), "posts") {
		t.Errorf("the 500 is logged without its cause or request id: %v", m)
	}
}

// From the first moment the port accepts, every answer is 200 or 503 with
// Retry-After: never 500, never an empty page before the view is loaded.
func TestColdStartAnswers200Or503(t *testing.T) {
	db := testenv.NewDatabase(t)
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO posts (title) SELECT 'p' || g FROM generate_series(1, 20000) g`); err != nil {
		t.Fatal(err)
	}
	cfg := testenv.Defaults(t, func(c *Config) *string { return &c.Addr })
	cfg.DB.URL, cfg.Kafka = db.URL, relayScores(t, db).Config
	testenv.Serve(t, "query", cfg.Addr, func(ctx context.Context, log *zap.Logger) error { return run(ctx, log, cfg) })
	seen := map[int]int{}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		for _, path := range []string{"/v1/posts", "/api/post", "/v1/posts/7"} {
			req, _ := http.NewRequest("GET", "http://"+cfg.Addr+path, nil)
			req.Header.Set("X-User-ID", "u")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue // not listening yet
			}
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			seen[resp.StatusCode]++
			switch {
			case resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "":
				t.Fatalf("%s: 503 without Retry-After", path)
			case resp.StatusCode == 200 && path == "/v1/posts" && len(body["items"].([]any)) != 10:
				t.Fatalf("%s: a 200 with %d items before the view was loaded", path, len(body["items"].([]any)))
			case resp.StatusCode != 200 && resp.StatusCode != 503:
				t.Fatalf("%s: %d during cold start", path, resp.StatusCode)
			}
		}
		if seen[200] >= 30 {
			break
		}
	}
	t.Logf("answers during cold start: %v", seen)
}

// The seed pages' links never come from what the client sends (Host,
// X-Forwarded-Proto, X-Forwarded-Host): they are PUBLIC_URL and the
// route, or the route alone; and an offset near 2^63 cannot overflow into
// a link back to the first page.
func TestSeedLinksFromTheConfiguredURL(t *testing.T) {
	hostile := []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example"}
	check := func(h *harness, prefix string) {
		t.Helper()
		for i := 0; i < 12; i++ {
			h.do(t, "POST", "/api/post", fmt.Sprintf(`{"title":"p%d"}`, i))
		}
		req, _ := http.NewRequest("GET", h.base+"/api/post?limit=5&offset=5", nil)
		req.Host = "evil.example"
		for i := 0; i+1 < len(hostile); i += 2 {
			req.Header.Set(hostile[i], hostile[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if p["next"] != prefix+"/api/post?limit=5&offset=10" || p["previous"] != prefix+"/api/post?limit=5" {
			t.Errorf("links: next %v previous %v, want them under %q", p["next"], p["previous"], prefix)
		}
		for _, off := range []string{"9223372036854775807", "9223372036854775800", "1099511627776"} {
			_, _, p := h.do(t, "GET", "/api/post?limit=5&offset="+off, "")
			if p["next"] != nil || p["previous"] != prefix+"/api/post?limit=5&offset=7" {
				t.Errorf("offset %s: next %v previous %v, want no next and the last page", off, p["next"], p["previous"])
			}
		}
	}
	check(start(t), "")
	check(start(t, func(c *Config) { c.PublicURL = "https://ratings.example.com/" }), "https://ratings.example.com")
	for _, bad := range []string{"ratings.example.com", "ftp://x", "https://", "https://x/?a=b", "https://u:p@x"} {
		if _, err := publicURL(bad); err == nil {
			t.Errorf("PUBLIC_URL %q accepted", bad)
		}
	}
}
