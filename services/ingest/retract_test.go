package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ratestream/ratestream/pkg/auth/authtest"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/tools/testenv/eventschema"
)

// DELETE /v1/posts/{id}/ratings publishes a retraction on the post's
// partition (202 once durable), valid against the event schema; bad
// requests publish nothing.
func TestRetractionIsPublishedLikeARating(t *testing.T) {
	h := start(t, nil)
	del := func(path string, body string, header ...string) reply {
		return send(t, http.MethodDelete, h.base+path, "", body, header...)
	}
	for _, c := range []struct {
		name, path, body string
		header           []string
		status           int
		field            string
	}{
		{"unknown post", "/v1/posts/99/ratings?user_id=u-1", "", nil, 404, "post_id"},
		{"bad post id", "/v1/posts/x/ratings?user_id=u-1", "", nil, 400, "post_id"},
		{"nobody", "/v1/posts/1/ratings", "", nil, 422, "user_id"},
		{"two different users", "/v1/posts/1/ratings?user_id=u-1", "", []string{"X-User-ID", "u-2"}, 400, "user_id"},
		{"a user id with a control character", "/v1/posts/1/ratings?user_id=u%0A1", "", nil, 422, "user_id"},
		{"a body", "/v1/posts/1/ratings?user_id=u-1", `{"score":3}`, nil, 400, ""},
	} {
		r := del(c.path, c.body, c.header...)
		if r.status != c.status || r.header.Get("Content-Type") != "application/problem+json" || (c.field != "" && r.body["field"] != c.field) {
			t.Errorf("%s: %d %v, want %d on %q", c.name, r.status, r.body, c.status, c.field)
		}
	}
	if msgs := h.broker.Messages(t, h.broker.Config.Topic); len(msgs) != 0 {
		t.Fatalf("%d events reached the topic after only bad requests", len(msgs))
	}

	post(t, h.base+"/v1/posts/2/ratings", "application/json", `{"user_id":"u-1","score":4}`)
	for _, r := range []reply{
		del("/v1/posts/2/ratings?user_id=u-1", ""),
		del("/v1/posts/2/ratings", "", "X-User-ID", "u-2"), // a retraction of nothing is harmless
	} {
		if r.status != http.StatusAccepted || r.body["v"] != float64(2) || r.body["op"] != "retract" || r.body["post_id"] != float64(2) {
			t.Fatalf("retraction: %d %v", r.status, r.body)
		}
		if _, has := r.body["score"]; has {
			t.Fatalf("a retraction with a score: %v", r.body)
		}
	}

	schema := eventschema.Compile(t)
	msgs := h.broker.Messages(t, h.broker.Config.Topic)
	if len(msgs) != 3 {
		t.Fatalf("%d events, want a rating and two retractions", len(msgs))
	}
	for i, m := range msgs {
		if err := schema.Check(m.Value); err != nil {
			t.Errorf("event %s fails the schema: %v", m.Value, err)
		}
		e, err := rating.Unmarshal(m.Value)
		if err != nil || e.PostID != 2 || string(m.Key) != "2" || m.Partition != msgs[0].Partition || e.Retract != (i > 0) {
			t.Errorf("event %d: %+v %v on partition %d", i, e, err, m.Partition)
		}
	}
	// The schema refuses a retraction that carries a score.
	bad := strings.Replace(string(msgs[1].Value), `"rated_at"`, `"score":0,"rated_at"`, 1)
	if schema.Check([]byte(bad)) == nil {
		t.Errorf("the schema took %s", bad)
	}
}

// With identities, the token says whose rating is taken back; X-User-ID
// is ignored and a user_id parameter must be the subject.
func TestRetractionSpeaksForTheTokenSubject(t *testing.T) {
	k := authtest.NewKeys(t)
	h := start(t, func(c *Config) { c.Auth = k.Config() })
	u1 := authtest.Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, authtest.Claims("u-1"))
	url := h.base + "/v1/posts/1/ratings"
	if r := send(t, http.MethodDelete, url, "", "", "X-User-ID", "u-1"); r.status != 401 {
		t.Fatalf("without a token: %d", r.status)
	}
	if r := send(t, http.MethodDelete, url+"?user_id=u-2", "", "", "Authorization", "Bearer "+u1); r.status != 403 {
		t.Fatalf("someone else's rating: %d %v", r.status, r.body)
	}
	r := send(t, http.MethodDelete, url, "", "", "Authorization", "Bearer "+u1, "X-User-ID", "u-9")
	if r.status != 202 || r.body["user_id"] != "u-1" {
		t.Fatalf("own rating: %d %v", r.status, r.body)
	}
}
