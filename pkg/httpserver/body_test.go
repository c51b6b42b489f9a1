package httpserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/ratestream/ratestream/pkg/jsoncheck"
)

// decode runs Object and the two typed readers on body, as the rating
// handlers do.
func decode(body []byte) (user string, score int64, berr *Problem) {
	gin.SetMode(gin.ReleaseMode)
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	c.Request.Header.Set("Content-Type", "application/json")
	f, berr := Object(c, 4<<10, "user_id", "score")
	if berr != nil {
		return "", 0, berr
	}
	if user, berr = f.String("user_id"); berr != nil {
		return "", 0, berr
	}
	score, berr = f.Int("score", 0, 5)
	return user, score, berr
}

func TestObjectRefusesAmbiguousBodies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		status     int
		field      string
	}{
		{"raw invalid UTF-8", "{\"user_id\":\"\xff\xfe\",\"score\":1}", 400, "user_id"},
		{"lone surrogate", `{"user_id":"\udcff","score":1}`, 400, "user_id"},
		{"duplicate key", `{"user_id":"u","score":1,"score":5}`, 400, "score"},
		{"well formed", `{"user_id":"u","score":1}`, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, berr := decode([]byte(c.body))
			switch {
			case c.status == 0 && berr != nil:
				t.Fatalf("refused: %v", berr)
			case c.status != 0 && (berr == nil || berr.Status != c.status || berr.Field != c.field):
				t.Fatalf("got %+v, want status %d field %q", berr, c.status, c.field)
			}
		})
	}
}

// FuzzObject: whatever the body, the decoder answers without panicking, a
// refusal has a 4xx status, and an accepted body is unambiguous (it passes
// jsoncheck) and its user id is what encoding/json reads from it. The seed
// corpus is in testdata/fuzz/FuzzObject.
func FuzzObject(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		user, score, berr := decode(body)
		if berr != nil {
			if berr.Status < 400 || berr.Status > 499 {
				t.Fatalf("status %d for %q", berr.Status, body)
			}
			return
		}
		if err := jsoncheck.Strict(bytes.TrimSpace(body)); err != nil {
			t.Fatalf("accepted an ambiguous body %q: %v", body, err)
		}
		if !utf8.ValidString(user) || score < 0 || score > 5 {
			t.Fatalf("accepted user %q score %d", user, score)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil || m["user_id"] != user {
			t.Fatalf("encoding/json reads %v (%v), we read %q", m["user_id"], err, user)
		}
	})
}

// FuzzFlatObject: whatever flatObject accepts, encoding/json's decoder
// (which Object falls back to) accepts too and reads the same members.
func FuzzFlatObject(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"u","score":1}`, ` { "post" : 12 , "user_id" : "d-1", "score": 5 } `, `{}`,
		`{"a":-0.5e+3,"b":true,"c":false,"d":null}`, `{"a":01}`, `{"a":1.}`, `{"a":"\u0041"}`,
		`{"a":[1]}`, `{"a":1,}`, `{"a":1}x`, `{"a" 1}`, `{"a":tru}`, `{"a":-}`, `{"a":1e}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fields, ok := flatObject(b)
		if !ok || jsoncheck.Strict(b) != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var want map[string]json.RawMessage
		if err := dec.Decode(&want); err != nil || dec.More() {
			t.Fatalf("flatObject accepted %q, encoding/json refuses it (%v)", b, err)
		}
		if len(fields) != len(want) {
			t.Fatalf("%q: flatObject read %d members, encoding/json %d", b, len(fields), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(bytes.TrimSpace(v), fields[k]) {
				t.Fatalf("%q: member %q is %s, encoding/json reads %s", b, k, fields[k], v)
			}
		}
	})
}

// BenchmarkObject reads a rating body as the rating handlers do.
func BenchmarkObject(b *testing.B) {
	body := []byte(`{"user_id":"device-0005f3a2c1","score":4}`)
	for b.Loop() {
		if _, _, berr := decode(body); berr != nil {
			b.Fatal(berr)
		}
	}
}
