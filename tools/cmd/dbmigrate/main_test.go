package main

import (
	"context"
	"io/fs"
	"testing"

	"github.com/ratestream/ratestream/migrations"
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
	if n := tables(t, db); n != 11 {
		t.Fatalf("%d tables after up, want 11 (posts, the six derived tables, scoring_settings, user_pseudonyms, erasures, score_outbox)", n)
	}
	if err := migrate.Down(db.URL); err != nil {
		t.Fatal(err)
	}
	if n := tables(t, db); n != 0 {
		t.Fatalf("%d tables after down, want 0", n)
	}
	ups, err := fs.Glob(migrations.FS, "*.up.sql")
	if err != nil || len(ups) < 2 {
		t.Fatalf("migrations: %v %v", ups, err)
	}
	latest := uint(len(ups)) // numbered 1..n
	v, err := migrate.Up(db.URL)
	if err != nil || v != latest {
		t.Fatalf("up again: version %d, %v; want %d", v, err, latest)
	}
	if v, err := migrate.Up(db.URL); err != nil || v != latest {
		t.Fatalf("up is not idempotent: version %d, %v", v, err)
	}
	var cols int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM information_schema.columns
		WHERE (table_name, column_name) IN (('ratings', 'rerate'), ('rating_averages', 'rerate_count'), ('rating_averages', 'late_count'), ('post_scores', 'campaign_since'))`).Scan(&cols); err != nil || cols != 4 {
		t.Fatalf("the second migration's columns: %d of 4, %v", cols, err)
	}
	if n := tables(t, db); n != 11 {
		t.Fatalf("%d tables after up again, want 11", n)
	}
}
