package main

import (
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/mirror"
)

// postIDs is the set of existing post ids, in memory, so that a rating of
// an unknown post is refused without a database round trip. A new post is
// known within milliseconds (the posts channel), and everything is loaded
// again every POST_REFRESH.
type postIDs = mirror.Table[struct{}]

func newPostIDs(pool *pgxpool.Pool, log *zap.Logger, resync time.Duration) *postIDs {
	return &postIDs{
		Pool: pool, Log: log, Resync: resync, Channels: []string{contract.ChannelPosts},
		Query: `SELECT id FROM posts`, IDColumn: "id",
		Scan: func(r pgx.Rows) (int64, struct{}, error) {
			var id int64
			err := r.Scan(&id)
			return id, struct{}{}, err
		},
	}
}
