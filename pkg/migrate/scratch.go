package migrate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Scratch creates a fresh database named prefix_<random> on the server
// of adminURL and migrates it, for tests and benchmarks that each need
// tables of their own. It returns the new database's URL and a function
// that drops it.
func Scratch(ctx context.Context, adminURL, prefix string) (url string, drop func(), err error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	if err := admin(ctx, adminURL, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop = func() { _ = admin(context.Background(), adminURL, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") }
	url = withDatabase(adminURL, name)
	if _, err := Up(url); err != nil {
		drop()
		return "", nil, err
	}
	return url, drop, nil
}

func admin(ctx context.Context, url, sql string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase swaps the database name of a postgres URL.
func withDatabase(url, name string) string {
	q := ""
	if i := strings.IndexByte(url, '?'); i >= 0 {
		url, q = url[:i], url[i:]
	}
	return url[:strings.LastIndexByte(url, '/')+1] + name + q
}
