package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ratestream/ratestream/pkg/auth/authtest"
	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/pseudonym"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/tools/testenv/eventschema"
)

// DELETE /v1/me erases the token's subject: the mapping goes, an erase
// event of the old pseudonym reaches every partition, the user's id is
// nowhere on the topic, and a later rating is under a new pseudonym.
// Without identities nobody can prove who they are: 403.
func TestDeleteMeErasesTheCaller(t *testing.T) {
	open := start(t, nil)
	if r := send(t, "DELETE", open.base+"/v1/me", "", "", "X-User-ID", "u-1"); r.status != 403 {
		t.Fatalf("DELETE /v1/me without identities: %d %v", r.status, r.body)
	}

	k := authtest.NewKeys(t)
	h := start(t, func(c *Config) { c.Auth = k.Config() })
	bearer := func(sub string) []string {
		return []string{"Authorization", "Bearer " + authtest.Sign(t, jwt.SigningMethodRS256, "r1", k.RSA, authtest.Claims(sub))}
	}
	for _, post := range []string{"1", "2", "3"} {
		if r := send(t, "POST", h.base+"/v1/posts/"+post+"/ratings", "application/json", `{"score":4}`, bearer("erase-me")...); r.status != 202 || r.body["user_id"] != "erase-me" {
			t.Fatalf("rating: %d %v", r.status, r.body)
		}
	}
	send(t, "POST", h.base+"/v1/posts/1/ratings", "application/json", `{"score":2}`, bearer("stays")...)
	old, stays := h.pseudonymOf(t, "erase-me"), h.pseudonymOf(t, "stays")
	if old == "" || old == "erase-me" || stays == old {
		t.Fatalf("pseudonyms %q and %q", old, stays)
	}
	if r := send(t, "DELETE", h.base+"/v1/me", "", "", bearer("erase-me")...); r.status != 401 && r.status != 202 {
		t.Fatalf("DELETE /v1/me: %d %v", r.status, r.body)
	} else if r.status != 202 || r.body["erased"] != true || r.body["partitions"] != float64(12) || r.body["erase_events"] != float64(1) {
		t.Fatalf("DELETE /v1/me: %d %v", r.status, r.body)
	}
	if r := send(t, "DELETE", h.base+"/v1/me", "", ""); r.status != 401 {
		t.Fatalf("DELETE /v1/me without a token: %d", r.status)
	}
	if p := h.pseudonymOf(t, "erase-me"); p != "" {
		t.Fatalf("the mapping is still there: %q", p)
	}
	if p := h.pseudonymOf(t, "stays"); p != stays {
		t.Fatalf("another user's mapping changed: %q", p)
	}

	schema := eventschema.Compile(t)
	erasedOn := map[int]bool{}
	for _, m := range h.broker.Messages(t, h.broker.Config.Topic) {
		if strings.Contains(string(m.Value), "erase-me") || strings.Contains(string(m.Key), "erase-me") {
			t.Errorf("the erased user's id is on the topic: %s", m.Value)
		}
		if err := schema.Check(m.Value); err != nil {
			t.Errorf("%s fails the schema: %v", m.Value, err)
		}
		e, err := rating.Unmarshal(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if e.Erase {
			if e.UserID != old || m.Key != nil {
				t.Errorf("erase event %s with key %q", m.Value, m.Key)
			}
			erasedOn[m.Partition] = true
		}
	}
	if len(erasedOn) != 12 {
		t.Fatalf("erase events on %d of 12 partitions", len(erasedOn))
	}

	// Rating again is a new user to the topic.
	send(t, "POST", h.base+"/v1/posts/1/ratings", "application/json", `{"score":1}`, bearer("erase-me")...)
	if p := h.pseudonymOf(t, "erase-me"); p == "" || p == old {
		t.Fatalf("after the erasure the user rates as %q (was %q)", p, old)
	}
}

// The fence: ratings of a user accepted while the user is erased are
// either on the topic before the erase event of their partition (so the
// erasure takes them), or under a new pseudonym. Without it a rating that
// read the old pseudonym before the erasure and reached the broker after
// it would outlive the erasure (a second vote, once the user rates again).
func TestNoRatingOutlivesItsUsersErasure(t *testing.T) {
	h := start(t, func(c *Config) { c.UserRate = 0 })
	w, err := pseudonym.NewEraseWriter(h.broker.Config, broker.WriterTuning{BatchSize: 100, BatchTimeout: time.Millisecond, WriteTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	eraser := &pseudonym.Eraser{Pool: h.db.Pool, Kafka: h.broker.Config, Writer: w}
	ctx := context.Background()
	var erased []string
	for round := range 4 {
		user := fmt.Sprintf("racer-%d", round)
		send(t, "POST", h.base+"/v1/posts/1/ratings", "application/json", `{"user_id":"`+user+`","score":1}`)
		erased = append(erased, h.pseudonymOf(t, user))
		var stop atomic.Bool
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					post := 1 + (g+i)%3
					send(t, "POST", fmt.Sprintf("%s/v1/posts/%d/ratings", h.base, post), "application/json", `{"user_id":"`+user+`","score":3}`)
				}
			}()
		}
		time.Sleep(150 * time.Millisecond)
		r, err := eraser.Erase(ctx, user)
		if err != nil || !r.Mapped || r.Erasures != 1 {
			t.Fatalf("erase: %+v %v", r, err)
		}
		time.Sleep(100 * time.Millisecond)
		stop.Store(true)
		wg.Wait()
	}
	// In each partition, nothing of an erased pseudonym after its erase.
	isErased := map[string]bool{}
	for _, p := range erased {
		isErased[p] = true
	}
	after := map[string]map[int]bool{} // pseudonym -> partitions whose erase event was read
	ratings := 0
	for _, m := range h.broker.Messages(t, h.broker.Config.Topic) {
		e, err := rating.Unmarshal(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case e.Erase:
			if after[e.UserID] == nil {
				after[e.UserID] = map[int]bool{}
			}
			after[e.UserID][m.Partition] = true
		case isErased[e.UserID]:
			ratings++
			if after[e.UserID][m.Partition] {
				t.Errorf("a rating of erased %s on partition %d after its erase event", e.UserID, m.Partition)
			}
		}
	}
	if ratings < 100 {
		t.Fatalf("only %d ratings raced the erasures", ratings)
	}
}
