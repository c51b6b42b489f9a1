package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/pseudonym"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/tools/testenv"
	"github.com/ratestream/ratestream/tools/testenv/eventschema"
)

type harness struct {
	*testenv.Service
	base   string
	db     *testenv.Database
	broker *testenv.Broker
}

// pseudonymOf is the pseudonym ingest publishes user's events under
// ("" for none).
func (h *harness) pseudonymOf(t *testing.T, user string) string {
	t.Helper()
	got, err := pseudonym.Lookup(context.Background(), h.db.Pool, []string{user})
	if err != nil {
		t.Fatal(err)
	}
	return got[user]
}

// start runs the ingest service in-process against a fresh database and
// broker, with posts 1..3 existing.
func start(t *testing.T, tweak func(*Config)) *harness {
	t.Helper()
	return startOn(t, testenv.NewBroker(t, 12), tweak)
}

// startOn is start against a given broker.
func startOn(t *testing.T, b *testenv.Broker, tweak func(*Config)) *harness {
	t.Helper()
	h := &harness{db: testenv.NewDatabase(t), broker: b}
	if _, err := h.db.Pool.Exec(context.Background(), `INSERT INTO posts (title) VALUES ('a'), ('b'), ('c')`); err != nil {
		t.Fatal(err)
	}
	cfg := testenv.Defaults(t, func(c *Config) *string { return &c.Addr })
	cfg.Kafka = h.broker.Config
	cfg.DB.URL = h.db.URL
	if tweak != nil {
		tweak(&cfg)
	}
	h.Service = testenv.Serve(t, "ingest", cfg.Addr, func(ctx context.Context, log *zap.Logger) error { return run(ctx, log, cfg) }).WaitReady(t)
	h.base = h.Base
	return h
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func post(t *testing.T, url, contentType, body string, header ...string) reply {
	t.Helper()
	return send(t, http.MethodPost, url, contentType, body, header...)
}

func send(t *testing.T, method, url, contentType, body string, header ...string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func TestRejectsBadInputAndPublishesNothing(t *testing.T) {
	h := start(t, nil)
	v1 := h.base + "/v1/posts/1/ratings"
	seed := h.base + "/api/rate"
	const js = "application/json"
	cases := []struct {
		name, url, ct, body string
		status              int
		field               string
	}{
		{"malformed json", v1, js, `{"user_id":"u","score":`, 400, ""},
		{"null body", v1, js, `null`, 400, ""},
		{"array body", v1, js, `[{"user_id":"u","score":1}]`, 400, ""},
		{"empty body", v1, js, ``, 400, ""},
		{"two objects", v1, js, `{"user_id":"u","score":1}{}`, 400, ""},
		{"score as string", v1, js, `{"user_id":"u","score":"5"}`, 422, "score"},
		{"fractional score", v1, js, `{"user_id":"u","score":4.5}`, 422, "score"},
		{"score 5.0", v1, js, `{"user_id":"u","score":5.0}`, 422, "score"},
		{"boolean score", v1, js, `{"user_id":"u","score":true}`, 422, "score"},
		{"null score", v1, js, `{"user_id":"u","score":null}`, 422, "score"},
		{"score -1", v1, js, `{"user_id":"u","score":-1}`, 422, "score"},
		{"score 6", v1, js, `{"user_id":"u","score":6}`, 422, "score"},
		{"huge score", v1, js, `{"user_id":"u","score":99999999999999999999}`, 422, "score"},
		{"missing score", v1, js, `{"user_id":"u"}`, 422, "score"},
		{"missing user", v1, js, `{"score":3}`, 422, "user_id"},
		{"numeric user", v1, js, `{"user_id":7,"score":3}`, 422, "user_id"},
		{"empty user", v1, js, `{"user_id":"","score":3}`, 422, "user_id"},
		{"blank user", v1, js, `{"user_id":"   ","score":3}`, 422, "user_id"},
		{"long user", v1, js, `{"user_id":"` + strings.Repeat("x", 129) + `","score":3}`, 422, "user_id"},
		{"unknown field", v1, js, `{"user_id":"u","score":3,"rated_at":"2020-01-01T00:00:00Z"}`, 422, "rated_at"},
		// Input that PostgreSQL, a proxy or a WAF would read differently.
		{"NUL in user (escaped)", v1, js, `{"user_id":"a\u0000b","score":4}`, 422, "user_id"},
		{"raw 0xff 0xfe in user", v1, js, "{\"user_id\":\"a\xff\xfeb\",\"score\":4}", 400, "user_id"},
		{"raw 0xfe 0xff in user", v1, js, "{\"user_id\":\"\xfe\xff\",\"score\":4}", 400, "user_id"},
		{"lone surrogate escape in user", v1, js, `{"user_id":"a\udcffb","score":4}`, 400, "user_id"},
		{"duplicate score", v1, js, `{"user_id":"u","score":1,"score":5}`, 400, "score"},
		{"duplicate score, escaped", v1, js, `{"user_id":"u","score":1,"\u0073core":5}`, 400, "score"},
		{"duplicate user", v1, js, `{"user_id":"a","user_id":"b","score":5}`, 400, "user_id"},
		{"CR LF in user", v1, js, `{"user_id":"a\r\nb","score":4}`, 422, "user_id"},
		{"tab in user", v1, js, `{"user_id":"a\tb","score":4}`, 422, "user_id"},
		{"C1 control in user", v1, js, `{"user_id":"a\u0085b","score":4}`, 422, "user_id"},
		{"zero-width space in user", v1, js, `{"user_id":"a\u200bb","score":4}`, 422, "user_id"},
		{"bidi override in user", v1, js, `{"user_id":"a\u202eb","score":4}`, 422, "user_id"},
		{"leading space in user", v1, js, `{"user_id":" u","score":4}`, 422, "user_id"},
		{"trailing space in user", v1, js, `{"user_id":"u ","score":4}`, 422, "user_id"},
		{"non-NFC user", v1, js, `{"user_id":"e\u0301","score":4}`, 422, "user_id"},
		{"seed: duplicate post", seed, js, `{"post":1,"post":2,"user_id":"u","score":3}`, 400, "post"},
		{"seed: NUL in user", seed, js, `{"post":1,"user_id":"\u0000","score":3}`, 422, "user_id"},
		{"post id not numeric", h.base + "/v1/posts/abc/ratings", js, `{"user_id":"u","score":3}`, 400, "post_id"},
		{"post id zero", h.base + "/v1/posts/0/ratings", js, `{"user_id":"u","score":3}`, 400, "post_id"},
		{"post id negative", h.base + "/v1/posts/-4/ratings", js, `{"user_id":"u","score":3}`, 400, "post_id"},
		{"unknown post", h.base + "/v1/posts/999/ratings", js, `{"user_id":"u","score":3}`, 404, "post_id"},
		{"body over 4 KiB", v1, js, `{"user_id":"u","score":3,"pad":"` + strings.Repeat("x", 5000) + `"}`, 413, ""},
		{"text/plain", v1, "text/plain", `{"user_id":"u","score":3}`, 415, ""},
		{"no content type", v1, "", `{"user_id":"u","score":3}`, 415, ""},
		{"form", v1, "application/x-www-form-urlencoded", `user_id=u&score=3`, 415, ""},
		{"seed: post as string", seed, js, `{"post":"1","user_id":"u","score":3}`, 422, "post"},
		{"seed: post zero", seed, js, `{"post":0,"user_id":"u","score":3}`, 422, "post"},
		{"seed: missing post", seed, js, `{"user_id":"u","score":3}`, 422, "post"},
		{"seed: unknown post", seed, js, `{"post":424242,"user_id":"u","score":3}`, 404, "post_id"},
		{"seed: score 7", seed, js, `{"post":1,"user_id":"u","score":7}`, 422, "score"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, tc.url, tc.ct, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (body %v)", r.status, tc.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("content type %q, want application/problem+json", ct)
			}
			if r.body["status"] != float64(tc.status) || r.body["title"] == "" || r.body["detail"] == "" {
				t.Errorf("not a problem document: %v", r.body)
			}
			if tc.field != "" && r.body["field"] != tc.field {
				t.Errorf("field %v, want %q", r.body["field"], tc.field)
			}
		})
	}
	if msgs := h.broker.Messages(t, h.broker.Config.Topic); len(msgs) != 0 {
		t.Fatalf("%d events reached the topic after only bad requests", len(msgs))
	}
}

