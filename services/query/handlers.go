package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/text/unicode/norm"

	"github.com/ratestream/ratestream/pkg/auth"
	"github.com/ratestream/ratestream/pkg/database"
	"github.com/ratestream/ratestream/pkg/httpserver"
	"github.com/ratestream/ratestream/pkg/rating"
)

const (
	maxTitle     = 200
	maxBody      = 4 << 10
	defaultLimit = 10
	maxLimit     = 100 // /v1/posts
	seedMaxLimit = 50  // /api/post, as the replaced app
)

type handlers struct {
	auth    *auth.Verifier // nil: AUTH_MODE=none
	pool    *pgxpool.Pool  // the primary: writes, and posts created a moment ago
	read    *pgxpool.Pool  // DATABASE_READ_URL (the primary when unset)
	view    *view
	mine    *myScoreLoader
	hits    *prometheus.CounterVec
	scoring *scoringSettings // the scorer's, for explaining scores and ranking
	public  string           // PUBLIC_URL without a trailing slash; empty: links are paths
	guard   *guard
	ranks   *rankings
}

func (h *handlers) routes(e *gin.Engine) {
	e.POST("/v1/posts", httpserver.Handle(h.createV1))
	e.GET("/v1/posts", httpserver.Handle(h.listV1))
	e.GET("/v1/posts/:id", httpserver.Handle(h.getV1))
	e.GET("/v1/posts/:id/explain", httpserver.Handle(h.explainV1))
	e.GET("/ui/", httpserver.Handle(h.uiList))
	e.GET("/ui/posts/:id", httpserver.Handle(h.uiPost))
	e.POST("/api/post", httpserver.Handle(h.createSeed))
	e.GET("/api/post", httpserver.Handle(h.listSeed))
}

// postJSON is a post in the /v1 shape.
type postJSON struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	Score     *float64  `json:"score"`
	UserCount int64     `json:"user_count"`
	MyScore   *int      `json:"my_score"`
	Flags     flagsJSON `json:"flags"`
	// Distribution counts the current ratings by score 0..5; it adds up
	// to user_count.
	Distribution [6]int64 `json:"distribution"`
	// Rank is the value a sorted list orders by (sort=top: the score
	// blended with the site's mean; sort=trending: recent honest votes
	// per window), as of the walk's ranking; absent in the id order.
	Rank *rankJSON `json:"rank,omitempty"`
}

// rankJSON is a post's rank in a sorted list: null for a post without one
// (no score yet in sort=top), listed after every ranked post.
type rankJSON struct{ v *float64 }

func (r rankJSON) MarshalJSON() ([]byte, error) {
	if r.v == nil {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, math.Round(*r.v*1e4)/1e4, 'f', -1, 64), nil
}

func newRank(f float64) *rankJSON {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return &rankJSON{}
	}
	return &rankJSON{&f}
}

// flagsJSON says what is unusual about a post's score now.
type flagsJSON struct {
	// UnderCampaign: a window still maturing is held out as a surge of
	// new raters, since Since (its start, event time).
	UnderCampaign bool       `json:"under_campaign"`
	Since         *time.Time `json:"since"`
}

func flags(p *Post) flagsJSON {
	if p.CampaignSince == nil {
		return flagsJSON{}
	}
	t := p.CampaignSince.UTC()
	return flagsJSON{UnderCampaign: true, Since: &t}
}

// seedPostJSON is a post in the replaced app's shape.
type seedPostJSON struct {
	ID          int64    `json:"id"`
	Title       string   `json:"title"`
	RateAverage *float64 `json:"rate_average"`
	UserCount   int64    `json:"user_count"`
	MyScore     *int     `json:"my_score"`
	// Distribution and Rank as in the /v1 shape.
	Distribution [6]int64  `json:"distribution"`
	Rank         *rankJSON `json:"rank,omitempty"`
}

func round2(s *float64) *float64 {
	if s == nil {
		return nil
	}
	r := math.Round(*s*100) / 100
	return &r
}

