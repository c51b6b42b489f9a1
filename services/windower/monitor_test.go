package main

import (
	"testing"
	"time"
)

// The monitor forces a rebalance only in a group that has been Stable for
// a session's time, at most once per stall bound, and never while the
// group rebalances, however long that lasts: forcing then would only
// restart the rebalance.
func TestForcesARebalanceOnlyInASettledGroup(t *testing.T) {
	t.Parallel()
	const bound, settle = 10 * time.Second, 6 * time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		at    int // seconds after t0
		state string
		force bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"stable from the start: the first stuck check forces", []step{
			{0, "Stable", true}, {1, "Stable", false}, {9, "Stable", false},
			// Still stuck and stable a bound after the force, and a
			// settle after the force (which counts as unsettling).
			{10, "Stable", true},
		}},
		{"a rebalance under way is never interrupted", []step{
			{0, "PreparingRebalance", false}, {30, "CompletingRebalance", false},
			{60, "PreparingRebalance", false}, {90, "CompletingRebalance", false},
			// Last seen rebalancing at 90: a session's time later, not before.
			{91, "Stable", false}, {95, "Stable", false}, {96, "Stable", true},
		}},
		{"after a force, the next waits for the group to settle again", []step{
			{0, "Stable", true},
			{1, "PreparingRebalance", false}, {7, "PreparingRebalance", false},
			// A bound after the force, but last seen rebalancing at 7.
			{8, "Stable", false}, {10, "Stable", false}, {12, "Stable", false},
			{13, "Stable", true},
		}},
		{"a short rebalance between checks is missed, the bound still holds", []step{
			{0, "Stable", true}, {5, "Stable", false}, {9, "Stable", false}, {10, "Stable", true},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &monitor{bound: bound, settle: settle}
			for _, s := range c.steps {
				now := t0.Add(time.Duration(s.at) * time.Second)
				m.observe(s.state, now)
				if forced := m.mayForce(now); forced != s.force {
					t.Fatalf("at %ds in state %s: forced %v, want %v", s.at, s.state, forced, s.force)
				}
			}
		})
	}
}
