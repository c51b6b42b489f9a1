package httpserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/problem"
)

// Problem is an answer other than 2xx that a handler chose: the status,
// the problem document's detail and field, and, never sent, the cause to
// log.
type Problem struct {
	Status     int
	Field      string
	Detail     string
	RetryAfter time.Duration // sent as Retry-After with 429 and 503
	Header     http.Header   // sent as they are (WWW-Authenticate with 401 and 403)
	Cause      error
}

func (p *Problem) Error() string {
	if p.Cause != nil {
		return p.Detail + ": " + p.Cause.Error()
	}
	return p.Detail
}

// Unwrap returns the cause.
func (p *Problem) Unwrap() error { return p.Cause }

// Bad is a problem with the request: a 4xx naming the field at fault.
func Bad(status int, field, detail string) *Problem {
	return &Problem{Status: status, Field: field, Detail: detail}
}

// Unavailable is a 503 the client should retry after retryAfter; cause is
// logged.
func Unavailable(retryAfter time.Duration, detail string, cause error) *Problem {
	return &Problem{Status: http.StatusServiceUnavailable, Detail: detail, RetryAfter: retryAfter, Cause: cause}
}

// TooMany is a 429 the client should retry after retryAfter.
func TooMany(retryAfter time.Duration, detail string) *Problem {
	return &Problem{Status: http.StatusTooManyRequests, Detail: detail, RetryAfter: retryAfter}
}

// StatusClientClosed is what the access log and the metrics record for a
// request whose client hung up before the answer (nginx's 499): it is not
// a server error.
const StatusClientClosed = 499

// HandlerFunc is a route handler that returns what went wrong instead of
// writing it.
type HandlerFunc func(c *gin.Context) error

// Handle adapts h to gin. It is the one place where a handler's error
// becomes an answer and a log line:
//   - the client hung up (its request's context is canceled): 499, logged
//     at info, nothing written;
//   - a *Problem (possibly wrapped): its status and document; a 5xx is
//     logged with its cause (503 at warn: the client is told to retry);
//   - anything else: 500 "internal error", logged at error with the cause.
//
// Every log line carries the request id (Logger).
func Handle(h HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := h(c); err != nil {
			answer(c, err)
		}
	}
}

func answer(c *gin.Context, err error) {
	log := Logger(c)
	if errors.Is(c.Request.Context().Err(), context.Canceled) {
		c.Abort()
		c.Status(StatusClientClosed)
		log.Info("client closed the request before the answer", zap.String("route", c.FullPath()), zap.NamedError("cause", err))
		return
	}
	var p *Problem
	if !errors.As(err, &p) {
		p = &Problem{Status: http.StatusInternalServerError, Detail: "internal error", Cause: err}
	}
	switch {
	case p.Status == http.StatusInternalServerError:
		log.Error("request failed", zap.String("route", c.FullPath()), zap.Int("status", p.Status), zap.Error(err))
	case p.Status >= 500:
		log.Warn("request not served", zap.String("route", c.FullPath()), zap.Int("status", p.Status), zap.Error(err))
	}
	for k, vs := range p.Header {
		for _, v := range vs {
			c.Writer.Header().Add(k, v)
		}
	}
	if p.RetryAfter > 0 {
		c.Header("Retry-After", problem.RetryAfter(p.RetryAfter))
	}
	problem.Write(c, p.Status, p.Detail, p.Field)
}
