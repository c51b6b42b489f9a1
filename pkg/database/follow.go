package database

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Follower keeps one connection listening on notification channels. After
// every (re)connection it calls Resync, so that whatever was notified while
// it was away is picked up, then Notify for each notification, and Resync
// again every Every as a safety net.
type Follower struct {
	Pool     *pgxpool.Pool
	Log      *zap.Logger
	Channels []string
	Notify   func(channel, payload string)
	Resync   func(ctx context.Context) error // optional
	Every    time.Duration                   // optional; 0: only after connecting
}

// Run follows until ctx ends, reconnecting after errors.
func (f *Follower) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := f.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		f.Log.Warn("following notifications failed; retrying", zap.Strings("channels", f.Channels), zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (f *Follower) follow(ctx context.Context) error {
	pc, err := f.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection leaves the pool: it only listens.
	conn := pc.Hijack()
	defer conn.Close(context.Background())
	for _, ch := range f.Channels {
		if _, err := conn.Exec(ctx, `LISTEN "`+ch+`"`); err != nil {
			return err
		}
	}
	resync := func() error {
		if f.Resync == nil {
			return nil
		}
		return f.Resync(ctx)
	}
	// Listen first, then resync: a change in between is seen at least once.
	if err := resync(); err != nil {
		return err
	}
	every := f.Every
	if every <= 0 {
		every = 24 * time.Hour
	}
	next := time.Now().Add(every)
	for {
		wctx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(wctx)
		// Read before cancel, which sets it too: asked after, every
		// error looked like the deadline, and a connection the server
		// had closed was waited on again at once, forever, at full CPU.
		expired := wctx.Err() != nil
		cancel()
		switch {
		case err == nil:
			f.Notify(n.Channel, n.Payload)
		case ctx.Err() != nil:
			return nil
		case expired:
			if err := resync(); err != nil {
				return err
			}
			next = time.Now().Add(every)
		default:
			return err
		}
	}
}
