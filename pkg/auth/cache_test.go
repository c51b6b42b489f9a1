package auth

import (
	"strings"
	"testing"
	"time"
)

func TestCacheStaysBounded(t *testing.T) {
	t.Parallel()
	c := newCache(64)
	now := time.Now()
	for i := range 1000 {
		c.put(strings.Repeat("t", i+1), Identity{Subject: "u", Expires: now.Add(time.Hour)}, now)
	}
	if n := len(c.byID); n > 64 {
		t.Fatalf("%d entries, bound 64", n)
	}
	c.put("soon", Identity{Subject: "u", Expires: now.Add(time.Second)}, now)
	if _, ok := c.get("soon", now.Add(2*time.Second)); ok {
		t.Fatal("a token past its exp came from the cache")
	}
}
