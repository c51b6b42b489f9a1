// Command seedposts makes sure posts 1..N exist (the load scripts rate
// random posts in that range), in one statement, and moves the id
// sequence past them so that later posts get fresh ids.
//
//	seedposts -n 1000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

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
	tag, err := pool.Exec(ctx, `
		WITH ins AS (
		  INSERT INTO posts (id, title)
		  SELECT g, 'Post ' || g FROM generate_series(1, $1::bigint) AS g
		  ON CONFLICT (id) DO NOTHING
		  RETURNING id)
		SELECT setval(pg_get_serial_sequence('posts', 'id'), GREATEST((SELECT max(id) FROM posts), 1))`, *n)
	if err != nil {
		fail(fmt.Errorf("seed posts: %w", err))
	}
	_ = tag
	var total int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM posts WHERE id BETWEEN 1 AND $1`, *n).Scan(&total); err != nil {
		fail(err)
	}
	fmt.Printf("posts 1..%d exist (%d rows)\n", *n, total)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "seedposts:", err)
	os.Exit(1)
}
