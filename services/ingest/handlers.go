package main

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ratestream/ratestream/pkg/auth"
	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/pkg/limit"
	"github.com/ratestream/ratestream/pkg/pseudonym"
	"github.com/ratestream/ratestream/pkg/rating"
)

// jsonType is the content type of every JSON answer.
const jsonType = "application/json; charset=utf-8"

// maxBody bounds a rating request; a valid one is under 200 bytes.
const maxBody = 4 << 10

type handlers struct {
	posts   *postIDs
	auth    *auth.Verifier // nil: AUTH_MODE=none
	pub     *publisher
	names   *pseudonym.Resolver
	eraser  *pseudonym.Eraser
	users   *limit.Limiter
	ips     *limit.Limiter
	metrics *metrics
}

func (h *handlers) routes(e *gin.Engine) {
	e.POST("/v1/posts/:post_id/ratings", httpserver.Handle(h.rateV1))
	e.POST("/api/rate", httpserver.Handle(h.rateSeed))
	e.DELETE("/v1/posts/:post_id/ratings", httpserver.Handle(h.retractV1))
	e.DELETE("/v1/me", httpserver.Handle(h.eraseMe))
}

// eraseMe erases the caller (the token's subject): every rating on every
// post, and the pseudonym that tied their events on the topic to them.
// 202 once the erase events are durable on every partition; the tables
// follow within seconds (docs/data.md). Without identities nobody can
// prove who they are, so it is refused: operators use ratestream erase.
func (h *handlers) eraseMe(c *gin.Context) error {
	if h.auth == nil {
		return h.reject("unauthenticated", httpserver.Bad(http.StatusForbidden, "",
			"erasing yourself needs identities (AUTH_MODE=jwt); an operator erases a user with ratestream erase"))
	}
	if err := h.authenticate(c); err != nil {
		return err
	}
	if c.Request.ContentLength > 0 {
		return h.reject("invalid", httpserver.Bad(http.StatusBadRequest, "", "an erasure has no body"))
	}
	uid, err := h.who(c, "", false)
	if err != nil {
		return err
	}
	if ok, wait := h.users.Allow(uid); !ok {
		return h.reject("rate_limit_user", httpserver.TooMany(wait, "too many requests from this user"))
	}
	r, err := h.eraser.Erase(c.Request.Context(), uid)
	if err != nil {
		h.metrics.rejected.WithLabelValues("erase_failed").Inc()
		return httpserver.Unavailable(time.Second, "the erasure could not be completed; retry later (what was done stays done)", err)
	}
	h.metrics.erasures.Inc()
	c.JSON(http.StatusAccepted, gin.H{"user_id": uid, "erased": r.Mapped || r.InClear, "erase_events": r.Erasures, "partitions": r.Partitions})
	return nil
}

// request is a validated rating request, or a retraction (no score).
type request struct {
	postID  int64
	userID  string
	score   int
	retract bool
}

// rateV1 answers 202 with the published event.
func (h *handlers) rateV1(c *gin.Context) error {
	if err := h.authenticate(c); err != nil {
		return err
	}
	id, err := h.postID(c)
	if err != nil {
		return err
	}
	f, berr := httpserver.Object(c, maxBody, "user_id", "score")
	if berr != nil {
		return h.reject(reason(berr), berr)
	}
	req := request{postID: id}
	if err := h.fill(c, f, &req); err != nil {
		return err
	}
	value, err := h.publish(c, req)
	if err != nil {
		return err
	}
	c.Data(http.StatusAccepted, jsonType, value)
	return nil
}