// caller is who asks, for my_score ("" when anonymous): in AUTH_MODE=none
// the X-User-ID header, in jwt mode the subject of a bearer token (the
// header is ignored; without a token the request is anonymous).
func (h *handlers) caller(c *gin.Context) (string, error) {
	if h.auth != nil {
		id, ok, err := h.auth.Caller(c)
		if err != nil || !ok {
			return "", err
		}
		return id.Subject, nil
	}
	uid := c.GetHeader("X-User-ID")
	if uid == "" {
		return "", nil
	}
	if err := rating.ValidateUserID(uid); err != nil {
		detail := err.Error()
		var fe *rating.FieldError
		if errors.As(err, &fe) {
			detail = fe.Reason
		}
		return "", httpserver.Bad(http.StatusBadRequest, "X-User-ID", "X-User-ID "+detail)
	}
	return uid, nil
}

// unavailable turns a database error that may pass (connection refused or
// lost, server starting or shutting down) into a 503 with Retry-After, and
// wraps any other with what was being done: Handle logs it as a 500.
func unavailable(what string, err error) error {
	if database.Transient(err) {
		return httpserver.Unavailable(time.Second, "could not "+what+" right now; retry shortly", err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// viewReady answers 503 until the in-memory view has loaded: until then a
// page would look empty.
func (h *handlers) viewReady(c *gin.Context) error {
	if err := h.view.Ready(c); err != nil {
		return httpserver.Unavailable(time.Second, "starting up; retry shortly", err)
	}
	return nil
}

// myScores reads the caller's ratings of a page's posts (through the
// loader, which merges concurrent requests into one indexed query).
func (h *handlers) myScores(ctx context.Context, user string, posts []*Post) (map[int64]int, error) {
	if user == "" || len(posts) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(posts))
	for i, p := range posts {
		ids[i] = p.ID
	}
	return h.mine.get(ctx, user, ids)
}

func mine(m map[int64]int, id int64) *int {
	if s, ok := m[id]; ok {
		return &s
	}
	return nil
}

func v1(p *Post, m map[int64]int) postJSON {
	return postJSON{ID: p.ID, Title: p.Title, Score: round2(p.Score), UserCount: p.UserCount, MyScore: mine(m, p.ID), Flags: flags(p),
		Distribution: p.Dist}
}

func seed(p *Post, m map[int64]int) seedPostJSON {
	return seedPostJSON{ID: p.ID, Title: p.Title, RateAverage: round2(p.Score), UserCount: p.UserCount, MyScore: mine(m, p.ID),
		Distribution: p.Dist}
}

func (h *handlers) getV1(c *gin.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		return httpserver.Bad(http.StatusBadRequest, "id", "post id must be a positive integer")
	}
	user, err := h.caller(c)
	if err != nil {
		return err
	}
	p, found := h.view.Get(id)
	if found {
		h.hits.WithLabelValues("hit").Inc()
	} else {
		// Created a moment ago through another instance: look it up once.
		h.hits.WithLabelValues("miss").Inc()
		if err := allow(c, h.guard.misses, "lookups of posts not known here"); err != nil {
			return err
		}
		if p, err = lookupPost(c, h.pool, h.view, id); errors.Is(err, pgx.ErrNoRows) {
			return httpserver.Bad(http.StatusNotFound, "id", "no post with id "+strconv.FormatInt(id, 10))
		} else if err != nil {
			return unavailable("read the post", err)
		}
	}
	m, err := h.myScores(c, user, []*Post{p})
	if err != nil {
		return unavailable("read your rating", err)
	}
	c.JSON(http.StatusOK, v1(p, m))
	return nil
}

// queryInt parses an optional query parameter within [lo, hi].
func queryInt(c *gin.Context, name string, def, lo, hi int64) (int64, error) {
	raw, present := c.GetQuery(name)
	if !present {
		return def, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, httpserver.Bad(http.StatusBadRequest, name, fmt.Sprintf("%s must be an integer from %d to %d", name, lo, hi))
	}
	return n, nil
}

func (h *handlers) listV1(c *gin.Context) error {
	limit, err := queryInt(c, "limit", defaultLimit, 1, maxLimit)
	if err != nil {
		return err
	}
	order, cur, err := listOrder(c)
	if err != nil {
		return err
	}
	var after int64
	if order == "id" {
		if after, err = queryInt(c, "after", 0, 0, math.MaxInt64); err != nil {
			return err
		}
	} else if _, ok := c.GetQuery("after"); ok {
		return httpserver.Bad(http.StatusBadRequest, "after", "after pages the id order; a sorted list pages with cursor (next_cursor)")
	}
	user, err := h.caller(c)
	if err != nil {
		return err
	}
	if err := h.viewReady(c); err != nil {
		return err
	}
	var posts []*Post
	var ranks []float64
	var nextCursor *cursor
	more := false
	if order == "id" {
		posts, more = h.view.After(after, int(limit))
	} else {
		posts, ranks, nextCursor = h.ranks.page(order, cur, int(limit))
	}
	m, err := h.myScores(c, user, posts)
	if err != nil {
		return unavailable("read your ratings", err)
	}
	items := make([]postJSON, len(posts))
	for i, p := range posts {
		items[i] = v1(p, m)
		if ranks != nil {
			items[i].Rank = newRank(ranks[i])
		}
	}
	if order != "id" {
		var next *string
		if nextCursor != nil {
			s := nextCursor.String()
			next = &s
		}
		c.JSON(http.StatusOK, gin.H{"items": items, "sort": order, "next_cursor": next})
		return nil
	}
	var next *int64
	if more && len(posts) > 0 {
		next = &posts[len(posts)-1].ID
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "next_after": next})
	return nil
}

