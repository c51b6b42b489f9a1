package pseudonym

import (
	"testing"
	"time"
)

// Pseudonyms are unique, 22 characters, and sort by when they were made.
func TestNewSortsByTime(t *testing.T) {
	seen := map[string]bool{}
	prev := New()
	for i := range 2000 {
		if i%500 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		p := New()
		if len(p) != 22 || seen[p] {
			t.Fatalf("pseudonym %q (seen: %v)", p, seen[p])
		}
		seen[p] = true
		if i%500 == 0 && p <= prev {
			t.Fatalf("%s made after %s sorts before it", p, prev)
		}
		prev = p
	}
}
