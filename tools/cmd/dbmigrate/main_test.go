package main

import (
	"context"
	"testing"

	"github.com/ratestream/ratestream/pkg/migrate"
	"github.com/ratestream/ratestream/tools/testenv"
)

func tables(t *testing.T, db *testenv.Database) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'schema_migrations'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMigrationsGoDownAndUpAgain(t *testing.T) {
	db := testenv.NewDatabase(t) // already migrated up
	if n := tables(t, db); n != 7 {
		t.Fatalf("%d tables after up, want 7", n)
	}
	if err := migrate.Down(db.URL); err != nil {
		t.Fatal(err)
	}
	if n := tables(t, db); n != 0 {
		t.Fatalf("%d tables after down, want 0", n)
	}
	v, err := migrate.Up(db.URL)
	if err != nil || v != 1 {
		t.Fatalf("up again: version %d, %v", v, err)
	}
	if v, err := migrate.Up(db.URL); err != nil || v != 1 {
		t.Fatalf("up is not idempotent: version %d, %v", v, err)
	}
	if n := tables(t, db); n != 7 {
		t.Fatalf("%d tables after up again, want 7", n)
	}
}
