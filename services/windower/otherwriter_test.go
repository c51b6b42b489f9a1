package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/tools/testenv"
)

// Another writer of the same tables (a second windower group, or a
// replay pointed at the live database with --force) changes rows that the
// first windower's cache holds. The cache must notice (the other group's
// key stores positions) and stop serving rows, so that neither writer's
// counts are lost, while both run.
func TestAnotherWriterOfTheTablesLosesNothing(t *testing.T) {
	b := testenv.NewBroker(t, 3)
	db := testenv.NewDatabase(t)
	ctx := context.Background()
	live := testConfig(t, db, b)
	start(t, live)
	other := testConfig(t, db, b)
	other.Group.Name, other.Kafka.Topic = "another-group", "ratings.elsewhere"
	if err := broker.EnsureTopic(ctx, other.Kafka, other.Kafka.Topic, 3); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Minute)
	mk := func(prefix string, n int) []rating.Event {
		var out []rating.Event
		for i := range n {
			out = append(out, testenv.Event(t, int64(1+i%5), fmt.Sprintf("%s-%d", prefix, i), i%6, at.Add(time.Duration(i)*10*time.Millisecond)))
		}
		return out
	}
	send := func(topic string, evs []rating.Event) { b.ProduceTo(t, testenv.Target{Topic: topic}, evs) }
	first := mk("live", 600)
	send(live.Kafka.Topic, first)
	waitConsumed(t, db, 600, 30*time.Second)

	start(t, other)
	second, elsewhere := mk("live-later", 600), mk("elsewhere", 600)
	var wg sync.WaitGroup
	wg.Go(func() { send(live.Kafka.Topic, second) })
	wg.Go(func() { send(other.Kafka.Topic, elsewhere) })
	wg.Wait()
	waitConsumed(t, db, 1800, 60*time.Second)
	checkAgainstDefinition(t, db, append(append(first, second...), elsewhere...), time.Second)
	for post := int64(1); post <= 5; post++ {
		var count int64
		if err := db.Pool.QueryRow(ctx, `SELECT rating_count FROM post_stats WHERE post_id = $1`, post).Scan(&count); err != nil {
			t.Fatal(err)
		}
		if count != 360 {
			t.Errorf("post %d: totals count %d ratings, want 360", post, count)
		}
	}
	if v := metric(t, live.Addr, "windower_other_writers", ""); v != 1 {
		t.Errorf("windower_other_writers %v, want 1", v)
	}
}
