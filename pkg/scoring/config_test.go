package scoring

import (
	"testing"
	"time"
)

// The WINDOW setting accepts exactly what its help says: whole seconds
// from 1s to 1h.
func TestWindowSettingMatchesItsHelp(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		w  time.Duration
		ok bool
	}{
		{time.Millisecond, false},
		{500 * time.Millisecond, false},
		{999 * time.Millisecond, false},
		{time.Second, true},
		{1500 * time.Millisecond, false},
		{7 * time.Second, true},
		{time.Minute, true},
		{time.Hour, true},
		{time.Hour + time.Second, false},
	} {
		cfg := Config{Window: c.w, BaselineTau: 2 * time.Hour, VolumeZ: 3, OpinionZ: 4, Floor: 2}
		if _, err := cfg.Params(); (err == nil) != c.ok {
			t.Errorf("WINDOW=%s: err %v, want ok=%v", c.w, err, c.ok)
		}
	}
}
