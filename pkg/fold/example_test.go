package fold_test

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
)

// A user who rates a post again replaces their rating: the old score is
// retracted from the window that held it and the new one is added to the
// window of the new rating, so the post still counts one rater. A repeated
// delivery of the same event changes nothing.
func ExampleState_Apply() {
	p := scoring.DefaultParams(time.Minute)
	st := fold.NewState(p, 0)
	at := time.Date(2026, 5, 1, 12, 0, 30, 0, time.UTC)
	first := rating.Event{V: 1, EventID: uuid.MustParse("01a21210-a2ee-7374-aba6-54a3e2cb9927"), PostID: 42, UserID: "u-1", Score: 1, RatedAt: at}
	again := first
	again.EventID, again.Score, again.RatedAt = uuid.MustParse("01a21210-a2ee-7374-aba6-54a3e2cb9928"), 5, at.Add(2*time.Minute)

	fmt.Println(st.Apply(first, 0) == fold.Counted)
	fmt.Println(st.Apply(again, 0) == fold.Replaced)
	fmt.Println(st.Apply(first, 0) == fold.Superseded)

	post := st.Posts[42]
	fmt.Printf("raters %d, sum %d\n", post.Totals.Count, post.Totals.Sum)
	for _, start := range []time.Time{p.WindowStart(at), p.WindowStart(again.RatedAt)} {
		w := st.Windows[fold.WindowKey{PostID: 42, Start: start}]
		fmt.Printf("window %s: %d ratings summing %d\n", start.Format("15:04"), w.Count, w.Sum)
	}
	// Output:
	// true
	// true
	// true
	// raters 1, sum 5
	// window 12:00: 0 ratings summing 0
	// window 12:02: 1 ratings summing 5
}
