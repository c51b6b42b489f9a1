package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ratestream/ratestream/pkg/auth/authtest"
)

// With AUTH_MODE=jwt, creating a post needs a token with the create scope,
// my_score is the token subject's own rating (X-User-ID is ignored), an
// anonymous read has none, and a refused token is a 401.
func TestJWTForReadsAndCreates(t *testing.T) {
	k := authtest.NewKeys(t)
	h := start(t, func(c *Config) { c.Auth = k.Config() })
	writer := authtest.Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, authtest.Claims("editor", "posts:write"))
	reader := authtest.Sign(t, jwt.SigningMethodEdDSA, "o1", k.Ed, authtest.Claims("u-1"))
	other := authtest.Sign(t, jwt.SigningMethodHS256, "", k.Secret, authtest.Claims("u-2"))
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	st, hdr, _ := h.do(t, "POST", "/v1/posts", `{"title":"t"}`)
	if st != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("create without a token: %d %q", st, hdr.Get("WWW-Authenticate"))
	}
	st, hdr, _ = h.do(t, "POST", "/v1/posts", `{"title":"t"}`, bearer(reader)...)
	if st != 403 || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("create without the scope: %d %q", st, hdr.Get("WWW-Authenticate"))
	}
	st, _, p := h.do(t, "POST", "/api/post", `{"title":"t"}`, bearer(writer)...)
	if st != 201 {
		t.Fatalf("create with the scope: %d %v", st, p)
	}
	id := int64(p["id"].(float64))
	if _, err := h.db.Pool.Exec(context.Background(), `INSERT INTO ratings (post_id, user_id, score, rated_at, event_id, window_start)
		VALUES ($1, 'p-u-1', 4, now(), '01a21210-a2ee-7374-aba6-54a3e2cb9927', date_trunc('minute', now()))`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.Pool.Exec(context.Background(), `INSERT INTO user_pseudonyms VALUES ('u-1', 'p-u-1')`); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/v1/posts/%d", id)
	for _, c := range []struct {
		name string
		hdr  []string
		mine any
	}{
		{"the rater's token", bearer(reader), float64(4)},
		{"another user's token", bearer(other), nil},
		{"anonymous", nil, nil},
		{"X-User-ID without a token", []string{"X-User-ID", "u-1"}, nil},
		{"X-User-ID with another token", append(bearer(other), "X-User-ID", "u-1"), nil},
	} {
		st, _, p := h.do(t, "GET", path, "", c.hdr...)
		if st != 200 || p["my_score"] != c.mine {
			t.Errorf("%s: %d my_score %v, want %v", c.name, st, p["my_score"], c.mine)
		}
	}
	for name, tok := range authtest.BadTokens(t, k) {
		for _, route := range []string{"/v1/posts", "/api/post", path} {
			st, hdr, _ := h.do(t, "GET", route, "", bearer(tok)...)
			if st != http.StatusUnauthorized || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("%s on %s: %d %q", name, route, st, hdr.Get("WWW-Authenticate"))
			}
		}
	}
}
