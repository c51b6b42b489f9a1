package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// FuzzParams: the path and query parameters a client controls (a post id,
// ?history=, the seed pages' limit and offset, ?after=) are read without
// a panic, and what is accepted lies within its bounds.
func FuzzParams(f *testing.F) {
	for _, s := range []string{"1", "0", "-1", "9223372036854775807", "9223372036854775808", "1e3", "0x10", " 1", "١", "90m", "168h", "-5s", "9999999h", "1ns"} {
		f.Add(s, s)
	}
	gin.SetMode(gin.ReleaseMode)
	h := &handlers{}
	f.Fuzz(func(t *testing.T, id, q string) {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest(http.MethodGet, "/v1/posts/x?"+url.Values{"history": {q}, "limit": {q}, "offset": {q}}.Encode(), nil)
		c.Params = gin.Params{{Key: "id", Value: id}}
		if n, err := postID(c); err == nil && n < 1 {
			t.Fatalf("post id %q read as %d", id, n)
		}
		if d, err := h.historyParam(c, time.Hour); err == nil && (d <= 0 || d > maxHistory) {
			t.Fatalf("history %q read as %s", q, d)
		}
	})
}
