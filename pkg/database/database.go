// Package database opens the pgx/v5 pool every service shares.
package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config locates PostgreSQL.
type Config struct {
	URL      string `env:"DATABASE_URL" default:"postgres://ratestream@127.0.0.1:55432/ratestream?sslmode=disable" secret:"true" help:"PostgreSQL URL"`
	MaxConns int    `env:"DATABASE_MAX_CONNS" default:"16" help:"pool size"`
}

// Open connects a pool and checks the server answers.
func Open(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = int32(cfg.MaxConns)
	}
	pc.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping postgres: %w", err)
	}
	return pool, nil
}

// Transient reports whether err is a failure that the same statement may
// not meet again later: the connection was lost or refused, the server is
// starting, shutting down or out of resources, or the transaction lost a
// serialization or deadlock race. Callers retry those (or answer 503), and
// treat every other error as a fault of the statement or its data.
func Transient(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code[:2] {
		case "08", // connection exception
			"40", // serialization failure, deadlock
			"53", // insufficient resources
			"55", // lock not available
			"57", // operator intervention: shutdown, cannot connect now
			"58": // system error (I/O)
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