// retractV1 takes the caller's rating of the post back: 202 with the
// published retraction once it is durable. It has no body; the caller is
// the token's subject, or without identities the user_id query parameter
// or the X-User-ID header. A retraction of nothing is harmless.
func (h *handlers) retractV1(c *gin.Context) error {
	if err := h.authenticate(c); err != nil {
		return err
	}
	id, err := h.postID(c)
	if err != nil {
		return err
	}
	if c.Request.ContentLength > 0 {
		return h.reject("invalid", httpserver.Bad(http.StatusBadRequest, "", "a retraction has no body"))
	}
	// Without identities the query parameter or the header names the
	// caller; with them only the token does (the header is ignored, as
	// everywhere), and a user_id parameter must be its subject.
	param, header := c.Query("user_id"), c.GetHeader("X-User-ID")
	if h.auth != nil {
		header = ""
	}
	if param != "" && header != "" && param != header {
		return h.reject("user_mismatch", httpserver.Bad(http.StatusBadRequest, "user_id", "user_id and X-User-ID name different users"))
	}
	claimed := cmp.Or(param, header)
	if h.auth == nil && claimed == "" {
		return h.reject("user_id", httpserver.Bad(httpserver.StatusInvalid, "user_id", "is required: the user_id query parameter or the X-User-ID header"))
	}
	uid, err := h.who(c, claimed, claimed != "")
	if err != nil {
		return err
	}
	value, err := h.publish(c, request{postID: id, userID: uid, retract: true})
	if err != nil {
		return err
	}
	c.Data(http.StatusAccepted, jsonType, value)
	return nil
}

// postID reads the path's post id.
func (h *handlers) postID(c *gin.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("post_id"), 10, 64)
	if err != nil || id < 1 {
		return 0, h.reject("post_id", httpserver.Bad(http.StatusBadRequest, "post_id", "post id must be a positive integer"))
	}
	return id, nil
}

// rateSeed is the replaced app's route and body, answered with 201.
func (h *handlers) rateSeed(c *gin.Context) error {
	if err := h.authenticate(c); err != nil {
		return err
	}
	f, berr := httpserver.Object(c, maxBody, "post", "user_id", "score")
	if berr != nil {
		return h.reject(reason(berr), berr)
	}
	id, berr := f.Int("post", 1, math.MaxInt64)
	if berr != nil {
		return h.reject("post", berr)
	}
	req := request{postID: id}
	if err := h.fill(c, f, &req); err != nil {
		return err
	}
	value, err := h.publish(c, req)
	if err != nil {
		return err
	}
	// The published event with the seed's "post" field first.
	body := make([]byte, 0, len(value)+32)
	body = strconv.AppendInt(append(body, `{"post":`...), req.postID, 10)
	body = append(append(body, ','), value[1:]...)
	c.Data(http.StatusCreated, jsonType, body)
	return nil
}

// fill reads who rates and the score.
func (h *handlers) fill(c *gin.Context, f httpserver.Fields, req *request) error {
	uid, err := h.rater(c, f)
	if err != nil {
		return err
	}
	score, berr := f.Int("score", 0, rating.MaxScore)
	if berr != nil {
		return h.reject("score", berr)
	}
	req.userID, req.score = uid, int(score)
	return nil
}

// authenticate refuses, in jwt mode, a request without a valid token; it
// runs before the body is read.
func (h *handlers) authenticate(c *gin.Context) error {
	if h.auth == nil {
		return nil
	}
	if _, ok, err := h.auth.Caller(c); err != nil {
		h.metrics.rejected.WithLabelValues("unauthenticated").Inc()
		return err
	} else if !ok {
		return h.reject("unauthenticated", auth.Required())
	}
	return nil
}

// rater is who rates: in AUTH_MODE=none the body's user_id; in jwt mode
// the token's subject, and a body user_id must be absent or the same.
func (h *handlers) rater(c *gin.Context, f httpserver.Fields) (string, error) {
	var claimed string
	_, sent := f["user_id"]
	if sent || h.auth == nil {
		uid, berr := f.String("user_id")
		if berr != nil {
			return "", h.reject("user_id", berr)
		}
		claimed = uid
	}
	return h.who(c, claimed, sent)
}

