package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// The topic deleted and created again under a running windower (ingest
// creates it at start): its log starts over at 0, behind the stored
// offset. kafka-go alone would wait until the new log passed the stored
// offset and go on from there, skipping every event before it. The
// partition must stop instead, say so (readiness, the gauge), count
// nothing of the new log until an operator moves the stored offset, then
// count all of it.
func TestStoredOffsetOutsideTheLogStopsThePartition(t *testing.T) {
	b := testenv.NewBroker(t, 1)
	db := testenv.NewDatabase(t)
	ctx := context.Background()
	cfg := testConfig(t, db, b)
	cfg.Monitor = 300 * time.Millisecond
	start(t, cfg)
	testenv.WaitHTTP(t, "http://"+cfg.Addr+"/readyz", 30*time.Second)
	before := events(21, 300, 5, 200)
	b.Produce(t, before)
	waitConsumed(t, db, 300, 30*time.Second)

	client := &kafka.Client{Addr: kafka.TCP(b.Config.Brokers...), Timeout: 10 * time.Second}
	resp, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{b.Config.Topic}})
	if err == nil {
		err = resp.Errors[b.Config.Topic]
	}
	if err != nil {
		t.Fatalf("delete topic: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, func() error { return broker.EnsureTopic(ctx, b.Config, b.Config.Topic, 1) })
	after := events(22, 350, 5, 200)
	for i := range after {
		after[i].UserID = "new-" + after[i].UserID // ratings no earlier event supersedes
	}
	b.Produce(t, after[:100])
	testenv.Eventually(t, 15*time.Second, func() error {
		resp, err := http.Get("http://" + cfg.Addr + "/readyz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "reset-offsets") {
			return fmt.Errorf("readyz %d %s", resp.StatusCode, body)
		}
		if v := metric(t, cfg.Addr, "windower_offset_outside_log", "0"); v != 1 {
			return fmt.Errorf("windower_offset_outside_log %v", v)
		}
		return nil
	})
	// The new log passes the stored offset: still nothing of it counts.
	b.Produce(t, after[100:])
	time.Sleep(3 * time.Second)
	if n := ratingsOf(t, db, "new-%"); n != 0 {
		t.Fatalf("%d ratings of the new log counted while its partition was stopped", n)
	}
	if err := tally.SetOffsets(ctx, db.Pool, tally.Key{Consumer: cfg.Group.Name, Topic: b.Config.Topic}, map[int]int64{0: 0}); err != nil {
		t.Fatal(err)
	}
	waitConsumed(t, db, int64(len(after)), 30*time.Second)
	checkAgainstDefinition(t, db, append(append(before[:0:0], before...), after...), time.Second)
	testenv.Eventually(t, 10*time.Second, func() error {
		if s := status(cfg.Addr, "/readyz"); s != http.StatusOK {
			return fmt.Errorf("readyz %d after the reset", s)
		}
		if v := metric(t, cfg.Addr, "windower_offset_outside_log", "0"); v != 0 {
			return fmt.Errorf("windower_offset_outside_log %v after the reset", v)
		}
		return nil
	})
}

func ratingsOf(t *testing.T, db *testenv.Database, like string) int64 {
	t.Helper()
	var n int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ratings WHERE user_id LIKE $1`, like).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The same while the windower is down, and the new log has passed the
// stored offset when it starts: its bounds look fine, but the message
// before the stored offset is not the one applied there.
func TestARecreatedLogThatPassedTheStoredOffsetIsNoticed(t *testing.T) {
	b := testenv.NewBroker(t, 1)
	db := testenv.NewDatabase(t)
	ctx := context.Background()
	cfg := testConfig(t, db, b)
	stop := start(t, cfg)
	before := events(23, 300, 5, 200)
	b.Produce(t, before)
	waitConsumed(t, db, 300, 30*time.Second)
	stop()

	client := &kafka.Client{Addr: kafka.TCP(b.Config.Brokers...), Timeout: 10 * time.Second}
	if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{b.Config.Topic}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error { return broker.EnsureTopic(ctx, b.Config, b.Config.Topic, 1) })
	after := events(24, 400, 5, 200)
	for i := range after {
		after[i].UserID = "new-" + after[i].UserID
	}
	b.Produce(t, after)

	cfg.Addr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	start(t, cfg)
	testenv.Eventually(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + cfg.Addr + "/readyz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "another message at offset 299") {
			return fmt.Errorf("readyz %d %s", resp.StatusCode, body)
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	if n := ratingsOf(t, db, "new-%"); n != 0 {
		t.Fatalf("%d ratings of the new log counted from the old offset on", n)
	}
	if err := tally.SetOffsets(ctx, db.Pool, tally.Key{Consumer: cfg.Group.Name, Topic: b.Config.Topic}, map[int]int64{0: 0}); err != nil {
		t.Fatal(err)
	}
	waitConsumed(t, db, int64(len(after)), 30*time.Second)
	checkAgainstDefinition(t, db, append(append(before[:0:0], before...), after...), time.Second)
}