func TestPublishesSchemaValidEventsKeyedByPost(t *testing.T) {
	h := start(t, nil)
	before := time.Now().UTC()
	r := post(t, h.base+"/v1/posts/2/ratings", "application/json", `{"user_id":"u-1","score":4}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("v1 status %d: %v", r.status, r.body)
	}
	if r.body["post_id"] != float64(2) || r.body["user_id"] != "u-1" || r.body["score"] != float64(4) || r.body["v"] != float64(1) {
		t.Errorf("v1 answer %v", r.body)
	}
	r = post(t, h.base+"/api/rate", "application/json; charset=utf-8", `{"post":3,"user_id":"device-id-9","score":0}`)
	if r.status != http.StatusCreated {
		t.Fatalf("seed status %d: %v", r.status, r.body)
	}
	if r.body["post"] != float64(3) {
		t.Errorf("seed answer %v", r.body)
	}

	schema := eventschema.Compile(t)
	msgs := h.broker.Messages(t, h.broker.Config.Topic)
	if len(msgs) != 2 {
		t.Fatalf("%d events in the topic, want 2", len(msgs))
	}
	balancer := &kafka.Murmur2Balancer{}
	for _, m := range msgs {
		if err := schema.Check(m.Value); err != nil {
			t.Errorf("event %s fails the schema: %v", m.Value, err)
		}
		e, err := rating.Unmarshal(m.Value)
		if err != nil {
			t.Fatalf("decode %s: %v", m.Value, err)
		}
		// The topic carries the user's pseudonym, never the id itself.
		user := map[int64]string{2: "u-1", 3: "device-id-9"}[e.PostID]
		if e.UserID != h.pseudonymOf(t, user) || strings.Contains(string(m.Value), user) {
			t.Errorf("event %s: user_id is not %s's pseudonym %q", m.Value, user, h.pseudonymOf(t, user))
		}
		if string(m.Key) != fmt.Sprint(e.PostID) {
			t.Errorf("key %q for post %d", m.Key, e.PostID)
		}
		parts := make([]int, 12)
		for i := range parts {
			parts[i] = i
		}
		if want := balancer.Balance(kafka.Message{Key: m.Key}, parts...); m.Partition != want {
			t.Errorf("post %d on partition %d, murmur2 says %d", e.PostID, m.Partition, want)
		}
		if e.RatedAt.Before(before.Add(-time.Second)) || e.RatedAt.After(time.Now().Add(time.Second)) {
			t.Errorf("rated_at %s not stamped by ingest's clock", e.RatedAt)
		}
	}
}

func TestNewPostIsRateableWithinASecond(t *testing.T) {
	h := start(t, nil)
	var id int64
	if err := h.db.Pool.QueryRow(context.Background(), `INSERT INTO posts (title) VALUES ('fresh') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	url := fmt.Sprintf("%s/v1/posts/%d/ratings", h.base, id)
	testenv.Eventually(t, time.Second, func() error {
		if r := post(t, url, "application/json", `{"user_id":"u","score":5}`); r.status != http.StatusAccepted {
			return fmt.Errorf("status %d", r.status)
		}
		return nil
	})
	t.Logf("new post rateable after %s", time.Since(created))
}

func TestBrokerOutageAnswers503AndRecovers(t *testing.T) {
	h := start(t, func(c *Config) { c.ProduceTimeout = time.Second })
	h.broker.Stop()
	settle := runtime.NumGoroutine()
	var wg sync.WaitGroup
	statuses := make([]reply, 40)
	began := time.Now()
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = post(t, h.base+"/v1/posts/1/ratings", "application/json", fmt.Sprintf(`{"user_id":"u-%d","score":1}`, i))
		}()
	}
	wg.Wait()
	if took := time.Since(began); took > 8*time.Second {
		t.Errorf("outage answers took %s", took)
	}
	for _, r := range statuses {
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Fatalf("during outage: status %d, Retry-After %q; want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
		}
	}
	// Readiness runs its checks every READY_INTERVAL (2 s) and serves
	// the last outcome: it says so within an interval or two.
	testenv.WaitUnready(t, h.base+"/readyz", "kafka", 10*time.Second)
	time.Sleep(2 * time.Second)
	if g := runtime.NumGoroutine(); g > settle+60 {
		t.Errorf("goroutines grew from %d to %d during the outage", settle, g)
	}

	h.broker.Start()
	testenv.Eventually(t, 30*time.Second, func() error {
		r := post(t, h.base+"/v1/posts/1/ratings", "application/json", `{"user_id":"after","score":2}`)
		if r.status != http.StatusAccepted {
			return fmt.Errorf("status %d", r.status)
		}
		return nil
	})
	testenv.WaitHTTP(t, h.base+"/readyz", 20*time.Second)
}

