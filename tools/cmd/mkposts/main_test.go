package main

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/ratestream/ratestream/tools/testenv"
)

// After seeding posts 1..N into an empty database, the next post created
// the way the query service creates one gets a fresh id (N+1), and seeding
// again changes nothing.
func TestNextPostAfterSeedingGetsAFreshID(t *testing.T) {
	db := testenv.NewDatabase(t)
	bin := testenv.Binary(t, "mkposts")
	for round, want := range []int64{1001, 1002} {
		cmd := exec.Command(bin, "-n", "1000")
		cmd.Env = append(os.Environ(), "DATABASE_URL="+db.URL)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mkposts: %v\n%s", err, out)
		}
		var id int64
		if err := db.Pool.QueryRow(context.Background(), `INSERT INTO posts (title) VALUES ('new') RETURNING id`).Scan(&id); err != nil {
			t.Fatalf("seeding %d: create after seeding: %v", round+1, err)
		}
		if id != want {
			t.Fatalf("seeding %d: new post id %d, want %d", round+1, id, want)
		}
	}
}