// listOrder reads sort (id, top or trending) and cursor; a cursor carries
// its order, and a sort given with it must be the same.
func listOrder(c *gin.Context) (string, *cursor, error) {
	order := c.DefaultQuery("sort", "id")
	if order != "id" && order != orderTop && order != orderTrending {
		return "", nil, httpserver.Bad(http.StatusBadRequest, "sort", "sort must be id, top or trending")
	}
	raw, ok := c.GetQuery("cursor")
	if !ok {
		return order, nil, nil
	}
	cur, err := parseCursor(raw)
	if err != nil {
		return "", nil, httpserver.Bad(http.StatusBadRequest, "cursor", err.Error())
	}
	if _, given := c.GetQuery("sort"); given && order != cur.order {
		return "", nil, httpserver.Bad(http.StatusBadRequest, "cursor", "the cursor pages sort="+cur.order+", not sort="+order)
	}
	return cur.order, &cur, nil
}

// listSeed is the replaced app's limit/offset page. Like Django REST
// framework's LimitOffsetPagination, a missing, non-numeric or
// non-positive limit means the default, a limit above the maximum means the
// maximum, and a missing or invalid offset means 0.
func (h *handlers) listSeed(c *gin.Context) error {
	limit := defaultLimit
	if n, err := strconv.Atoi(c.Query("limit")); err == nil && n > 0 {
		limit = min(n, seedMaxLimit)
	}
	offset := 0
	if n, err := strconv.Atoi(c.Query("offset")); err == nil && n >= 0 {
		offset = min(n, maxSeedOffset)
	}
	user, err := h.caller(c)
	if err != nil {
		return err
	}
	if err := h.viewReady(c); err != nil {
		return err
	}
	// Django REST framework's OrderingFilter: -rate_average is the best
	// first, as sort=top ranks them (confidence-aware), -trending as
	// sort=trending; any other value is the default order, by id, as
	// DRF ignores an ordering it does not offer.
	var posts []*Post
	var ranks []float64
	var count int
	var order, pin string
	switch c.Query("ordering") {
	case "-rate_average":
		order = orderTop
	case "-trending":
		order = orderTrending
	}
	if order == "" {
		posts, count = h.view.Page(offset, limit)
	} else {
		posts, ranks, count, pin = h.ranks.offsetPage(order, c.Query("ranking"), offset, limit)
	}
	m, err := h.myScores(c, user, posts)
	if err != nil {
		return unavailable("read your ratings", err)
	}
	results := make([]seedPostJSON, len(posts))
	for i, p := range posts {
		results[i] = seed(p, m)
		if ranks != nil {
			results[i].Rank = newRank(ranks[i])
		}
	}
	var next, prev *string
	if offset+limit < count {
		s := h.pageURL(c, limit, offset+limit, pin)
		next = &s
	}
	if offset > 0 {
		s := h.pageURL(c, limit, min(max(offset-limit, 0), max(count-limit, 0)), pin)
		prev = &s
	}
	c.JSON(http.StatusOK, gin.H{"limit": limit, "offset": offset, "count": count, "next": next, "previous": prev, "results": results})
	return nil
}

