package rating

import (
	stdjson "encoding/json"
	"errors"
	"math/rand/v2"
	"os"
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
	a.EventID[15] = 0x10 // so that c's id is larger whatever the random bytes
	c := a
	c.EventID[15]++
	if !Newer(c.RatedAt, c.EventID, a.RatedAt, a.EventID) || Newer(a.RatedAt, a.EventID, a.RatedAt, a.EventID) {
		t.Fatal("equal times: the larger event id wins, and an event is not newer than itself")
	}
}

func TestValidateUserID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		id string
		ok bool
	}{
		{"u-1", true},
		{"device-7f3a", true},
		{"Jürgen", true},
		{"用户-42", true},
		{"😀", true},
		{"a b", true},
		{"", false},
		{" ", false},
		{" u", false},
		{"u ", false},
		{"a\x00b", false},
		{"a\r\nb", false},
		{"a\tb", false},
		{"a\u0085b", false},     // C1 control (NEL)
		{"a\u200bb", false},     // zero-width space
		{"a\u202eb", false},     // right-to-left override
		{"a\u00a0b", false},     // no-break space
		{"a\ue000b", false},     // private use
		{"a\U000e0001b", false}, // language tag
		{"e\u0301", false},      // not NFC
		{"\u00e9", true},        // the same, NFC
		{"a\xff\xfeb", false},
		{strings.Repeat("x", 128), true},
		{strings.Repeat("x", 129), false},
	}
	for _, c := range cases {
		err := ValidateUserID(c.id)
		if (err == nil) != c.ok {
			t.Errorf("ValidateUserID(%q) = %v, want ok=%v", c.id, err, c.ok)
		}
		var fe *FieldError
		if err != nil && (!errors.As(err, &fe) || fe.Field != "user_id") {
			t.Errorf("ValidateUserID(%q) = %v, want a user_id FieldError", c.id, err)
		}
	}
}

func TestUnmarshalRefusesAmbiguousJSON(t *testing.T) {
	t.Parallel()
	ok := `{"v":1,"event_id":"01a21210-a2ee-7374-aba6-54a3e2cb9927","post_id":1,"user_id":"u","score":3,"rated_at":"2026-01-01T00:00:00Z"}`
	for name, v := range map[string]string{
		"duplicate score": strings.Replace(ok, `"score":3`, `"score":3,"score":5`, 1),
		"invalid UTF-8":   strings.Replace(ok, `"user_id":"u"`, "\"user_id\":\"\xff\xfe\"", 1),
		"lone surrogate":  strings.Replace(ok, `"user_id":"u"`, `"user_id":"\udcff"`, 1),
	} {
		if _, err := Unmarshal([]byte(v)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Unmarshal = %v, want ErrMalformed", name, err)
		}
	}
	// The topic's schema is looser than the door: an id that a client may
	// no longer send (a trailing space, a control character) still decodes,
	// so a replay of old events gives the same state.
	v := strings.Replace(ok, `"user_id":"u"`, `"user_id":"u \u0007"`, 1)
	if e, err := Unmarshal([]byte(v)); err != nil || e.UserID != "u \a" {
		t.Errorf("schema-valid event refused: %+v, %v", e, err)
	}
}

// FuzzUnmarshal: any value either fails or round-trips through Marshal.
// The seed corpus is in testdata/fuzz/FuzzUnmarshal.
func FuzzUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Unmarshal(b)
		if err != nil {
			return
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a decoded event: %v", err)
		}
		again, err := Unmarshal(out)
		if err != nil || again != e {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, e)
		}
	})
}

// The hand-written encoder writes exactly what encoding/json writes for
// the schema's fields, whatever the user id holds.
func TestMarshalMatchesEncodingJSON(t *testing.T) {
	ids := []string{"u-1", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\r\x00\x1f\x7f",
		"line\u2028para\u2029", "é ü 漢字 😀", "bad \xff utf-8 \xe2\x82", "\u0085\u200b\ufeff", ""}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		ids = append(ids, string(b))
	}
	for _, id := range ids {
		e, err := New(7, "x", 5, time.Date(2026, 3, 4, 5, 6, 7, 80, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		e.UserID = id
		got, _ := e.Marshal()
		want, err := stdjson.Marshal(struct {
			V       int    `json:"v"`
			EventID string `json:"event_id"`
			PostID  int64  `json:"post_id"`
			UserID  string `json:"user_id"`
			Score   int    `json:"score"`
			RatedAt string `json:"rated_at"`
		}{e.V, e.EventID.String(), e.PostID, e.UserID, e.Score, e.RatedAt.Format(time.RFC3339Nano)})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("user id %q:\n got %s\nwant %s", id, got, want)
		}
	}
}

// FuzzValidateUserID: an id the door accepts survives an event's
// round trip byte for byte; none panics.
func FuzzValidateUserID(f *testing.F) {
	for _, s := range []string{"u-1", "é", "e\u0301", "\u200b", " x", "a\x00b", "\xff", strings.Repeat("x", 200), "😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidateUserID(id) != nil {
			return
		}
		e, err := New(1, id, 3, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.Marshal()
		if err != nil {
			t.Fatalf("accepted id %q does not marshal: %v", id, err)
		}
		back, err := Unmarshal(b)
		if err != nil || back.UserID != id {
			t.Fatalf("accepted id %q came back as %q, %v", id, back.UserID, err)
		}
	})
}