func TestRateLimitsPerUser(t *testing.T) {
	h := start(t, func(c *Config) { c.UserRate, c.UserBurst = 0.5, 2 })
	url := h.base + "/v1/posts/1/ratings"
	for i := 0; i < 2; i++ {
		if r := post(t, url, "application/json", `{"user_id":"eager","score":1}`); r.status != http.StatusAccepted {
			t.Fatalf("request %d: status %d", i, r.status)
		}
	}
	r := post(t, url, "application/json", `{"user_id":"eager","score":1}`)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("third request: status %d, Retry-After %q; want 429 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	if r := post(t, url, "application/json", `{"user_id":"someone-else","score":1}`); r.status != http.StatusAccepted {
		t.Fatalf("another user: status %d", r.status)
	}
}

// Every 2xx must be in the topic, including answers given while the
// service was shutting down.
func TestShutdownFlushesEveryAcceptedRating(t *testing.T) {
	h := start(t, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < 50; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				req, _ := http.NewRequest(http.MethodPost, h.base+"/api/rate", strings.NewReader(fmt.Sprintf(`{"post":1,"user_id":"d-%d-%d","score":3}`, w, i)))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return // refused once shutdown began: not accepted
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					return
				}
				mu.Lock()
				accepted++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // requests in flight when SIGTERM's equivalent comes
	h.Stop()
	wg.Wait()
	if accepted == 0 {
		t.Fatal("no rating was accepted before the shutdown: the test proves nothing")
	}
	if n := len(h.broker.Messages(t, h.broker.Config.Topic)); n != accepted {
		t.Fatalf("%d ratings accepted but %d in the topic", accepted, n)
	}
	t.Logf("%d accepted, all in the topic", accepted)
}
