// Package problem writes RFC 9457 problem details.
package problem

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

// ContentType is the media type of every error body.
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem document. Field names the request field
// that was wrong, when there is one.
type Details struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Field    string `json:"field,omitempty"`
	Instance string `json:"instance,omitempty"`
}

// Write aborts the request with a problem document.
func Write(c *gin.Context, status int, detail, field string) {
	c.Abort()
	c.Header("Content-Type", ContentType)
	d := Details{
		Type:     "about:blank",
		Title:    http.StatusText(status),
		Status:   status,
		Detail:   detail,
		Field:    field,
		Instance: c.Request.URL.Path,
	}
	c.Render(status, jsonRender{d})
}

// RetryAfter renders a Retry-After value: whole seconds, rounded up, at
// least one.
func RetryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}
