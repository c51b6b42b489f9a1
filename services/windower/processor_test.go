package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/fold"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
)

// These tests run the processor's partition loop over logs and a store in
// memory: batching, the fold, fencing, retries and isolation, each in a
// fraction of a second. The PostgreSQL and broker tests beside them check
// the same behaviour end to end.

const memPartitions = 4

func memProcessor(s store, logs map[int][]kafka.Message, dlq deadLetters, maxBatch int) *processor {
	m := newMetrics(prometheus.NewRegistry())
	return &processor{
		log: zap.NewNop(), store: s, m: m, applier: &applier{log: zap.NewNop(), store: s, dlq: dlq, m: m},
		maxBatch: maxBatch, maxWait: time.Millisecond,
		open: func(partition int, offset int64, _ func(string)) (source, error) {
			if offset < 0 { // kafka.FirstOffset
				offset = 0
			}
			return &memReader{log: logs[partition], i: int(offset)}, nil
		},
	}
}

// consumeAll runs one worker per partition until every log is consumed.
func consumeAll(t *testing.T, p *processor, s store, logs map[int][]kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for part := range logs {
		wg.Go(func() { p.partition(ctx, part, nil) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := s.offsets(ctx)
		done := true
		for part, log := range logs {
			done = done && got[part] == int64(len(log))
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			wg.Wait()
			t.Fatalf("not consumed within 10s: offsets %v", got)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
}

func TestProcessorGivesTheSameStateWhateverTheBatchSize(t *testing.T) {
	t.Parallel()
	evs := events(41, 3000, 25, 150)
	logs := partitioned(evs, nil, memPartitions)
	var first *memStore
	for _, size := range []int{1, 7, 5000} {
		m := newMemStore(scoring.DefaultParams(time.Second), time.Second)
		consumeAll(t, memProcessor(m, logs, &memDLQ{}, size), m, logs)
		if err := checkDefinition(m, evs); err != nil {
			t.Fatalf("batch size %d: %v", size, err)
		}
		if first == nil {
			first = m
			continue
		}
		v1, w1, p1 := first.snapshot()
		v2, w2, p2 := m.snapshot()
		// Printed, not DeepEqual: a window's Ref holds NaN (no opinion yet),
		// which equals nothing, itself included; fmt prints maps sorted.
		if fmt.Sprint(v1) != fmt.Sprint(v2) || fmt.Sprint(w1) != fmt.Sprint(w2) || fmt.Sprint(p1) != fmt.Sprint(p2) {
			t.Fatalf("batch size %d gives another state than size 1", size)
		}
	}
}

func TestProcessorParksWhatTheStoreRefusesAndAppliesTheRest(t *testing.T) {
	t.Parallel()
	evs := events(42, 2000, 20, 100)
	var bad []int
	for i := 3; i < len(evs); i += 97 {
		evs[i].UserID = "refused"
		bad = append(bad, i)
	}
	undecodable := map[int][]kafka.Message{1: {{Key: []byte("9"), Value: []byte("{not json")}}}
	logs := partitioned(evs, undecodable, memPartitions)
	m := newMemStore(scoring.DefaultParams(time.Second), time.Second)
	m.failVote = func(k fold.VoteKey) error {
		if k.UserID == "refused" {
			return &pgconn.PgError{Code: "22021", Message: "invalid byte sequence"}
		}
		return nil
	}
	dlq := &memDLQ{}
	consumeAll(t, memProcessor(m, logs, dlq, 500), m, logs)

	var kept []rating.Event
	for _, e := range evs {
		if e.UserID != "refused" {
			kept = append(kept, e)
		}
	}
	if err := checkDefinition(m, kept); err != nil {
		t.Fatal(err)
	}
	stages := map[string]int{}
	for _, d := range dlq.all() {
		h := map[string]string{}
		for _, x := range d.Headers {
			h[x.Key] = string(x.Value)
		}
		stages[h[contract.HeaderDLQStage]]++
		if h[contract.HeaderDLQStage] == contract.DLQStageStore && h[contract.HeaderDLQSQLState] != "22021" {
			t.Errorf("store dead letter without its SQLSTATE: %v", h)
		}
	}
	if stages[contract.DLQStageStore] != len(bad) || stages[contract.DLQStageDecode] != 1 {
		t.Fatalf("dead letters by stage %v, want %d store and 1 decode", stages, len(bad))
	}
}

func TestProcessorRetriesAnOutageAndLosesNothing(t *testing.T) {
	t.Parallel()
	evs := events(43, 800, 10, 60)
	logs := partitioned(evs, nil, memPartitions)
	m := newMemStore(scoring.DefaultParams(time.Second), time.Second)
	var failures atomic.Int32
	m.failTxn = func() error {
		if failures.Add(1) <= 2 {
			return &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}
		}
		return nil
	}
	dlq := &memDLQ{}
	consumeAll(t, memProcessor(m, logs, dlq, 100), m, logs)
	if err := checkDefinition(m, evs); err != nil {
		t.Fatal(err)
	}
	if n := len(dlq.all()); n != 0 {
		t.Fatalf("%d dead letters from an outage", n)
	}
}

func TestProcessorStopsWhenAnotherInstanceMovedOn(t *testing.T) {
	t.Parallel()
	evs := events(44, 300, 3, 30)
	logs := partitioned(evs, nil, 1)
	m := newMemStore(scoring.DefaultParams(time.Second), time.Second)
	p := memProcessor(m, logs, &memDLQ{}, 50)
	// Another instance has consumed the partition up to 120 since this
	// worker read its position.
	stale := batch{partition: 0, expected: position{}, next: 50}
	m.pos[0] = position{Exists: true, Next: 120}
	if _, err := p.store.apply(context.Background(), stale); !errors.Is(err, errFenced) {
		t.Fatalf("apply on a moved partition: %v, want errFenced", err)
	}
	// A worker resumes from what is stored, not from where it was.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, _ := p.open(0, 120, nil)
	msgs, err := fetch(ctx, r, 1000, time.Millisecond)
	if err != nil || msgs[0].Offset != 120 {
		t.Fatalf("resumed at %v (%v), want 120", msgs[0].Offset, err)
	}
}
