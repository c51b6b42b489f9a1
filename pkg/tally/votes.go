package tally

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ratestream/ratestream/pkg/fold"
)

// VoteRows are votes as columns, for unnest.
type VoteRows struct {
	post    []int64
	user    []string
	score   []int16
	ratedAt []time.Time
	eventID [][16]byte // not uuid.UUID: pgx would encode each through driver.Valuer
	window  []time.Time
	rerate  []bool
	retract []bool
}

// Add appends one vote.
func (r *VoteRows) Add(k fold.VoteKey, v fold.Vote) {
	r.post, r.user, r.score = append(r.post, k.PostID), append(r.user, k.UserID), append(r.score, int16(v.Score))
	r.ratedAt, r.eventID, r.window = append(r.ratedAt, v.RatedAt), append(r.eventID, [16]byte(v.EventID)), append(r.window, v.Window)
	r.rerate, r.retract = append(r.rerate, v.Rerate), append(r.retract, v.Retracted)
}

// Len is the number of votes.
func (r *VoteRows) Len() int { return len(r.post) }

func (r *VoteRows) args() []any {
	return []any{r.post, r.user, r.score, r.ratedAt, r.eventID, r.window, r.rerate, r.retract}
}

// InsertNewVotes inserts the votes whose (post, user) has none yet and
// calls fresh for each it inserted: the insert is the existence check.
func InsertNewVotes(ctx context.Context, db DB, r *VoteRows, fresh func(fold.VoteKey)) error {
	rows, err := db.Query(ctx, `
		INSERT INTO ratings (post_id, user_id, score, rated_at, event_id, window_start, rerate, retracted)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::timestamptz[], $5::uuid[], $6::timestamptz[], $7::bool[], $8::bool[])
		ON CONFLICT (post_id, user_id) DO NOTHING
		RETURNING post_id, user_id`, r.args()...)
	if err != nil {
		return fmt.Errorf("insert new ratings: %w", err)
	}
	var k fold.VoteKey
	if _, err := pgx.ForEachRow(rows, []any{&k.PostID, &k.UserID}, func() error { fresh(k); return nil }); err != nil {
		return fmt.Errorf("insert new ratings: %w", err)
	}
	return nil
}

