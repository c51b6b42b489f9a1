package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
)

// Group is the windower group the services use by default.
var Group = tally.Key{Consumer: "ratestream-windower", Topic: "ratings.v1"}

// Fold applies events to a post state through the windower's own fold,
// all on one partition, in order.
func Fold(p scoring.Params, partition int, events ...rating.Event) *fold.State {
	st := fold.NewState(p, len(events))
	for _, e := range events {
		st.Apply(e, partition)
	}
	return st
}

// Store writes the state as the windower would have written it, with
// the partition's stored position at next (events applied): a database
// holding a given derived state without running the pipeline.
func Store(t testing.TB, db *Database, st *fold.State, partition int, next int64) {
	t.Helper()
	ctx := context.Background()
	if err := tally.WriteState(ctx, db.Pool, st, partition); err != nil {
		t.Fatal(err)
	}
	var newest tally.Position
	for _, v := range st.Votes {
		if v.RatedAt.After(newest.MaxEventTime) {
			newest.MaxEventTime = v.RatedAt
		}
	}
	newest.Exists, newest.Next = true, next
	b := &pgx.Batch{}
	tally.QueuePosition(b, Group, partition, newest, 0)
	if err := db.Pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
}

// Event is a rating event, or a failed test.
func Event(t testing.TB, post int64, user string, score int, at time.Time) rating.Event {
	t.Helper()
	e, err := rating.New(post, user, score, at)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
