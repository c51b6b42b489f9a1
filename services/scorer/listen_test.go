package main

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/tools/testenv"
)

// When PostgreSQL closes the listening connection (a restart, a failover,
// pg_terminate_backend), the scorer connects again and is woken by the
// next notification. It used to wait on the closed connection again at
// once, forever, at full CPU, and was woken only by its sweep.
func TestListensAgainAfterTheServerClosesTheConnection(t *testing.T) {
	db := testenv.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &worker{log: zap.NewNop(), pool: db.Pool}
	wake := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() { defer close(done); w.listen(ctx, wake) }()
	defer func() { cancel(); <-done }()

	// notified NOTIFYs until the scorer wakes.
	notified := func() bool {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := db.Pool.Exec(ctx, `SELECT pg_notify($1, '0')`, contract.ChannelRescore); err != nil {
				t.Fatal(err)
			}
			select {
			case <-wake:
				return true
			case <-time.After(100 * time.Millisecond):
			}
		}
		return false
	}
	if !notified() {
		t.Fatal("the scorer was never woken by a notification")
	}
	var killed int
	if err := db.Pool.QueryRow(ctx, `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d listening connections (%v), want 1", killed, err)
	}
	if !notified() {
		t.Fatal("once its connection was closed, the scorer was not woken by a notification within 10 s")
	}
}
