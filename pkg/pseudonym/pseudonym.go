// Package pseudonym maps the user ids clients send to the random
// pseudonyms that stand for them on the rating topic and in every derived
// table, and erases users.
//
// The topic is kept forever (replay is a feature), so it can never hold
// anything that identifies a person: ingest publishes each event under
// the user's pseudonym, 128 bits (when it was made and 80 random bits)
// stored only in the user_pseudonyms table. Erasing a user deletes that row and writes an
// erase event (rating event version 3) to every partition; the windower
// then deletes every vote of the pseudonym and takes it back from its
// windows, and a replay of the topic does the same at the same place in
// the log. Once the row is gone, nothing ties the events to the person.
//
// The fence. A rating may read the user's pseudonym just before the
// mapping is deleted and reach the broker just after the erase events. The
// windower therefore remembers, per partition, the pseudonyms erased in
// the last ErasedFor of event time and drops any later event of theirs:
// after the mapping is gone no new event can carry the pseudonym, so every
// one that follows its erase event is such a straggler. Nothing in ingest
// waits for erasures, and no rating holds a lock.
package pseudonym

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// New returns a fresh pseudonym: 16 bytes, the first 6 the time in
// milliseconds and the other 10 random, written with a base64 alphabet in
// ASCII order (22 characters), so that pseudonyms sort by when they were
// made: a new user's votes go to the end of the index that erasures read
// (ratings.user_id), not to a random page of it. The time says no more
// than the user's first event does.
func New() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	_, _ = rand.Read(b[6:]) // never fails (crypto/rand)
	return ordered.EncodeToString(b[:])
}

// ordered is base64 with its 64 characters in ASCII order.
var ordered = base64.NewEncoding("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz").WithPadding(base64.NoPadding)

// roundTripTimeout bounds a batch's round trip (a stopped database): its
// requests fail instead of waiting.
const roundTripTimeout = 5 * time.Second

// ErrClosed means the resolver stopped.
var ErrClosed = errors.New("pseudonym resolver stopped")

// ErasedFor is how long, in event time after an erasure, the windower
// drops late events of the erased pseudonym (ratings that read it before
// the mapping went): far longer than any rating waits for the broker.
const ErasedFor = 10 * time.Minute

// Resolver gives concurrent requests their users' pseudonyms, creating
// the missing ones, in batches: the requests that arrive within wait of a
// batch's first share one round trip (read every user's pseudonym, insert
// the new users'), committed before any of them is published.
type Resolver struct {
	pool     *pgxpool.Pool
	wait     time.Duration // how long a batch's first request waits for company
	maxBatch int
	in       chan *pending
	slots    chan struct{} // round trips in flight

	// inflight holds, per user in a round trip, the requests waiting for
	// it: a request for a user already in flight joins it instead of the
	// next batch, so no two round trips in flight hold the same user. Two
	// that did would both insert a new user; the later one fails on the
	// other's row, and every other user of its batch with it.
	mu       sync.Mutex
	inflight map[string][]*pending
}

type pending struct {
	user  string
	reply chan held
}

type held struct {
	pseudonym string
	err       error
}

// NewResolver returns a resolver making batches of at most maxBatch
// users, gathered for up to wait, at most parallel round trips at a time.
// Fewer, larger batches cost PostgreSQL less per user.
func NewResolver(pool *pgxpool.Pool, wait time.Duration, maxBatch, parallel int) *Resolver {
	return &Resolver{pool: pool, wait: wait, maxBatch: maxBatch, in: make(chan *pending, 4*maxBatch), slots: make(chan struct{}, parallel),
		inflight: map[string][]*pending{}}
}

// Get returns user's pseudonym, a new one if the user has none; the
// mapping is durable when it returns.
func (r *Resolver) Get(ctx context.Context, user string) (string, error) {
	p := &pending{user: user, reply: make(chan held, 1)}
	select {
	case r.in <- p:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case h := <-p.reply:
		return h.pseudonym, h.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Run makes batches until ctx ends; requests still queued then get
// ErrClosed.
func (r *Resolver) Run(ctx context.Context) {
	for {
		var first *pending
		select {
		case first = <-r.in:
		case <-ctx.Done():
			r.refuseQueued()
			return
		}
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			first.reply <- held{err: ErrClosed}
			r.refuseQueued()
			return
		}
		users := r.join(r.gather([]*pending{first}))
		if len(users) == 0 {
			<-r.slots
			continue
		}
		go r.resolve(ctx, users)
	}
}

// join registers reqs as waiting for their users and returns the users
// no round trip in flight holds yet: the next batch's.
func (r *Resolver) join(reqs []*pending) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	users := make([]string, 0, len(reqs))
	for _, p := range reqs {
		waiting, ok := r.inflight[p.user]
		if !ok {
			users = append(users, p.user)
		}
		r.inflight[p.user] = append(waiting, p)
	}
	return users
}

