package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/mirror"
	"github.com/ratestream/ratestream/pkg/tally"
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
	// UserCount (the same row of post_scores).
	Dist [6]int64
	// Activity is the post's typical honest votes per window as of the
	// window ActivityAt (nil: none yet): what trending orders by.
	Activity   float64
	ActivityAt *time.Time
}

// view is the in-memory table of posts and scores that pages are served
// from. Entries are immutable once published: a change replaces the post.
type view = mirror.Table[*Post]

func scanPost(r pgx.Row) (int64, *Post, error) {
	v, err := tally.ScanView(r)
	return v.ID, &Post{ID: v.ID, Title: v.Title, Score: v.Score, UserCount: v.UserCount, CampaignSince: v.CampaignSince,
		Dist: v.Dist, Activity: v.Activity, ActivityAt: v.ActivityAt}, err
}

// newView mirrors posts with their scores. It follows the posts and
// post_scores channels, so it is as fresh as the scorer's last write, and
// loads everything again every resync.
func newView(pool *pgxpool.Pool, log *zap.Logger, resync time.Duration) *view {
	return &view{
		Pool: pool, Log: log, Resync: resync,
		Channels: []string{contract.ChannelPosts, contract.ChannelPostScores},
		Query:    tally.ViewQuery, IDColumn: tally.ViewID,
		Scan: func(r pgx.Rows) (int64, *Post, error) { return scanPost(r) },
	}
}

// lookupPost reads one post that the view does not hold yet (created a
// moment ago through another instance) and adds it.
func lookupPost(ctx context.Context, pool *pgxpool.Pool, v *view, id int64) (*Post, error) {
	_, p, err := scanPost(pool.QueryRow(ctx, tally.ViewQuery+` WHERE `+tally.ViewID+` = $1`, id))
	if err != nil {
		return nil, err
	}
	v.Put(p.ID, p)
	return p, nil
}
