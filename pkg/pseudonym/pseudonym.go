// Package pseudonym maps the user ids clients send to the random
// pseudonyms that stand for them on the rating topic and in every derived
// table, and erases users.
//
// The topic is kept forever (replay is a feature), so it can never hold
// anything that identifies a person: ingest publishes each event under
// the user's pseudonym, a random 128-bit string stored only in the
// user_pseudonyms table. Erasing a user deletes that row and writes an
// erase event (rating event version 3) to every partition; the windower
// then deletes every vote of the pseudonym and takes it back from its
// windows, and a replay of the topic does the same at the same place in
// the log. Once the row is gone, nothing ties the events to the person.
//
// The fence. Between reading a user's pseudonym and the broker's
// acknowledgement of the event, ingest holds a shared advisory lock keyed
// by the user id (Resolver). Erase takes the same key exclusively before
// it deletes the mapping, so every event published under the old
// pseudonym is on the topic before the erase events that follow: no
// rating accepted before the erasure can outlive it, and one accepted
// after it gets a new pseudonym.
package pseudonym

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// New returns a fresh pseudonym: 16 random bytes, base64url without
// padding (22 characters).
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// lockKey is the advisory lock key of a user id, computed by PostgreSQL so
// that every process agrees on it.
const lockKey = `hashtextextended(u, 7046)`

// ErrClosed means the resolver stopped.
var ErrClosed = errors.New("pseudonym resolver stopped")

// Resolver gives concurrent requests their users' pseudonyms, creating
// the missing ones, in batches: the requests that arrive while a batch
// is in flight share the next one, which is one round trip (lock, insert
// the new users, read every user's pseudonym) on a connection that keeps
// the users' locks until every request of the batch has released its
// pseudonym.
type Resolver struct {
	pool     *pgxpool.Pool
	maxBatch int
	in       chan *pending
	slots    chan struct{} // batches in flight, each holding a connection
}

type pending struct {
	user  string
	reply chan held
}

type held struct {
	pseudonym string
	b         *batch
	err       error
}

// batch is one round trip's requests; the connection goes back to the
// pool, its locks released, when the last of them is done.
type batch struct {
	mu   sync.Mutex
	left int
	conn *pgxpool.Conn
	free func()
}

// NewResolver returns a resolver making batches of at most maxBatch
// users, at most parallel of them at a time (each holds a connection while
// its events are published).
func NewResolver(pool *pgxpool.Pool, maxBatch, parallel int) *Resolver {
	return &Resolver{pool: pool, maxBatch: maxBatch, in: make(chan *pending, 4*maxBatch), slots: make(chan struct{}, parallel)}
}

// Get returns user's pseudonym (a new one if the user has none) and a
// done function to call once the event published under it is
// acknowledged or has failed: until then an erasure of the user waits.
func (r *Resolver) Get(ctx context.Context, user string) (string, func(), error) {
	p := &pending{user: user, reply: make(chan held, 1)}
	select {
	case r.in <- p:
	case <-ctx.Done():
		return "", nil, ctx.Err()
	}
	// Once queued, the answer is awaited whatever the client does: the
	// batch counts on every request to say it is done.
	h := <-p.reply
	if h.err != nil {
		return "", nil, h.err
	}
	var once sync.Once
	return h.pseudonym, func() { once.Do(h.b.done) }, nil
}

func (b *batch) done() {
	b.mu.Lock()
	b.left--
	last := b.left == 0
	b.mu.Unlock()
	if last {
		b.release()
	}
}

