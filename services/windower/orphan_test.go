package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/launch"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// caughtUp reports whether every partition's stored offset is its log end.
func caughtUp(ctx context.Context, b *testenv.Broker, db *testenv.Database, consumer string) error {
	ends, err := broker.LogBounds(ctx, b.Config, b.Config.Topic)
	if err != nil {
		return err
	}
	s := &pgStore{pool: db.Pool, key: tally.Key{Consumer: consumer, Topic: b.Config.Topic}}
	stored, err := s.offsets(ctx)
	if err != nil {
		return err
	}
	var behind []string
	for p, e := range ends {
		if stored[p] != e.End {
			behind = append(behind, fmt.Sprintf("%d at %d of %d", p, stored[p], e.End))
		}
	}
	if len(behind) > 0 {
		return fmt.Errorf("partitions behind: %s", strings.Join(behind, ", "))
	}
	return nil
}

// A partition held by a member that never consumes it (here a live member
// that takes its assignment and does nothing) shows lag on /metrics and
// fails /readyz within the bound; once that member is gone, the windower
// consumes everything.
func TestUnconsumedPartitionIsReportedAndReclaimed(t *testing.T) {
	b := testenv.NewBroker(t, 6)
	db := testenv.NewDatabase(t)
	cfg := testConfig(t, db, b)
	cfg.Stall, cfg.Monitor = 5*time.Second, 500*time.Millisecond
	start(t, cfg)
	testenv.WaitHTTP(t, "http://"+cfg.Addr+"/readyz", 30*time.Second)

	squatter, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: cfg.Group.Name, Brokers: b.Config.Brokers, Topics: []string{b.Config.Topic},
		// A long rebalance timeout: the windower's remedy (a forced
		// rebalance) waits for this live member to rejoin however slowly a
		// loaded machine runs it, so it keeps holding partitions and the
		// stall stays visible.
		HeartbeatInterval: time.Second, SessionTimeout: cfg.Session, RebalanceTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	// What the second member holds now: a rebalance (another member
	// joining, or the windower's own remedy) may move its partitions.
	var held atomic.Value
	held.Store([]int(nil))
	go func() {
		for {
			gen, err := squatter.Next(context.Background())
			if err != nil {
				return
			}
			var ids []int
			for _, a := range gen.Assignments[b.Config.Topic] {
				ids = append(ids, a.ID)
			}
			held.Store(ids)
		}
	}()
	testenv.Eventually(t, 30*time.Second, func() error {
		if len(held.Load().([]int)) == 0 {
			return errors.New("the second member has no partition")
		}
		return nil
	})
	evs := events(21, 3000, 60, 300)
	began := time.Now()
	b.Produce(t, evs)
	// Both within the bound, each seen at least once: the windower's
	// remedy (a forced rebalance once the stall passes the bound) may move
	// partitions between the two members right after readiness fails, so
	// the lag and the 503 need not be seen at the same instant.
	var part string
	unready := false
	testenv.Eventually(t, cfg.Stall+5*time.Second, func() error {
		if part == "" {
			var lags []string
			for _, p := range held.Load().([]int) {
				lag := metric(t, cfg.Addr, "windower_consumer_lag", strconv.Itoa(p))
				if lag > 0 {
					part = strconv.Itoa(p)
					break
				}
				lags = append(lags, fmt.Sprintf("%d: %v", p, lag))
			}
			if part == "" {
				return fmt.Errorf("no partition held by the other member shows lag (%s)", strings.Join(lags, ", "))
			}
		}
		unready = unready || status(cfg.Addr, "/readyz") == http.StatusServiceUnavailable
		if !unready {
			return fmt.Errorf("partition %s shows lag, readyz still 200", part)
		}
		return nil
	})
	t.Logf("unconsumed partition %s reported %s after producing", part, time.Since(began).Round(time.Millisecond))

	squatter.Close()
	testenv.Eventually(t, 30*time.Second, func() error { return caughtUp(context.Background(), b, db, cfg.Group.Name) })
	checkAgainstDefinition(t, db, evs, time.Second)
	testenv.WaitHTTP(t, "http://"+cfg.Addr+"/readyz", 20*time.Second)
}