// LoadVotes reads the stored votes of the given pairs (each an index
// probe, through LATERAL, whatever the planner believes about the table's
// size) and calls found for each that exists.
func LoadVotes(ctx context.Context, db DB, keys []fold.VoteKey, found func(fold.VoteKey, fold.Vote)) error {
	if len(keys) == 0 {
		return nil
	}
	posts, users := make([]int64, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		posts[i], users[i] = k.PostID, k.UserID
	}
	rows, err := db.Query(ctx, `
		SELECT r.post_id, r.user_id, r.score, r.rated_at, r.event_id, r.window_start, r.rerate, r.retracted
		FROM unnest($1::bigint[], $2::text[]) AS k(post_id, user_id)
		CROSS JOIN LATERAL (
		  SELECT * FROM ratings r WHERE r.post_id = k.post_id AND r.user_id = k.user_id) r`, posts, users)
	if err != nil {
		return fmt.Errorf("load ratings: %w", err)
	}
	var k fold.VoteKey
	var v fold.Vote
	var score int16
	var id [16]byte
	_, err = pgx.ForEachRow(rows, []any{&k.PostID, &k.UserID, &score, &v.RatedAt, &id, &v.Window, &v.Rerate, &v.Retracted}, func() error {
		v.Score, v.RatedAt, v.EventID, v.Window = int(score), v.RatedAt.UTC(), uuid.UUID(id), v.Window.UTC()
		found(k, v)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load ratings: %w", err)
	}
	return nil
}

// QueueVotes stores the votes, replacing the pairs' stored ones.
func QueueVotes(b *pgx.Batch, r *VoteRows) {
	if r.Len() == 0 {
		return
	}
	b.Queue(`
		INSERT INTO ratings (post_id, user_id, score, rated_at, event_id, window_start, rerate, retracted)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::smallint[], $4::timestamptz[], $5::uuid[], $6::timestamptz[], $7::bool[], $8::bool[])
		ON CONFLICT (post_id, user_id) DO UPDATE SET
		  score = excluded.score, rated_at = excluded.rated_at,
		  event_id = excluded.event_id, window_start = excluded.window_start, rerate = excluded.rerate,
		  retracted = excluded.retracted`, r.args()...)
}

// QueueDeleteVotes deletes the votes of the given pairs (erased users'),
// tombstones included.
func QueueDeleteVotes(b *pgx.Batch, keys []fold.VoteKey) {
	if len(keys) == 0 {
		return
	}
	posts, users := make([]int64, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		posts[i], users[i] = k.PostID, k.UserID
	}
	b.Queue(`DELETE FROM ratings r USING unnest($1::bigint[], $2::text[]) AS k(post_id, user_id)
		WHERE r.post_id = k.post_id AND r.user_id = k.user_id`, posts, users)
}

// PostsRatedBy lists the posts of partition that user has a vote on (a
// tombstone included), sorted: the posts an erasure of the user read
// from that partition touches. A post's partition is the one post_stats
// records; ratings.user_id is indexed for this.
func PostsRatedBy(ctx context.Context, db DB, user string, partition int) ([]int64, error) {
	rows, err := db.Query(ctx, `
		SELECT r.post_id FROM ratings r JOIN post_stats s ON s.post_id = r.post_id
		WHERE r.user_id COLLATE "C" = $1 AND s.partition = $2 ORDER BY r.post_id`, user, partition)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// HasVotesBy reports whether any vote (a tombstone included) is stored
// under user.
func HasVotesBy(ctx context.Context, db DB, user string) (bool, error) {
	var any bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ratings WHERE user_id COLLATE "C" = $1)`, user).Scan(&any)
	return any, err
}

// UserVote is one user's latest score of one post.
type UserVote struct {
	UserID string
	PostID int64
	Score  int
}

// VotesOf reads the votes of the given (user, post) pairs that exist and
// were not taken back. users are the ids clients send; ingest stores the
// votes under their pseudonyms (pkg/pseudonym); a user without one is
// read under the id itself (events another producer wrote in clear).
func VotesOf(ctx context.Context, db DB, users []string, posts []int64) ([]UserVote, error) {
	rows, err := db.Query(ctx, `
		SELECT k.user_id, r.post_id, r.score
		FROM unnest($1::text[], $2::bigint[]) AS k(user_id, post_id)
		LEFT JOIN user_pseudonyms m ON m.user_id = k.user_id
		CROSS JOIN LATERAL (
		  SELECT * FROM ratings r WHERE r.post_id = k.post_id AND r.user_id = coalesce(m.pseudonym, k.user_id) AND NOT r.retracted) r`, users, posts)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (UserVote, error) {
		var v UserVote
		var s int16
		err := r.Scan(&v.UserID, &v.PostID, &s)
		v.Score = int(s)
		return v, err
	})
}

// Vote is a stored vote, as exports write it.
type Vote struct {
	PostID      int64
	UserID      string
	Score       int16
	RatedAt     time.Time
	EventID     string
	WindowStart time.Time
	Rerate      bool
}

// EachVote calls fn for every stored vote in r (by rated_at), by post
// and user, streaming; the tombstones of retracted ratings are left out.
func EachVote(ctx context.Context, db DB, r Range, fn func(Vote) error) error {
	rows, err := db.Query(ctx, `SELECT post_id, user_id, score, rated_at, event_id::text, window_start, rerate FROM ratings
		WHERE post_id BETWEEN $1 AND $2 AND rated_at >= $3 AND rated_at < $4 AND NOT retracted ORDER BY post_id, user_id`, r.args()...)
	if err != nil {
		return err
	}
	var v Vote
	_, err = pgx.ForEachRow(rows, []any{&v.PostID, &v.UserID, &v.Score, &v.RatedAt, &v.EventID, &v.WindowStart, &v.Rerate}, func() error {
		v.RatedAt, v.WindowStart = v.RatedAt.UTC(), v.WindowStart.UTC()
		return fn(v)
	})
	return err
}

// HasRatings reports whether any rating is stored.
func HasRatings(ctx context.Context, db DB) (bool, error) {
	var any bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ratings)`).Scan(&any)
	return any, err
}
