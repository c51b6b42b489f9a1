// Package fold applies rating events to a post's state with the rules of
// one user, one vote: a user's latest rating (by rated_at, then event id)
// is the only one counted; when it changes, the old score is retracted from
// the window that held it and the new one is added to the window of the
// new event. A retraction event takes the user's rating back the same way
// and leaves a tombstone, so that an older rating delivered after it stays
// out; the retraction itself is activity in its own window. An erasure
// (expanded per post by whoever reads the log: see Erasure) takes the
// user's rating back from the window that held it and deletes the vote,
// tombstone and all; it is no activity and moves no window forward. The
// windower runs it per batch over state loaded from
// PostgreSQL; the simulator runs it over state kept in memory. Both get the
// same windows from the same events.
package fold

import (
	"time"

	"github.com/google/uuid"

	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
)

// VoteKey identifies one user's vote on one post.
type VoteKey struct {
	PostID int64
	UserID string
}

// Vote is a user's latest rating of a post.
type Vote struct {
	Score   int
	RatedAt time.Time
	EventID uuid.UUID
	Window  time.Time // start of the window that holds it
	// Rerate says the vote replaced the user's earlier vote on the post;
	// on a tombstone, that the user had voted on the post before it (a
	// rating after it is a changed vote, not a first-time rater's).
	Rerate bool
	// Retracted says this is a tombstone: the user's latest event on the
	// post took their rating back (Score is 0; RatedAt and EventID are the
	// retraction's).
	Retracted bool
}

// WindowKey identifies one window of one post.
type WindowKey struct {
	PostID int64
	Start  time.Time
}

// Post is the per-post state the fold keeps next to the windows: where
// the post's events live, and scoring's incremental state, which the fold
// updates only through scoring.Stats' Rated and Change.
type Post struct {
	Partition int
	scoring.Stats
}

// State is a working set of votes, windows and posts. A key missing from a
// map means the row does not exist: whoever fills a State must load every
// key the events it applies can touch (see Needs).
type State struct {
	Params  scoring.Params
	Votes   map[VoteKey]Vote
	Windows map[WindowKey]scoring.Window
	Posts   map[int64]*Post

	DirtyVotes   map[VoteKey]struct{}
	DirtyWindows map[WindowKey]struct{}
	DirtyPosts   map[int64]struct{}
}

// NewState returns an empty state with room for the votes of about
// events events (0 when unknown), so that a batch does not grow its vote
// maps; windows and posts are far fewer than events, and grow as needed.
func NewState(p scoring.Params, events int) *State {
	return &State{
		Params:       p,
		Votes:        make(map[VoteKey]Vote, events),
		Windows:      map[WindowKey]scoring.Window{},
		Posts:        map[int64]*Post{},
		DirtyVotes:   make(map[VoteKey]struct{}, events),
		DirtyWindows: map[WindowKey]struct{}{},
		DirtyPosts:   map[int64]struct{}{},
	}
}

// Outcome says what an event did.
type Outcome int

// Outcomes of Apply.
const (
	// Counted: the event is now the user's latest rating of the post.
	Counted Outcome = iota
	// Replaced: as Counted, and an earlier rating was retracted.
	Replaced
	// Superseded: the stored rating is as new or newer (a duplicate
	// delivery or an older event); nothing changed.
	Superseded
	// Retracted: a retraction took the user's counted rating back.
	Retracted
	// NothingToRetract: a retraction found no counted rating (none, or one
	// taken back already); only its tombstone is stored.
	NothingToRetract
	// Erased: an erasure deleted the user's vote on the post (a counted
	// rating is taken back from its window and the post's totals).
	Erased
	// NothingToErase: an erasure found no vote of the user on the post.
	NothingToErase
)