// Kill -9 the windower, then its replacement within a second of its start
// (while its JoinGroup waits for the first one's session to expire), as a
// supervisor restarting it would. Repeated until the group keeps the dead
// replacement as a member (what kfake does about half the time), then
// every partition must still be consumed to its end within 30 s of
// producing.
func TestPartitionsAreConsumedAfterTwoQuickKills(t *testing.T) {
	stallTimeout := cmp.Or(os.Getenv("TEST_WINDOWER_STALL_TIMEOUT"), "10s")
	if testing.Short() {
		t.Skip("long: kills and session timeouts")
	}
	b := testenv.NewBroker(t, 12)
	db := testenv.NewDatabase(t)
	cfg := testConfig(t, db, b)
	bin := testenv.Binary(t, "windower")
	env := []string{
		"WINDOWER_ADDR=" + cfg.Addr, "KAFKA_BROKERS=" + strings.Join(b.Config.Brokers, ","),
		"DATABASE_URL=" + db.URL, "WINDOW=1s", "GRACE=1s", "LOG_LEVEL=warn",
		"WINDOWER_SESSION_TIMEOUT=6s", "WINDOWER_MONITOR_INTERVAL=1s", "WINDOWER_STALL_TIMEOUT=" + stallTimeout}
	run := func() *launch.Process {
		return testenv.Launch(t, launch.Spec{Path: bin, Env: env})
	}
	ctx := context.Background()
	first := events(31, 2000, 200, 400)
	b.Produce(t, first)
	cur := run()
	testenv.Eventually(t, 60*time.Second, func() error { return caughtUp(ctx, b, db, cfg.Group.Name) })

	members := func() (map[string]bool, string, error) {
		owners, state, err := broker.Owners(ctx, b.Config, cfg.Group.Name, b.Config.Topic)
		if err != nil || state != "Stable" || len(owners) != 12 {
			return nil, state, fmt.Errorf("group %s, %d partitions assigned, %v", state, len(owners), err)
		}
		ids := map[string]bool{}
		for _, o := range owners {
			ids[o.ID] = true
		}
		return ids, state, nil
	}
	kept := false
	for round := 0; round < 8 && !kept; round++ {
		var before map[string]bool
		testenv.Eventually(t, 30*time.Second, func() (err error) { before, _, err = members(); return err })
		cur.Kill()
		time.Sleep(500 * time.Millisecond)
		second := run()
		time.Sleep(900 * time.Millisecond) // its JoinGroup waits for the dead one's session
		second.Kill()
		cur = run()
		// Wait for the rebalance after the first one's session expired.
		testenv.Eventually(t, 30*time.Second, func() error {
			now, _, err := members()
			if err != nil {
				return err
			}
			for id := range now {
				if before[id] {
					return fmt.Errorf("the killed member %s still owns partitions", id)
				}
			}
			kept = len(now) > 1
			return nil
		})
		if kept {
			// Still there after two session timeouts: never evicted.
			time.Sleep(12 * time.Second)
			now, _, err := members()
			kept = err == nil && len(now) > 1
		}
		t.Logf("round %d: dead member kept in the group: %v", round, kept)
	}
	if !kept {
		t.Log("the broker evicted the dead member every time; checking consumption anyway")
	}
	second := events(32, 3000, 200, 400)
	began := time.Now()
	b.Produce(t, second)
	testenv.Eventually(t, 30*time.Second, func() error { return caughtUp(ctx, b, db, cfg.Group.Name) })
	t.Logf("every partition consumed to its end %s after producing", time.Since(began).Round(time.Millisecond))
	checkAgainstDefinition(t, db, append(first, second...), time.Second)
}