// maxSeedOffset bounds the offset a client asks for, far above any count
// of posts, so that offset+limit cannot overflow.
const maxSeedOffset = 1 << 40

// pageURL is the link to another page of the same list: PUBLIC_URL and
// the route's path, or the path alone. Nothing of it comes from the
// request's Host or X-Forwarded-* headers, which any client sets.
// A sorted list's links keep its ordering and pin the ranking the page
// came from, so that paging through it neither repeats nor skips a post.
func (h *handlers) pageURL(c *gin.Context, limit, offset int, pin string) string {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	if pin != "" {
		q.Set("ordering", c.Query("ordering"))
		q.Set("ranking", pin)
	}
	return h.public + c.FullPath() + "?" + q.Encode()
}

// publicURL checks PUBLIC_URL: an absolute http or https URL with a host
// and nothing after its path.
func publicURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("PUBLIC_URL %q: want an absolute http or https URL such as https://ratings.example.com", s)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// title reads and checks the title of a new post.
func title(c *gin.Context) (string, error) {
	f, berr := httpserver.Object(c, maxBody, "title")
	if berr != nil {
		return "", berr
	}
	t, berr := f.String("title")
	if berr != nil {
		return "", berr
	}
	t, err := cleanTitle(t)
	if err != nil {
		return "", httpserver.Bad(httpserver.StatusInvalid, "title", "title "+err.Error())
	}
	return t, nil
}

// cleanTitle normalises a title to NFC without surrounding space, and
// refuses one that is not a single line of text: control characters
// (NUL, CR, LF, tab, C1), line and paragraph separators, more than
// maxTitle characters, or nothing visible (only spaces, zero-width or
// combining characters).
func cleanTitle(t string) (string, error) {
	t = strings.TrimSpace(norm.NFC.String(t))
	visible := false
	for _, r := range t {
		switch {
		case unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp):
			return "", fmt.Errorf("must be one line without control characters (U+%04X)", r)
		case unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S):
			visible = true
		}
	}
	switch {
	case !visible:
		return "", errors.New("must have at least one visible character")
	case utf8.RuneCountInString(t) > maxTitle:
		return "", fmt.Errorf("must have at most %d characters", maxTitle)
	}
	return t, nil
}

func (h *handlers) create(c *gin.Context) (*Post, error) {
	if err := allow(c, h.guard.creates, "new posts"); err != nil {
		return nil, err
	}
	if h.auth != nil {
		id, ok, err := h.auth.Caller(c)
		switch {
		case err != nil:
			return nil, err
		case !ok:
			return nil, auth.Required()
		case !id.Has(h.auth.CreateScope()):
			return nil, auth.NeedScope(h.auth.CreateScope())
		}
	}
	t, err := title(c)
	if err != nil {
		return nil, err
	}
	p := &Post{Title: t}
	if err := h.pool.QueryRow(c, `INSERT INTO posts (title) VALUES ($1) RETURNING id`, t).Scan(&p.ID); err != nil {
		return nil, unavailable("create the post", err)
	}
	return h.view.addTitle(p.ID, t), nil
}

func (h *handlers) createV1(c *gin.Context) error {
	p, err := h.create(c)
	if err != nil {
		return err
	}
	c.Header("Location", "/v1/posts/"+strconv.FormatInt(p.ID, 10))
	c.JSON(http.StatusCreated, v1(p, nil))
	return nil
}

func (h *handlers) createSeed(c *gin.Context) error {
	p, err := h.create(c)
	if err != nil {
		return err
	}
	c.JSON(http.StatusCreated, seed(p, nil))
	return nil
}
