package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/mirror"
	"github.com/ratestream/ratestream/pkg/postscore"
)

// Post is a post as the query service serves it (my_score is added per
// request).
type Post struct {
	ID        int64
	Title     string
	Score     *float64
	UserCount int64
	// CampaignSince is set while a window of the post held out started
	// less than Params.FlagFor ago: the start of the oldest such window.
	CampaignSince *time.Time
	// Dist counts the current ratings by score 0..5; it adds up to
	// UserCount (the same score record).
	Dist [6]int64
	// Activity is the post's typical honest votes per window as of the
	// window ActivityAt (nil: none yet): what trending orders by.
	Activity   float64
	ActivityAt *time.Time
	// Version is the score record's (0: none yet); it only grows.
	Version int64
}

// view is the in-memory table of posts and scores that pages are served
// from. Entries are immutable once published: a change replaces the post.
//
// It joins two sources: the posts' titles, mirrored from PostgreSQL (the
// posts channel, and a full load every resync), and their scores, read
// from the score topic (post-scores.v1) from its beginning and then
// followed. A post is served once its title is known, with the newest
// score record the topic had for it (none: not rated yet).
type view struct {
	mirror.Table[*Post]

	titles *mirror.Table[string]
	scores *postscore.Follower

	mu     sync.Mutex
	scored map[int64]postscore.Record // records of posts not served yet: their title is not known
}

func newView(pool *pgxpool.Pool, kafka broker.Config, log *zap.Logger, resync, lagEvery time.Duration, reg prometheus.Registerer) *view {
	v := &view{scored: map[int64]postscore.Record{}}
	v.titles = &mirror.Table[string]{
		Pool: pool, Log: log, Resync: resync, Channels: []string{contract.ChannelPosts},
		Query: `SELECT id, title FROM posts`, IDColumn: "id",
		Scan: func(r pgx.Rows) (id int64, title string, err error) {
			err = r.Scan(&id, &title)
			return id, title, err
		},
		Changed: v.retitled,
	}
	malformed := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "query_score_records_malformed_total", Help: "Messages of the score topic that are not score records (skipped).",
	})
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "query_score_topic_lag",
		Help: "Records of the score topic this replica has not applied yet, per partition, from the broker's log ends (how stale its scores can be).",
	}, []string{"partition"})
	if reg != nil {
		reg.MustRegister(malformed, lag)
	}
	v.scores = &postscore.Follower{Kafka: kafka, Log: log, Apply: v.rescored, Malformed: malformed, Lag: lag, LagEvery: lagEvery}
	return v
}

// Run follows both sources until ctx ends.
func (v *view) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { v.titles.Run(ctx) })
	wg.Go(func() { v.scores.Run(ctx) })
	wg.Wait()
}

// Ready fails until every title is loaded and the score topic has been
// read to the end it had at start: a page served earlier would look
// empty, or older than what this instance served before a restart.
func (v *view) Ready(ctx context.Context) error {
	return errors.Join(v.titles.Ready(ctx), v.scores.Ready(ctx))
}

// retitled takes titles read from PostgreSQL (or written here).
func (v *view) retitled(titles map[int64]string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	changed := map[int64]*Post{}
	for id, t := range titles {
		p, ok := v.Get(id)
		switch {
		case ok && p.Title == t:
			continue
		case ok:
			c := *p
			c.Title = t
			changed[id] = &c
		default:
			p = &Post{ID: id, Title: t}
			if r, ok := v.scored[id]; ok {
				setScore(p, r)
				delete(v.scored, id)
			}
			changed[id] = p
		}
	}
	v.PutMany(changed)
}

// rescored takes score records newer than what the view held.
func (v *view) rescored(recs []postscore.Record) {
	v.mu.Lock()
	defer v.mu.Unlock()
	changed := map[int64]*Post{}
	for _, r := range recs {
		p, ok := changed[r.PostID]
		if !ok {
			old, served := v.Get(r.PostID)
			if !served {
				v.scored[r.PostID] = r // served once its title is known
				continue
			}
			c := *old
			p = &c
			changed[r.PostID] = p
		}
		setScore(p, r)
	}
	v.PutMany(changed)
}

// addTitle serves a post created or read here a moment ago, before the
// posts channel names it.
func (v *view) addTitle(id int64, title string) *Post {
	v.retitled(map[int64]string{id: title})
	p, _ := v.Get(id)
	return p
}

// setScore copies a score record into a post.
func setScore(p *Post, r postscore.Record) {
	p.Score, p.UserCount, p.CampaignSince, p.Dist = r.Score, r.UserCount, r.Flags.Since, r.Distribution
	p.Activity, p.ActivityAt, p.Version = r.Activity, r.ActivityAt, r.Version
}

// lookupPost reads the title of a post that the view does not hold yet
// (created a moment ago through another instance) and adds it.
func lookupPost(ctx context.Context, pool *pgxpool.Pool, v *view, id int64) (*Post, error) {
	var title string
	if err := pool.QueryRow(ctx, `SELECT title FROM posts WHERE id = $1`, id).Scan(&title); err != nil {
		return nil, err
	}
	return v.addTitle(id, title), nil
}
