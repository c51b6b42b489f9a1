package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/rating"
)

// processor consumes ratings.v1 as a member of a consumer group. Each
// partition it is assigned is read from the offset stored in PostgreSQL
// (not the group's committed offset), in batches applied one transaction
// each, so that a crash, a restart or a rebalance neither loses nor
// double-counts an event.
type processor struct {
	log      *zap.Logger
	kafka    broker.Config
	group    string
	store    *store
	dlq      *kafka.Writer
	m        *metrics
	maxBatch int
	maxWait  time.Duration
	session  time.Duration
}

// run joins the group and processes generation after generation until ctx
// ends.
func (p *processor) run(ctx context.Context) error {
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    p.group,
		Brokers:               p.kafka.Brokers,
		Topics:                []string{p.kafka.Topic},
		HeartbeatInterval:     time.Second,
		SessionTimeout:        p.session,
		RebalanceTimeout:      p.session,
		JoinGroupBackoff:      time.Second,
		Timeout:               5 * time.Second,
		WatchPartitionChanges: true,
		StartOffset:           kafka.FirstOffset,
	})
	if err != nil {
		return fmt.Errorf("consumer group: %w", err)
	}
	defer cg.Close()
	for {
		gen, err := cg.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.log.Warn("joining consumer group failed; retrying", zap.Error(err))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		assigned := gen.Assignments[p.kafka.Topic]
		ids := make([]int, 0, len(assigned))
		for _, a := range assigned {
			ids = append(ids, a.ID)
		}
		p.log.Info("assigned partitions", zap.Int32("generation", gen.ID), zap.Ints("partitions", ids))
		p.m.assigned.Set(float64(len(ids)))
		for _, id := range ids {
			gen.Start(func(gctx context.Context) { p.partition(gctx, id) })
		}
	}
}

// partition processes one partition until the generation ends.
func (p *processor) partition(ctx context.Context, id int) {
	log := p.log.With(zap.Int("partition", id))
	for ctx.Err() == nil {
		err := p.consume(ctx, id, log)
		if ctx.Err() != nil {
			return
		}
		log.Warn("partition worker restarting", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (p *processor) consume(ctx context.Context, id int, log *zap.Logger) error {
	pos, err := p.store.position(ctx, nil, id, false)
	if err != nil {
		return err
	}
	start := kafka.FirstOffset
	if pos.exists {
		start = pos.next
	}
	r, err := broker.NewPartitionReader(p.kafka, p.kafka.Topic, id, start, p.maxWait)
	if err != nil {
		return err
	}
	defer r.Close()
	log.Info("resuming partition", zap.Int64("offset", start))
	lag := p.m.lag.WithLabelValues(strconv.Itoa(id))
	for {
		msgs, err := fetch(ctx, r, p.maxBatch, p.maxWait)
		if err != nil {
			return err
		}
		b := batch{partition: id, expected: pos, next: msgs[len(msgs)-1].Offset + 1}
		var poison []kafka.Message
		for _, m := range msgs {
			e, derr := rating.Unmarshal(m.Value)
			if derr != nil {
				poison = append(poison, deadLetter(m, derr))
				continue
			}
			b.events = append(b.events, e)
		}
		if len(poison) > 0 {
			// Parked before the offset moves past them: a crash in
			// between can repeat a dead letter, never lose one.
			if err := p.dlq.WriteMessages(ctx, poison...); err != nil {
				return fmt.Errorf("write dead letters: %w", err)
			}
			p.m.dlq.Add(float64(len(poison)))
			log.Warn("parked undecodable events", zap.Int("count", len(poison)))
		}
		began := time.Now()
		res, err := p.store.apply(ctx, b)
		if errors.Is(err, errFenced) {
			return err // another instance moved on: re-read the offset
		}
		if err != nil {
			return err
		}
		p.m.observe(res, len(msgs), time.Since(began))
		lag.Set(float64(r.Lag()))
		pos = res.position
	}
}

// fetch waits for at least one message, then takes what arrives within
// maxWait, up to max messages.
func fetch(ctx context.Context, r *kafka.Reader, max int, maxWait time.Duration) ([]kafka.Message, error) {
	first, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	msgs := []kafka.Message{first}
	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	for len(msgs) < max {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

func deadLetter(m kafka.Message, err error) kafka.Message {
	return kafka.Message{
		Key:   m.Key,
		Value: m.Value,
		Headers: append(m.Headers,
			kafka.Header{Key: "dlq.error", Value: []byte(err.Error())},
			kafka.Header{Key: "dlq.topic", Value: []byte(m.Topic)},
			kafka.Header{Key: "dlq.partition", Value: []byte(strconv.Itoa(m.Partition))},
			kafka.Header{Key: "dlq.offset", Value: []byte(strconv.FormatInt(m.Offset, 10))},
		),
	}
}
