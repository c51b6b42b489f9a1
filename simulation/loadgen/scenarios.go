package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// Target names the services and the id ranges a scenario draws from.
type Target struct {
	Ingest, Query string
	Posts         int // posts 1..Posts exist
	Users         int // users device-id-1..Users
	// Tokens, when set, are bearer tokens (AUTH_MODE=jwt): each rating
	// is sent with one drawn at random, and no user_id in the body.
	Tokens []string
}

func (t Target) device(rng *rand.Rand) string {
	return fmt.Sprintf("device-id-%d", 1+rng.IntN(t.Users))
}

// RateRequest is the seed's random_rating request: POST /api/rate with a
// random post, user and score.
func (t Target) RateRequest() Request {
	return func(ctx context.Context, c *http.Client, rng *rand.Rand) int {
		if len(t.Tokens) > 0 {
			body := fmt.Sprintf(`{"post":%d,"score":%d}`, 1+rng.IntN(t.Posts), rng.IntN(6))
			return Do(ctx, c, http.MethodPost, t.Ingest+"/api/rate", body, "Authorization", "Bearer "+t.Tokens[rng.IntN(len(t.Tokens))])
		}
		body := fmt.Sprintf(`{"post":%d,"user_id":%q,"score":%d}`, 1+rng.IntN(t.Posts), t.device(rng), rng.IntN(6))
		return Do(ctx, c, http.MethodPost, t.Ingest+"/api/rate", body)
	}
}

// MixedRequest is the seed's mixed_rating request: half give a 5 to post
// 1 or 2, half are random.
func (t Target) MixedRequest() Request {
	random := t.RateRequest()
	return func(ctx context.Context, c *http.Client, rng *rand.Rand) int {
		if rng.IntN(2) == 0 {
			body := fmt.Sprintf(`{"post":%d,"user_id":%q,"score":5}`, 1+rng.IntN(2), t.device(rng))
			return Do(ctx, c, http.MethodPost, t.Ingest+"/api/rate", body)
		}
		return random(ctx, c, rng)
	}
}

// ReadWriteRequest mirrors k6/readwrite.js: 25% keyset pages by id, 10%
// the best or trending first, 35% single posts with X-User-ID, 27%
// ratings, 3% ratings taken back.
func (t Target) ReadWriteRequest() Request {
	rate := t.RateRequest()
	page, post := t.PageRequest(), t.PostRequest()
	return func(ctx context.Context, c *http.Client, rng *rand.Rand) int {
		switch x := rng.Float64(); {
		case x < 0.25:
			return page(ctx, c, rng)
		case x < 0.35:
			sort := "top"
			if x >= 0.3 {
				sort = "trending"
			}
			return Do(ctx, c, http.MethodGet, t.Query+"/v1/posts?limit=10&sort="+sort, "", "X-User-ID", t.device(rng))
		case x < 0.7:
			return post(ctx, c, rng)
		case x < 0.97:
			return rate(ctx, c, rng)
		default:
			return t.retract(ctx, c, rng)
		}
	}
}

// retract takes a random user's rating of a random post back.
func (t Target) retract(ctx context.Context, c *http.Client, rng *rand.Rand) int {
	url := fmt.Sprintf("%s/v1/posts/%d/ratings", t.Ingest, 1+rng.IntN(t.Posts))
	if len(t.Tokens) > 0 {
		return Do(ctx, c, http.MethodDelete, url, "", "Authorization", "Bearer "+t.Tokens[rng.IntN(len(t.Tokens))])
	}
	return Do(ctx, c, http.MethodDelete, url, "", "X-User-ID", t.device(rng))
}

// PageRequest reads a keyset page after a random id, as a random user.
func (t Target) PageRequest() Request {
	return func(ctx context.Context, c *http.Client, rng *rand.Rand) int {
		return Do(ctx, c, http.MethodGet, fmt.Sprintf("%s/v1/posts?limit=10&after=%d", t.Query, rng.IntN(t.Posts)), "", "X-User-ID", t.device(rng))
	}
}

// PostRequest reads a random post as a random user.
func (t Target) PostRequest() Request {
	return func(ctx context.Context, c *http.Client, rng *rand.Rand) int {
		return Do(ctx, c, http.MethodGet, fmt.Sprintf("%s/v1/posts/%d", t.Query, 1+rng.IntN(t.Posts)), "", "X-User-ID", t.device(rng))
	}
}

// SeedPlans are the replaced app's k6 scenarios, scaled: random_rating
// with vus for d, then mixed_rating with twice the vus for d/10.
func (t Target) SeedPlans(vus int, d time.Duration, sleep time.Duration) []Plan {
	return []Plan{
		{Name: "random_rating", VUs: vus, Duration: d, MaxSleep: sleep, Request: t.RateRequest()},
		{Name: "mixed_rating", VUs: 2 * vus, Duration: d / 10, MaxSleep: sleep, Request: t.MixedRequest()},
	}
}
