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

// spread's p99 of 1..200 ms is the 199th value (index 198), its median
// the 101st; an empty list gives zeros.
func TestSpread(t *testing.T) {
	var ds []time.Duration
	for i := 200; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if p50, p99, worst := spread(ds); p50 != 101 || p99 != 199 || worst != 200 {
		t.Errorf("spread = %v, %v, %v; want 101, 199, 200", p50, p99, worst)
	}
	if p50, p99, worst := spread(nil); p50 != 0 || p99 != 0 || worst != 0 {
		t.Errorf("spread(nil) = %v, %v, %v", p50, p99, worst)
	}
}
