package main

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/pkg/limit"
	"github.com/ratestream/ratestream/pkg/postcache"
	"github.com/ratestream/ratestream/pkg/problem"
	"github.com/ratestream/ratestream/pkg/rating"
)

// maxBody bounds a rating request; a valid one is under 200 bytes.
const maxBody = 4 << 10

type handlers struct {
	posts   *postcache.Cache
	pub     *publisher
	users   *limit.Limiter
	ips     *limit.Limiter
	metrics *metrics
}

func (h *handlers) routes(e *gin.Engine) {
	e.POST("/v1/posts/:post_id/ratings", h.rateV1)
	e.POST("/api/rate", h.rateSeed)
}

// request is a validated rating request.
type request struct {
	postID int64
	userID string
	score  int
}

// rateV1 answers 202 with the published event.
func (h *handlers) rateV1(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("post_id"), 10, 64)
	if err != nil || id < 1 {
		h.reject(c, "post_id", &httpserver.BodyError{Status: http.StatusBadRequest, Field: "post_id", Detail: "post id must be a positive integer"})
		return
	}
	f, berr := httpserver.Object(c, maxBody, "user_id", "score")
	if berr != nil {
		h.reject(c, reason(berr), berr)
		return
	}
	req := request{postID: id}
	if !h.fill(c, f, &req) {
		return
	}
	if e, ok := h.publish(c, req); ok {
		c.JSON(http.StatusAccepted, eventBody(e, false))
	}
}

// rateSeed is the replaced app's route and body, answered with 201.
func (h *handlers) rateSeed(c *gin.Context) {
	f, berr := httpserver.Object(c, maxBody, "post", "user_id", "score")
	if berr != nil {
		h.reject(c, reason(berr), berr)
		return
	}
	id, berr := f.Int("post", 1, math.MaxInt64)
	if berr != nil {
		h.reject(c, "post", berr)
		return
	}
	req := request{postID: id}
	if !h.fill(c, f, &req) {
		return
	}
	if e, ok := h.publish(c, req); ok {
		c.JSON(http.StatusCreated, eventBody(e, true))
	}
}

// fill reads user_id and score, answering the problem when one is wrong.
func (h *handlers) fill(c *gin.Context, f httpserver.Fields, req *request) bool {
	uid, berr := f.String("user_id")
	if berr == nil {
		if err := rating.ValidateUserID(uid); err != nil {
			berr = &httpserver.BodyError{Status: httpserver.StatusInvalid, Field: "user_id", Detail: err.Error()}
		}
	}
	if berr != nil {
		h.reject(c, "user_id", berr)
		return false
	}
	score, berr := f.Int("score", 0, rating.MaxScore)
	if berr != nil {
		h.reject(c, "score", berr)
		return false
	}
	req.userID, req.score = uid, int(score)
	return true
}

func (h *handlers) publish(c *gin.Context, req request) (rating.Event, bool) {
	if h.posts.Ready(c) != nil {
		// Until the post ids are loaded every post would look unknown.
		h.metrics.rejected.WithLabelValues("starting").Inc()
		problem.Unavailable(c, time.Second, "starting up; retry shortly")
		return rating.Event{}, false
	}
	if !h.posts.Has(req.postID) {
		h.reject(c, "unknown_post", &httpserver.BodyError{Status: http.StatusNotFound, Field: "post_id", Detail: "no post with id " + strconv.FormatInt(req.postID, 10)})
		return rating.Event{}, false
	}
	if ok, wait := h.ips.Allow(c.ClientIP()); !ok {
		h.metrics.rejected.WithLabelValues("rate_limit_ip").Inc()
		problem.TooMany(c, wait, "too many requests from this address")
		return rating.Event{}, false
	}
	if ok, wait := h.users.Allow(req.userID); !ok {
		h.metrics.rejected.WithLabelValues("rate_limit_user").Inc()
		problem.TooMany(c, wait, "too many ratings from this user")
		return rating.Event{}, false
	}
	e, err := rating.New(req.postID, req.userID, req.score, time.Now())
	if err == nil {
		err = h.pub.Publish(c.Request.Context(), e)
	}
	if err != nil {
		reasonLabel := "broker_unavailable"
		if errors.Is(err, errBusy) {
			reasonLabel = "overloaded"
		}
		h.metrics.rejected.WithLabelValues(reasonLabel).Inc()
		httpserver.Logger(c).Warn("rating not published", zap.Error(err))
		problem.Unavailable(c, time.Second, "the rating could not be stored durably; retry later")
		return rating.Event{}, false
	}
	return e, true
}

func (h *handlers) reject(c *gin.Context, reasonLabel string, e *httpserver.BodyError) {
	h.metrics.rejected.WithLabelValues(reasonLabel).Inc()
	e.Write(c)
}

// reason labels a body problem for the rejection metric.
func reason(e *httpserver.BodyError) string {
	switch e.Status {
	case http.StatusUnsupportedMediaType:
		return "content_type"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case httpserver.StatusMalformed:
		return "malformed"
	}
	if e.Field != "" {
		return "unknown_field"
	}
	return "invalid"
}

// eventJSON is the answer to an accepted rating: the published event,
// plus the seed's "post" field on the seed's route.
type eventJSON struct {
	V       int    `json:"v"`
	EventID string `json:"event_id"`
	Post    *int64 `json:"post,omitempty"`
	PostID  int64  `json:"post_id"`
	UserID  string `json:"user_id"`
	Score   int    `json:"score"`
	RatedAt string `json:"rated_at"`
}

func eventBody(e rating.Event, seed bool) eventJSON {
	b := eventJSON{V: e.V, EventID: e.EventID.String(), PostID: e.PostID, UserID: e.UserID, Score: e.Score, RatedAt: e.RatedAt.Format(time.RFC3339Nano)}
	if seed {
		b.Post = &b.PostID
	}
	return b
}
