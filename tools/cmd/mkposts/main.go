// Command mkposts makes sure posts 1..N exist (the load scripts rate
// random posts in that range), in one statement, and moves the id
// sequence past them so that later posts get fresh ids.
//
//	mkposts -n 1000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratestream/ratestream/pkg/config"
	"github.com/ratestream/ratestream/pkg/database"
)

func main() {
	n := flag.Int("n", 1000, "posts 1..n must exist")
	flag.Parse()
	var cfg struct{ DB database.Config }
	if err := config.Load(&cfg, flag.Args(), os.Stdout); err != nil {
		if errors.Is(err, config.ErrHelp) {
			return
		}
		fail(err)
	}
	if *n < 1 {
		fail(fmt.Errorf("-n must be at least 1"))
	}
	ctx := context.Background()
	pool, err := database.Open(ctx, cfg.DB)
	if err != nil {
		fail(err)
	}
	defer pool.Close()
	if err := seed(ctx, pool, *n); err != nil {
		fail(err)
	}
	var total int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM posts WHERE id BETWEEN 1 AND $1`, *n).Scan(&total); err != nil {
		fail(err)
	}
	fmt.Printf("posts 1..%d exist (%d rows)\n", *n, total)
}

// seed inserts the missing posts of 1..n, then moves the id sequence to
// the largest id. The two are separate statements of one transaction: in
// a single statement the sequence would be set from a snapshot that does
// not see the rows the same statement inserts, and the next post created
// would collide with a seeded id.
func seed(ctx context.Context, pool *pgxpool.Pool, n int) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO posts (id, title)
			SELECT g, 'Post ' || g FROM generate_series(1, $1::bigint) AS g
			ON CONFLICT (id) DO NOTHING`, n); err != nil {
			return fmt.Errorf("seed posts: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			SELECT setval(pg_get_serial_sequence('posts', 'id'), GREATEST((SELECT max(id) FROM posts), 1))`); err != nil {
			return fmt.Errorf("move the post id sequence: %w", err)
		}
		return nil
	})
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkposts:", err)
	os.Exit(1)
}
