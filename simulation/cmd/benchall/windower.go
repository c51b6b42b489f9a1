package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/tally"
)

const (
	windowerEvents = 1_000_000
	windowerPosts  = 1000
	windowerUsers  = 200_000
)

// windowerBench fills the topic with a million ratings (with re-ratings),
// then measures the raw kafka-go consume+decode rate of that topic and the
// windower's rate from start to zero lag.
func windowerBench(ctx context.Context, e *env, o opts) ([]figure, error) {
	brokerAddr, err := e.broker(12)
	if err != nil {
		return nil, err
	}
	cfg := broker.Config{Brokers: []string{brokerAddr}, Topic: "ratings.v1", Partitions: 12, Replicas: 1}
	began := time.Now()
	if err := fill(ctx, cfg); err != nil {
		return nil, err
	}
	fmt.Printf("produced %d events in %s\n", windowerEvents, time.Since(began).Round(time.Millisecond))

	raw, err := rawConsume(ctx, cfg)
	if err != nil {
		return nil, err
	}
	fmt.Printf("raw kafka-go consume+decode: %.0f events/s\n", raw)

	url, pool, err := e.database(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	w, err := e.spawn("windower", "WINDOWER_ADDR="+freeAddr(),
		"DATABASE_URL="+url, "KAFKA_BROKERS="+brokerAddr)
	if err != nil {
		return nil, err
	}
	var consumed, firstCount int64
	var first time.Time
	for consumed < windowerEvents {
		time.Sleep(50 * time.Millisecond)
		if consumed, err = tally.Consumed(ctx, pool); err != nil {
			return nil, err
		}
		if first.IsZero() && consumed > 0 {
			first, firstCount = time.Now(), consumed
		}
		if err := w.exited(); err != nil {
			return nil, err
		}
		if time.Since(start) > 10*time.Minute {
			return nil, fmt.Errorf("windower consumed %d of %d in 10 minutes", consumed, windowerEvents)
		}
	}
	took := time.Since(start)
	rate := float64(windowerEvents-firstCount) / time.Since(first).Seconds()
	fmt.Printf("windower: %d events to zero lag in %s, %s of it joining the group: %.0f events/s once consuming\n",
		windowerEvents, took.Round(time.Millisecond), first.Sub(start).Round(time.Millisecond), rate)
	ratio := rate / raw

	// The same topic replayed by the data teams' command into an empty
	// database: windower and scorer together, until every score is written.
	replayURL, _, err := e.database(ctx)
	if err != nil {
		return nil, err
	}
	start = time.Now()
	r, err := e.spawnArgs("ratestream", []string{"replay", "--database", replayURL}, "KAFKA_BROKERS="+brokerAddr)
	if err != nil {
		return nil, err
	}
	if err := r.wait(); err != nil {
		return nil, err
	}
	replayTook := time.Since(start)
	replayRate := float64(windowerEvents) / replayTook.Seconds()
	fmt.Printf("ratestream replay: %d events into an empty database (migrations, windower, scorer) in %s: %.0f events/s\n",
		windowerEvents, replayTook.Round(time.Millisecond), replayRate)
	return []figure{
		plain("windower", "start to zero lag", took.Seconds(), "s"),
		plain("windower", "windower rate (first batch to zero lag)", rate, "events/s"),
		plain("windower", "raw consume+decode rate", raw, "events/s"),
		plain("windower", "ratio windower/raw (the 0.5 target is retired: PostgreSQL's own insert rate bounds it)", ratio, ""),
		plain("windower", "ratestream replay of the same topic, start to every score written", replayRate, "events/s"),
		plain("windower", "ratio replay/live windower", replayRate/rate, ""),
	}, nil
}

func fill(ctx context.Context, cfg broker.Config) error {
	w, err := broker.NewWriter(cfg, cfg.Topic, broker.WriterTuning{BatchSize: 10000, BatchBytes: 8 << 20, BatchTimeout: 10 * time.Millisecond, WriteTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer w.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Now().Add(-2 * time.Hour).UTC()
	const chunk = 20000
	msgs := make([]kafka.Message, 0, chunk)
	for i := 0; i < windowerEvents; i++ {
		e, err := rating.New(int64(1+rng.IntN(windowerPosts)), fmt.Sprintf("device-id-%d", rng.IntN(windowerUsers)), rng.IntN(6),
			base.Add(time.Duration(i)*7*time.Millisecond))
		if err != nil {
			return err
		}
		v, _ := e.Marshal()
		msgs = append(msgs, kafka.Message{Key: e.Key(), Value: v})
		if len(msgs) == chunk || i == windowerEvents-1 {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return err
			}
			msgs = msgs[:0]
		}
	}
	return nil
}

// rawConsume reads every partition to its end with kafka-go and decodes
// each event, the floor of what any consumer must do.
func rawConsume(ctx context.Context, cfg broker.Config) (float64, error) {
	parts, err := broker.Partitions(ctx, cfg, cfg.Topic)
	if err != nil {
		return 0, err
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	start := time.Now()
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- broker.ReadPartition(ctx, cfg, cfg.Topic, p, func(m kafka.Message) error {
				if _, err := rating.Unmarshal(m.Value); err != nil {
					return err
				}
				n.Add(1)
				return nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}