// gather adds to reqs every request already waiting (those that came
// while the previous round trips were in flight), then those that come
// within wait, up to maxBatch.
func (r *Resolver) gather(reqs []*pending) []*pending {
	drain := func() {
		for len(reqs) < r.maxBatch {
			select {
			case p := <-r.in:
				reqs = append(reqs, p)
			default:
				return
			}
		}
	}
	drain()
	if r.wait <= 0 || len(reqs) >= r.maxBatch {
		return reqs
	}
	timer := time.NewTimer(r.wait)
	defer timer.Stop()
	for len(reqs) < r.maxBatch {
		select {
		case p := <-r.in:
			reqs = append(reqs, p)
		case <-timer.C:
			drain()
			return reqs
		}
	}
	return reqs
}

// refuseQueued answers every queued request with ErrClosed.
func (r *Resolver) refuseQueued() {
	for {
		select {
		case p := <-r.in:
			p.reply <- held{err: ErrClosed}
		default:
			return
		}
	}
}

// resolve runs one batch of distinct users (one statement, one implicit
// transaction) and answers every request waiting for them.
func (r *Resolver) resolve(ctx context.Context, users []string) {
	defer func() { <-r.slots }()
	fresh := make([]string, len(users))
	for i := range fresh {
		fresh[i] = New()
	}
	qctx, cancel := context.WithTimeout(ctx, roundTripTimeout)
	got, err := getOrCreate(qctx, r.pool, users, fresh)
	for try := 0; try < 3 && isUniqueViolation(err); try++ {
		got, err = getOrCreate(qctx, r.pool, users, fresh)
	}
	cancel()
	if err != nil {
		err = fmt.Errorf("pseudonyms: %w", err)
	}
	r.mu.Lock()
	var answered [][]*pending
	for _, u := range users {
		answered = append(answered, r.inflight[u])
		delete(r.inflight, u)
	}
	r.mu.Unlock()
	for i, waiting := range answered {
		for _, p := range waiting {
			p.reply <- held{pseudonym: got[users[i]], err: err}
		}
	}
}

// getOrCreate reads the users' pseudonyms and inserts the fresh ones of
// those without: each read an index probe (LATERAL), whatever the planner
// believes of the table; a plain insert, not ON CONFLICT (whose
// speculative insertion costs half as much again per row), so a user
// another batch inserted meanwhile fails the statement, which runs again
// and then finds it.
func getOrCreate(ctx context.Context, db *pgxpool.Pool, users, fresh []string) (map[string]string, error) {
	rows, err := db.Query(ctx, `WITH found AS (
		  SELECT m.user_id, m.pseudonym FROM unnest($1::text[]) AS u(id)
		  CROSS JOIN LATERAL (SELECT * FROM user_pseudonyms m WHERE m.user_id = u.id) m),
		ins AS (
		  INSERT INTO user_pseudonyms (user_id, pseudonym)
		  SELECT * FROM unnest($1::text[], $2::text[]) AS n(user_id, pseudonym)
		  WHERE NOT EXISTS (SELECT 1 FROM found f WHERE f.user_id = n.user_id)
		  RETURNING user_id, pseudonym)
		SELECT user_id, pseudonym FROM found UNION ALL SELECT user_id, pseudonym FROM ins`, users, fresh)
	if err != nil {
		return nil, err
	}
	got := make(map[string]string, len(users))
	var u, p string
	if _, err := pgx.ForEachRow(rows, []any{&u, &p}, func() error { got[u] = p; return nil }); err != nil {
		return nil, err
	}
	if len(got) != len(users) {
		return nil, fmt.Errorf("%d of %d users have no pseudonym after the insert", len(users)-len(got), len(users))
	}
	return got, nil
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// Lookup returns the pseudonyms of the users that have one: what readers
// (my_score) use to find a user's votes. It creates none.
func Lookup(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, users []string) (map[string]string, error) {
	rows, err := db.Query(ctx, `SELECT m.user_id, m.pseudonym FROM unnest($1::text[]) AS u(id)
		CROSS JOIN LATERAL (SELECT * FROM user_pseudonyms m WHERE m.user_id = u.id) m`, users)
	if err != nil {
		return nil, err
	}
	got := make(map[string]string, len(users))
	var u, p string
	_, err = pgx.ForEachRow(rows, []any{&u, &p}, func() error { got[u] = p; return nil })
	return got, err
}
