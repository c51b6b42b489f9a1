package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
)

// rescorer claims posts that need a new score and writes it.
type rescorer struct {
	pool     *pgxpool.Pool
	strategy scoring.Strategy
	params   scoring.Params
	key      tally.Key // the windower group whose watermarks give event time
	limit    int
	// revisit is how often a post whose score may still change (a flag
	// that a window's age lifts) is rescored while no window closed since
	// its score: under load every partition's watermark moves several
	// times a second, and rescoring every such post each time filled every
	// round, so that posts whose window had just closed waited behind them.
	revisit time.Duration
	// looked is the last look for posts due that committed.
	looked look
}

// look is a search for posts whose score is due: when, the window each
// partition's watermark was in, and whether it left some behind (it found
// a full round). Searching scans every score not yet stable, so a round
// searches only when it may find one that is due: a partition's watermark
// entered a new window since the last search (the scores of posts rated
// in the window that closed are then claimed at once), half of revisit
// went by, or the last search left some behind.
type look struct {
	at      time.Time
	windows map[int]time.Time
	more    bool
}

// round claims up to limit posts (marked ones first, then ones whose
// score is not stable while event time moved on past the end of the
// window of their score, or for longer than revisit), scores them and
// writes the scores, all in one transaction. It returns how many it did.
func (r *rescorer) round(ctx context.Context) (int, error) {
	var done int
	var looked *look
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		ids, l, err := r.claim(ctx, tx)
		if err != nil {
			return err
		}
		looked = l
		if len(ids) == 0 {
			return nil
		}
		posts, err := tally.LoadForScoring(ctx, tx, r.key, ids, r.params, r.strategy.NeedsHistory())
		if err != nil {
			return err
		}
		if err := tally.WriteScores(ctx, tx, r.score(posts)); err != nil {
			return err
		}
		done = len(posts)
		return nil
	})
	if err == nil && looked != nil {
		r.looked = *looked
	}
	return done, err
}

// claim claims the round's posts: marked ones first, then, when a search
// is due, ones whose score is due. It returns the search it made, if any,
// for round to keep once the claim committed.
func (r *rescorer) claim(ctx context.Context, tx pgx.Tx) ([]int64, *look, error) {
	ids, err := tally.ClaimMarked(ctx, tx, r.limit)
	if err != nil {
		return nil, nil, err
	}
	left := r.limit - len(ids)
	if left <= 0 {
		return ids, nil, nil
	}
	l, err := r.due(ctx, tx, time.Now())
	if err != nil || l == nil {
		return ids, nil, err
	}
	more, err := tally.ClaimDue(ctx, tx, r.key, ids, left, r.params.Window, r.revisit)
	if err != nil {
		return nil, nil, err
	}
	l.more = len(more) == left
	return append(ids, more...), l, nil
}

// due returns the search to make now, or nil when none is due.
func (r *rescorer) due(ctx context.Context, tx pgx.Tx, now time.Time) (*look, error) {
	wms, err := tally.Watermarks(ctx, tx, r.key)
	if err != nil {
		return nil, err
	}
	l := &look{at: now, windows: map[int]time.Time{}}
	for p, wm := range wms {
		l.windows[p] = r.params.WindowStart(wm)
	}
	last := r.looked
	if last.more || now.Sub(last.at) >= r.revisit/2 {
		return l, nil
	}
	for p, w := range l.windows {
		if was, ok := last.windows[p]; !ok || w.After(was) {
			return l, nil
		}
	}
	return nil, nil
}

// score scores the posts with the strategy.
func (r *rescorer) score(posts []*tally.ScoringPost) []tally.Score {
	out := make([]tally.Score, len(posts))
	for i, p := range posts {
		in := p.Input(r.params)
		res := r.strategy.Score(in)
		t := p.Stats.Totals
		s := tally.Score{PostID: p.ID, UserCount: t.Count, Strategy: r.strategy.Name(), Partition: p.Partition,
			AsOf: scoring.AsOf(p.Now, res), StableAt: res.StableAt, Dist: t.Dist,
			Activity: p.Stats.Tracker.Baseline, ActivityAt: p.Stats.Tracker.Current}
		if res.OK {
			v := res.Score
			s.Score = &v
		}
		if t.Count > 0 {
			m := float64(t.Sum) / float64(t.Count)
			s.Mean = &m
		}
		in.Now = s.AsOf
		if since, ok := scoring.CampaignSince(in); ok {
			s.CampaignSince = &since
		}
		out[i] = s
	}
	return out
}