// release unlocks the batch's users and returns the connection; a
// connection that cannot say it unlocked them is closed, which unlocks
// them too.
func (b *batch) release() {
	ctx := context.Background()
	if _, err := b.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`); err != nil {
		_ = b.conn.Conn().Close(ctx)
	}
	b.conn.Release()
	b.free()
}

// Run makes batches until ctx ends; requests still queued then get
// ErrClosed.
func (r *Resolver) Run(ctx context.Context) {
	for {
		var first *pending
		select {
		case first = <-r.in:
		case <-ctx.Done():
			r.drain()
			return
		}
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			first.reply <- held{err: ErrClosed}
			r.drain()
			return
		}
		reqs := []*pending{first}
	fill:
		for len(reqs) < r.maxBatch {
			select {
			case p := <-r.in:
				reqs = append(reqs, p)
			default:
				break fill
			}
		}
		go r.resolve(ctx, reqs)
	}
}

func (r *Resolver) drain() {
	for {
		select {
		case p := <-r.in:
			p.reply <- held{err: ErrClosed}
		default:
			return
		}
	}
}

// resolve runs one batch: in one round trip (one implicit transaction,
// committed before anyone publishes) it locks the users shared, inserts a
// fresh pseudonym for each user without one and reads every user's.
func (r *Resolver) resolve(ctx context.Context, reqs []*pending) {
	free := func() { <-r.slots }
	fail := func(err error) {
		for _, p := range reqs {
			p.reply <- held{err: err}
		}
		free()
	}
	users := make([]string, 0, len(reqs))
	seen := make(map[string]struct{}, len(reqs))
	for _, p := range reqs {
		if _, ok := seen[p.user]; !ok {
			seen[p.user] = struct{}{}
			users = append(users, p.user)
		}
	}
	fresh := make([]string, len(users))
	for i := range fresh {
		fresh[i] = New()
	}
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		fail(fmt.Errorf("pseudonyms: %w", err))
		return
	}
	got, err := lockAndResolve(ctx, conn, users, fresh)
	if err != nil {
		_ = conn.Conn().Close(context.Background()) // whatever it locked goes with it
		conn.Release()
		fail(fmt.Errorf("pseudonyms: %w", err))
		return
	}
	b := &batch{left: len(reqs), conn: conn, free: free}
	for _, p := range reqs {
		p.reply <- held{pseudonym: got[p.user], b: b}
	}
}

func lockAndResolve(ctx context.Context, conn *pgxpool.Conn, users, fresh []string) (map[string]string, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT count(pg_advisory_lock_shared(`+lockKey+`)) FROM unnest($1::text[]) u`, users)
	b.Queue(`INSERT INTO user_pseudonyms (user_id, pseudonym)
		SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (user_id) DO NOTHING`, users, fresh)
	b.Queue(`SELECT user_id, pseudonym FROM user_pseudonyms WHERE user_id = ANY($1::text[])`, users)
	res := conn.SendBatch(ctx, b)
	defer res.Close()
	if _, err := res.Exec(); err != nil {
		return nil, err
	}
	if _, err := res.Exec(); err != nil {
		return nil, err
	}
	rows, err := res.Query()
	if err != nil {
		return nil, err
	}
	got := make(map[string]string, len(users))
	var u, p string
	if _, err := pgx.ForEachRow(rows, []any{&u, &p}, func() error { got[u] = p; return nil }); err != nil {
		return nil, err
	}
	if len(got) != len(users) {
		// A user erased between the insert and the read: impossible while
		// the lock is held, so something else is wrong.
		return nil, fmt.Errorf("%d of %d users have no pseudonym after the insert", len(users)-len(got), len(users))
	}
	return got, res.Close()
}

// Lookup returns the pseudonyms of the users that have one: what readers
// (my_score) use to find a user's votes. It creates none.
func Lookup(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, users []string) (map[string]string, error) {
	rows, err := db.Query(ctx, `SELECT user_id, pseudonym FROM user_pseudonyms WHERE user_id = ANY($1::text[])`, users)
	if err != nil {
		return nil, err
	}
	got := make(map[string]string, len(users))
	var u, p string
	_, err = pgx.ForEachRow(rows, []any{&u, &p}, func() error { got[u] = p; return nil })
	return got, err
}
