package limit

import (
	"testing"
	"time"
)

func TestAllowsBurstThenRate(t *testing.T) {
	now := time.Unix(0, 0)
	l := New(2, 3) // two a second, bursts of three
	l.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("k"); !ok {
			t.Fatalf("burst event %d refused", i)
		}
	}
	ok, wait := l.Allow("k")
	if ok || wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("fourth event: ok=%v wait=%s, want refused with a wait up to 500ms", ok, wait)
	}
	if ok, _ := l.Allow("other"); !ok {
		t.Fatal("keys must not share allowance")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.Allow("k"); !ok {
		t.Fatal("allowance must refill at the rate")
	}
}

func TestZeroRateIsUnlimited(t *testing.T) {
	l := New(0, 0)
	for i := 0; i < 1000; i++ {
		if ok, _ := l.Allow("k"); !ok {
			t.Fatal("refused with the limit off")
		}
	}
}

func TestSweepIntervalFollowsTheRefill(t *testing.T) {
	for _, c := range []struct {
		rate  float64
		burst int
		want  time.Duration
	}{{20, 40, 2 * time.Second}, {100000, 200000, 2 * time.Second}, {1000, 1, time.Second}, {0.01, 10, time.Minute}, {0, 0, time.Second}} {
		if got := New(c.rate, c.burst).SweepInterval(); got != c.want {
			t.Errorf("rate %v burst %d: %s, want %s", c.rate, c.burst, got, c.want)
		}
	}
}