// Every event an earlier ingest published still decodes, to the same
// rating, and encodes to the same bytes: a reader of a newer version
// reads the whole topic.
func TestEarlierEventsStillDecode(t *testing.T) {
	b, err := os.ReadFile("testdata/earlier-events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		e, err := Unmarshal([]byte(line))
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if e.Retract || e.V != 1 || e.Op() != OpRate {
			t.Fatalf("%s decoded as %+v", line, e)
		}
		if out, _ := e.Marshal(); !sameJSON(t, out, []byte(line)) {
			t.Fatalf("re-encoded differently:\n%s\n%s", out, line)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d events", n)
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := stdjson.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := stdjson.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xs, _ := stdjson.Marshal(x)
	ys, _ := stdjson.Marshal(y)
	return string(xs) == string(ys)
}

func TestRetractionRoundTrip(t *testing.T) {
	e, err := NewRetraction(7, "u-1", time.Date(2026, 12, 7, 1, 2, 3, 4, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.Marshal()
	want := `{"v":2,"op":"retract","event_id":"` + e.EventID.String() + `","post_id":7,"user_id":"u-1","rated_at":"2026-12-07T01:02:03.000000004Z"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	got, err := Unmarshal(b)
	if err != nil || got != e {
		t.Fatalf("Unmarshal = %+v, %v; want %+v", got, err, e)
	}
	// Version 2 can carry a rating too (another producer may write it).
	r := Event{V: Version2, EventID: e.EventID, PostID: 7, UserID: "u-1", Score: 4, RatedAt: e.RatedAt}
	b, _ = r.Marshal()
	if !strings.Contains(string(b), `"op":"rate"`) || !strings.Contains(string(b), `"score":4`) {
		t.Fatalf("v2 rating: %s", b)
	}
	if got, err := Unmarshal(b); err != nil || got != r {
		t.Fatalf("v2 rating: %+v %v", got, err)
	}
}

func TestVersion2Refuses(t *testing.T) {
	ok := `{"v":2,"op":"retract","event_id":"01a21210-a2ee-7374-aba6-54a3e2cb9927","post_id":1,"user_id":"u","rated_at":"2026-01-01T00:00:00Z"}`
	if _, err := Unmarshal([]byte(ok)); err != nil {
		t.Fatalf("valid retraction refused: %v", err)
	}
	bad := map[string]string{
		"retraction with a score": strings.Replace(ok, `"user_id":"u"`, `"user_id":"u","score":0`, 1),
		"rating without a score":  strings.Replace(ok, `"retract"`, `"rate"`, 1),
		"unknown op":              strings.Replace(ok, `"retract"`, `"erase"`, 1),
		"no op":                   strings.Replace(ok, `"op":"retract",`, ``, 1),
		"op in version 1":         strings.Replace(ok, `"v":2`, `"v":1`, 1),
		"version 4":               strings.Replace(ok, `"v":2`, `"v":4`, 1),
		"op not a string":         strings.Replace(ok, `"retract"`, `1`, 1),
	}
	for name, v := range bad {
		if _, err := Unmarshal([]byte(v)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestErasureRoundTrip(t *testing.T) {
	e, err := NewErasure("p-1", time.Date(2026, 12, 7, 1, 2, 3, 4, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if e.Key() != nil {
		t.Fatalf("an erasure has a key: %q", e.Key())
	}
	b, _ := e.Marshal()
	want := `{"v":3,"op":"erase","event_id":"` + e.EventID.String() + `","user_id":"p-1","rated_at":"2026-12-07T01:02:03.000000004Z"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	got, err := Unmarshal(b)
	if err != nil || got != e {
		t.Fatalf("Unmarshal = %+v, %v; want %+v", got, err, e)
	}
	bad := map[string]string{
		"erase in version 2":     strings.Replace(want, `"v":3`, `"v":2`, 1),
		"erase with a post":      strings.Replace(want, `"user_id"`, `"post_id":1,"user_id"`, 1),
		"erase with post 0":      strings.Replace(want, `"user_id"`, `"post_id":0,"user_id"`, 1),
		"erase with a score":     strings.Replace(want, `"rated_at"`, `"score":0,"rated_at"`, 1),
		"rating without a post":  strings.Replace(strings.Replace(want, `"erase"`, `"rate"`, 1), `"rated_at"`, `"score":1,"rated_at"`, 1),
		"retract without a post": strings.Replace(want, `"erase"`, `"retract"`, 1),
		"erase without a user":   strings.Replace(want, `"user_id":"p-1",`, ``, 1),
	}
	for name, v := range bad {
		if _, err := Unmarshal([]byte(v)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	if err := (Event{V: Version3, EventID: e.EventID, PostID: 0, UserID: "u", Score: 1, RatedAt: e.RatedAt}).Validate(); err == nil {
		t.Error("a rating of post 0 validated")
	}
}
