package main

import (
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ratestream/ratestream/pkg/auth/authtest"
	"github.com/ratestream/ratestream/pkg/rating"
)

// With AUTH_MODE=jwt the rater is the token's subject; every refused
// token gets 401 with an invalid_token challenge and publishes nothing.
func TestJWTSaysWhoRates(t *testing.T) {
	k := authtest.NewKeys(t)
	h := start(t, func(c *Config) { c.Auth = k.Config() })
	v1, seed := h.base+"/v1/posts/1/ratings", h.base+"/api/rate"
	const js = "application/json"
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	for name, tok := range authtest.BadTokens(t, k) {
		r := post(t, v1, js, `{"score":3}`, bearer(tok)...)
		if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) ||
			r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %q %v", name, r.status, r.header.Get("WWW-Authenticate"), r.body)
		}
	}
	for name, hdr := range map[string][]string{
		"no token":               nil,
		"no token, user in body": nil,
		"basic scheme":           {"Authorization", "Basic dTpw"},
		"bearer without token":   {"Authorization", "Bearer "},
	} {
		body := `{"score":3}`
		if strings.Contains(name, "user in body") {
			body = `{"user_id":"u-1","score":3}`
		}
		if r := post(t, v1, js, body, hdr...); r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d %q", name, r.status, r.header.Get("WWW-Authenticate"))
		}
	}

	u1 := authtest.Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, authtest.Claims("u-1"))
	u2 := authtest.Sign(t, jwt.SigningMethodES256, "e1", k.EC, authtest.Claims("u-2"))
	accepted := map[string]string{}
	for _, c := range []struct {
		name, url, body string
		hdr             []string
		status          int
		user            string
	}{
		{"subject from the token", v1, `{"score":4}`, bearer(u1), 202, "u-1"},
		{"lowercase scheme", v1, `{"score":2}`, []string{"Authorization", "bearer " + u2}, 202, "u-2"},
		{"body user equal to the subject", v1, `{"user_id":"u-1","score":5}`, bearer(u1), 202, "u-1"},
		{"body user not the subject", v1, `{"user_id":"u-2","score":5}`, bearer(u1), 403, ""},
		{"X-User-ID does not matter", v1, `{"score":1}`, append(bearer(u2), "X-User-ID", "u-1"), 202, "u-2"},
		{"seed route", seed, `{"post":2,"score":3}`, bearer(u1), 201, "u-1"},
	} {
		r := post(t, c.url, js, c.body, c.hdr...)
		if r.status != c.status {
			t.Errorf("%s: %d %v, want %d", c.name, r.status, r.body, c.status)
			continue
		}
		if c.user != "" {
			if r.body["user_id"] != c.user {
				t.Errorf("%s: rated as %v, want %s", c.name, r.body["user_id"], c.user)
			}
			accepted[r.body["event_id"].(string)] = c.user
		}
	}
	msgs := h.broker.Messages(t, h.broker.Config.Topic)
	if len(msgs) != len(accepted) {
		t.Fatalf("%d events on the topic, want the %d accepted", len(msgs), len(accepted))
	}
	for _, m := range msgs {
		e, err := rating.Unmarshal(m.Value)
		if err != nil || h.pseudonymOf(t, accepted[e.EventID.String()]) != e.UserID {
			t.Errorf("published %+v (%v), not an accepted rating under its user's pseudonym", e, err)
		}
	}
}

// The client address behind the per-IP limit comes from X-Forwarded-For
// only when the peer is a trusted proxy.
func TestSpoofedForwardedForDoesNotChangeTheLimiterKey(t *testing.T) {
	for _, c := range []struct {
		name    string
		trusted []string
		second  int
	}{
		{"untrusted peer", nil, 429},
		{"trusted proxy", []string{"127.0.0.1"}, 202},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := start(t, func(cfg *Config) {
				cfg.IPRate, cfg.IPBurst, cfg.HTTP.TrustedProxies = 0.001, 1, c.trusted
			})
			url := h.base + "/v1/posts/1/ratings"
			first := post(t, url, "application/json", `{"user_id":"a","score":1}`, "X-Forwarded-For", "198.51.100.1")
			second := post(t, url, "application/json", `{"user_id":"b","score":1}`, "X-Forwarded-For", "198.51.100.2")
			if first.status != 202 || second.status != c.second {
				t.Fatalf("answers %d then %d, want 202 then %d", first.status, second.status, c.second)
			}
		})
	}
}

// In jwt mode the per-user limit keys on the token's subject: two tokens
// of one subject share a budget, another subject has its own.
func TestUserLimitKeysOnTheSubject(t *testing.T) {
	k := authtest.NewKeys(t)
	h := start(t, func(c *Config) { c.Auth, c.UserRate, c.UserBurst = k.Config(), 0.001, 1 })
	url := h.base + "/v1/posts/1/ratings"
	first := authtest.Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, authtest.Claims("same"))
	second := authtest.Sign(t, jwt.SigningMethodES256, "e1", k.EC, authtest.Claims("same"))
	other := authtest.Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, authtest.Claims("other"))
	for i, c := range []struct {
		tok    string
		status int
	}{{first, 202}, {second, 429}, {other, 202}} {
		if r := post(t, url, "application/json", `{"score":3}`, "Authorization", "Bearer "+c.tok); r.status != c.status {
			t.Errorf("request %d: %d, want %d", i+1, r.status, c.status)
		}
	}
}
