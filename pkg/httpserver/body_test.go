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