// who is the caller: in AUTH_MODE=none the user id the request claims
// (required); in jwt mode the token's subject, and a claimed id (sent)
// must be the same.
func (h *handlers) who(c *gin.Context, claimed string, sent bool) (string, error) {
	if h.auth == nil {
		if err := rating.ValidateUserID(claimed); err != nil {
			return "", h.reject("user_id", httpserver.Bad(httpserver.StatusInvalid, "user_id", err.Error()))
		}
		return claimed, nil
	}
	id, _, err := h.auth.Caller(c) // verified by authenticate
	if err != nil {
		return "", err
	}
	if err := rating.ValidateUserID(id.Subject); err != nil {
		return "", h.reject("user_id", httpserver.Bad(http.StatusForbidden, "user_id", "the token's subject cannot be a user id: "+err.Error()))
	}
	if sent && claimed != id.Subject {
		return "", h.reject("user_mismatch", httpserver.Bad(http.StatusForbidden, "user_id", "user_id must be absent or the token's subject"))
	}
	return id.Subject, nil
}

// publish publishes the rating under the user's pseudonym and returns the
// event's JSON value with the user's own id, which is the answer's body.
func (h *handlers) publish(c *gin.Context, req request) ([]byte, error) {
	if err := h.posts.Ready(c); err != nil {
		// Until the post ids are loaded every post would look unknown.
		h.metrics.rejected.WithLabelValues("starting").Inc()
		return nil, httpserver.Unavailable(time.Second, "starting up; retry shortly", err)
	}
	if !h.posts.Has(req.postID) {
		return nil, h.reject("unknown_post", httpserver.Bad(http.StatusNotFound, "post_id", "no post with id "+strconv.FormatInt(req.postID, 10)))
	}
	if ok, wait := h.ips.Allow(c.ClientIP()); !ok {
		return nil, h.reject("rate_limit_ip", httpserver.TooMany(wait, "too many requests from this address"))
	}
	if ok, wait := h.users.Allow(req.userID); !ok {
		return nil, h.reject("rate_limit_user", httpserver.TooMany(wait, "too many ratings from this user"))
	}
	var e rating.Event
	var err error
	if req.retract {
		e, err = rating.NewRetraction(req.postID, req.userID, time.Now())
	} else {
		e, err = rating.New(req.postID, req.userID, req.score, time.Now())
	}
	var value []byte
	if err == nil {
		value, err = h.publishAs(c, e)
	}
	if err != nil {
		reasonLabel := "broker_unavailable"
		switch {
		case errors.Is(err, errBusy):
			reasonLabel = "overloaded"
		case errors.Is(err, errNames):
			reasonLabel = "database_unavailable"
		}
		h.metrics.rejected.WithLabelValues(reasonLabel).Inc()
		return nil, httpserver.Unavailable(time.Second, "the "+e.Op()+" could not be stored durably; retry later", err)
	}
	return value, nil
}

// errNames means the user's pseudonym could not be read or created.
var errNames = errors.New("no pseudonym")

// publishAs publishes e under its user's pseudonym and returns e as the
// client sees it.
func (h *handlers) publishAs(c *gin.Context, e rating.Event) ([]byte, error) {
	p, err := h.names.Get(c.Request.Context(), e.UserID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNames, err)
	}
	out := e
	out.UserID = p
	buf := out.AppendJSON(make([]byte, 0, 384))
	if err := h.pub.Publish(c.Request.Context(), out, buf); err != nil {
		return nil, err
	}
	return e.AppendJSON(buf[len(buf):]), nil
}

// reject counts a refused request by reason and returns its problem.
func (h *handlers) reject(reasonLabel string, p *httpserver.Problem) error {
	h.metrics.rejected.WithLabelValues(reasonLabel).Inc()
	return p
}

// reason labels a body problem for the rejection metric.
func reason(e *httpserver.Problem) string {
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
