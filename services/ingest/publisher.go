package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/rating"
)

// errBusy means too many ratings already wait for the broker.
var errBusy = errors.New("too many ratings waiting for the broker")

// publisher emits rating events. Concurrent calls share produce requests
// through the writer's batching; each call returns only once the broker
// acknowledged its message, or with an error after the timeout.
type publisher struct {
	w       *kafka.Writer
	timeout time.Duration
	slots   chan struct{}
	m       *metrics
}

func newPublisher(w *kafka.Writer, timeout time.Duration, maxInFlight int, m *metrics) *publisher {
	return &publisher{w: w, timeout: timeout, slots: make(chan struct{}, maxInFlight), m: m}
}

// Publish writes one event, encoded as value, durably.
func (p *publisher) Publish(ctx context.Context, e rating.Event, value []byte) error {
	select {
	case p.slots <- struct{}{}:
	default:
		return errBusy
	}
	p.m.inFlight.Inc()
	defer func() { <-p.slots; p.m.inFlight.Dec() }()
	// The request's own context is not used: a client that hangs up must
	// not cancel a write other ratings are batched with.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
	defer cancel()
	start := time.Now()
	err := p.w.WriteMessages(wctx, kafka.Message{Key: e.Key(), Value: value, Time: e.RatedAt})
	if err != nil {
		p.m.produceErrors.Inc()
		return fmt.Errorf("publish rating: %w", err)
	}
	p.m.produceLatency.Observe(time.Since(start).Seconds())
	p.m.produced.Inc()
	return nil
}

// collectStats copies the writer's batch statistics into gauges.
func (p *publisher) collectStats(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s := p.w.Stats()
			p.m.batchSize.Set(float64(s.BatchSize.Avg))
			p.m.batchSizeMax.Set(float64(s.BatchSize.Max))
		}
	}
}
