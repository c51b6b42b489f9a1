package main

import (
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/scoring"
)

// next names the first window to close at or after a moment: its end plus
// the grace is not before that moment.
func TestNextClose(t *testing.T) {
	c := closes{params: scoring.Params{Window: time.Minute}, grace: 5 * time.Second}
	at := func(s string) time.Time {
		v, err := time.Parse(time.TimeOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(2026, 11, 26, v.Hour(), v.Minute(), v.Second(), 0, time.UTC)
	}
	for _, tc := range []struct{ now, end string }{
		{"13:00:03", "13:00:00"}, // closes at 13:00:05
		{"13:00:05", "13:00:00"},
		{"13:00:06", "13:01:00"},
		{"13:00:59", "13:01:00"},
		{"13:01:05", "13:01:00"},
	} {
		if got := c.next(at(tc.now)); !got.Equal(at(tc.end)) {
			t.Errorf("next(%s) = %s, want %s", tc.now, got.Format(time.TimeOnly), tc.end)
		}
	}
}