// Truncate gives rated_at the precision PostgreSQL stores, so that the
// order of two ratings never depends on whether one came from memory or
// from the database.
func Truncate(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// Apply folds one event into the state. partition is where the post's
// events live; it is recorded for posts seen for the first time.
func (s *State) Apply(e rating.Event, partition int) Outcome {
	at := Truncate(e.RatedAt)
	vk := VoteKey{e.PostID, e.UserID}
	old, had := s.Votes[vk]
	if e.Erase {
		return s.erase(vk, old, had)
	}
	if had && !rating.Newer(at, e.EventID, old.RatedAt, old.EventID) {
		return Superseded
	}
	start := s.Params.WindowStart(at)
	counted := had && !old.Retracted
	// voted: the user had a vote on the post before this event, counted or
	// taken back; their next rating is a changed vote.
	voted := counted || (had && old.Rerate)
	if e.Retract && !counted {
		s.Votes[vk] = Vote{RatedAt: at, EventID: e.EventID, Window: start, Rerate: voted, Retracted: true}
		s.DirtyVotes[vk] = struct{}{}
		return NothingToRetract
	}
	post := s.Posts[e.PostID]
	if post == nil {
		post = &Post{Partition: partition}
		s.Posts[e.PostID] = post
	}
	for _, due := range post.Rated(start, s.Windows[WindowKey{e.PostID, post.Tracker.Current}], s.Params) {
		k := WindowKey{e.PostID, due}
		if w, ok := s.Windows[k]; ok {
			s.Windows[k] = post.Review(w, s.Params)
			s.DirtyWindows[k] = struct{}{}
		}
	}
	if counted {
		d := scoring.Delta{Sum: -int64(old.Score), Count: -1}
		if old.Rerate {
			d.Rerates, d.RerateSum = -1, -int64(old.Score)
		}
		s.change(post, WindowKey{e.PostID, old.Window}, d)
	}
	s.DirtyVotes[vk] = struct{}{}
	s.DirtyPosts[e.PostID] = struct{}{}
	if e.Retract {
		s.change(post, WindowKey{e.PostID, start}, scoring.Delta{Retracts: 1})
		post.Totals.Voted(old.Score, true, -1)
		s.Votes[vk] = Vote{RatedAt: at, EventID: e.EventID, Window: start, Rerate: true, Retracted: true}
		return Retracted
	}
	d := scoring.Delta{Sum: int64(e.Score), Count: 1}
	if voted {
		d.Rerates, d.RerateSum = 1, int64(e.Score)
	}
	s.change(post, WindowKey{e.PostID, start}, d)
	post.Totals.Voted(old.Score, counted, e.Score)
	s.Votes[vk] = Vote{Score: e.Score, RatedAt: at, EventID: e.EventID, Window: start, Rerate: voted}
	if counted {
		return Replaced
	}
	return Counted
}

// erase deletes the vote at vk (old, if had): whatever its time, since
// an erasure is the user's last word on every post. A post with a vote
// has a Post row: the loader loads it.
func (s *State) erase(vk VoteKey, old Vote, had bool) Outcome {
	if !had {
		return NothingToErase
	}
	if !old.Retracted {
		post := s.Posts[vk.PostID]
		d := scoring.Delta{Sum: -int64(old.Score), Count: -1}
		if old.Rerate {
			d.Rerates, d.RerateSum = -1, -int64(old.Score)
		}
		s.change(post, WindowKey{vk.PostID, old.Window}, d)
		post.Totals.Voted(old.Score, true, -1)
		s.DirtyPosts[vk.PostID] = struct{}{}
	}
	delete(s.Votes, vk)
	s.DirtyVotes[vk] = struct{}{} // dirty and absent: the row is deleted
	return Erased
}

// Erasure expands an erasure read from a partition into one event per
// post: posts are the posts the user has a vote on (sorted, any order
// gives the same state), and the events keep the erasure's id and time.
func Erasure(e rating.Event, posts []int64) []rating.Event {
	out := make([]rating.Event, len(posts))
	for i, id := range posts {
		x := e
		x.PostID = id
		out[i] = x
	}
	return out
}

func (s *State) change(post *Post, k WindowKey, d scoring.Delta) {
	old, ok := s.Windows[k]
	s.Windows[k] = post.Change(old, ok, k.Start, d, s.Params)
	s.DirtyWindows[k] = struct{}{}
}

// MarkLate records that an applied event reached its window after the
// window had closed.
func (s *State) MarkLate(e rating.Event) {
	k := WindowKey{e.PostID, s.Params.WindowStart(Truncate(e.RatedAt))}
	w := s.Windows[k]
	w.Late++
	s.Windows[k] = w
	s.DirtyWindows[k] = struct{}{}
}

// Needs lists the keys an event can touch before its stored vote is
// known: its vote and its own window. Whoever loads the state must add
// the window of each stored vote it finds, and each post's Tracked
// windows.
func (s *State) Needs(e rating.Event) (VoteKey, WindowKey) {
	return VoteKey{e.PostID, e.UserID}, WindowKey{e.PostID, s.Params.WindowStart(Truncate(e.RatedAt))}
}

// Tracked lists the windows of post id (whose stats are p) that applying
// events up to window upTo can touch besides the events' own and their
// stored votes': the current window, which a newer window finishes, and
// the windows awaiting review that become due by then.
func Tracked(id int64, p *Post, upTo time.Time, params scoring.Params) []WindowKey {
	if p.Tracker.Current.IsZero() {
		return nil
	}
	out := []WindowKey{{id, p.Tracker.Current}}
	for _, t := range p.Tracker.Due(upTo, params) {
		out = append(out, WindowKey{id, t})
	}
	return out
}

// ClearDirty forgets what changed, after it was written.
func (s *State) ClearDirty() {
	clear(s.DirtyVotes)
	clear(s.DirtyWindows)
	clear(s.DirtyPosts)
}
