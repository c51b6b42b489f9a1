package rating

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	e, err := New(42, "u-1", 4, time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"rated_at":"2026-01-02T02:04:05.123456789Z"`) {
		t.Fatalf("rated_at not UTC with nanoseconds: %s", b)
	}
	got, err := Unmarshal(b)
	if err != nil || got != e {
		t.Fatalf("Unmarshal = %+v, %v; want %+v", got, err, e)
	}
	if string(e.Key()) != "42" {
		t.Fatalf("key %q", e.Key())
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	ok := `{"v":1,"event_id":"01a21210-a2ee-7374-aba6-54a3e2cb9927","post_id":1,"user_id":"u","score":3,"rated_at":"2026-01-01T00:00:00Z"}`
	if _, err := Unmarshal([]byte(ok)); err != nil {
		t.Fatalf("valid event refused: %v", err)
	}
	bad := map[string]string{
		"not json":      `nope`,
		"unknown field": strings.Replace(ok, `"v":1`, `"v":1,"x":2`, 1),
		"missing score": strings.Replace(ok, `"score":3,`, ``, 1),
		"score 6":       strings.Replace(ok, `"score":3`, `"score":6`, 1),
		"string score":  strings.Replace(ok, `"score":3`, `"score":"3"`, 1),
		"version 2":     strings.Replace(ok, `"v":1`, `"v":2`, 1),
		"uuid v4":       strings.Replace(ok, `7374`, `4374`, 1),
		"zero post":     strings.Replace(ok, `"post_id":1`, `"post_id":0`, 1),
		"blank user":    strings.Replace(ok, `"user_id":"u"`, `"user_id":" "`, 1),
		"local time":    strings.Replace(ok, `00:00:00Z`, `00:00:00+01:00`, 1),
		"trailing data": ok + `{}`,
	}
	for name, v := range bad {
		if _, err := Unmarshal([]byte(v)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestNewerOrdersByTimeThenID(t *testing.T) {
	a, _ := New(1, "u", 1, time.Unix(10, 0))
	b, _ := New(1, "u", 1, time.Unix(11, 0))
	if !Newer(b.RatedAt, b.EventID, a.RatedAt, a.EventID) || Newer(a.RatedAt, a.EventID, b.RatedAt, b.EventID) {
		t.Fatal("later rated_at must win")
	}
	c := a
	c.EventID[15]++
	if !Newer(c.RatedAt, c.EventID, a.RatedAt, a.EventID) || Newer(a.RatedAt, a.EventID, a.RatedAt, a.EventID) {
		t.Fatal("equal times: the larger event id wins, and an event is not newer than itself")
	}
}
