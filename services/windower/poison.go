package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/rating"
)

// What the windower does when PostgreSQL refuses a batch: one event must
// never stop a partition, and no outage may send a good event to the
// dead-letter topic.
//
//   - PostgreSQL refuses an event's content (SQLSTATE classes 22 and 23,
//     data exception and integrity constraint, e.g. a NUL in a user id):
//     find the events that fail on their own by applying the batch in
//     halves, park each on the dead-letter topic with the error, apply the
//     rest, move on;
//   - anything else is an outage, whatever its code (connection lost,
//     serialization failure, a missing table or privilege, a read-only
//     server after a failover, a full NOTIFY queue, an internal error):
//     retry the same batch, with capped and jittered backoff, for as long
//     as it lasts.
//
// Either way the partition's stall is visible: an error log line at most
// every logEvery, the monitor's lag and stalled gauges, readiness failing
// once the stall passes its bound, and the RatestreamPartitionStalled
// alert.
type failure int

const (
	outage failure = iota
	inData
)

const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 10 * time.Second
	logEvery   = 10 * time.Second
)

// classify sorts an error of store.apply.
func classify(err error) failure {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && len(pg.Code) == 5 && (pg.Code[:2] == "22" || pg.Code[:2] == "23") {
		return inData
	}
	return outage
}

// sqlState is the PostgreSQL error code of err, if it has one.
func sqlState(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code
	}
	return ""
}

// retrier paces the retries of one partition and its error log lines.
type retrier struct {
	log      *zap.Logger
	attempt  int
	lastLog  time.Time
	same     int    // consecutive failures with the same error
	lastText string // that error
}

func newRetrier(log *zap.Logger) *retrier { return &retrier{log: log} }

// failed records a failure and reports how many times in a row the same
// error was seen.
func (r *retrier) failed(err error) int {
	if text := err.Error(); text == r.lastText {
		r.same++
	} else {
		r.lastText, r.same = text, 1
	}
	if now := time.Now(); now.Sub(r.lastLog) >= logEvery {
		r.lastLog = now
		r.log.Error("batch not applied; partition stalled until it is",
			zap.Error(err), zap.String("sqlstate", sqlState(err)), zap.Int("attempts", r.same))
	}
	return r.same
}

// wait sleeps before the next attempt: exponential from backoffMin to
// backoffMax, each wait drawn from [d/2, d).
func (r *retrier) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return errStopping
	case <-time.After(r.next()):
		return nil
	}
}

// next is the wait before the next attempt.
func (r *retrier) next() time.Duration {
	d := min(backoffMax, backoffMin<<min(r.attempt, 16))
	r.attempt++
	return d/2 + rand.N(d/2)
}

// succeeded resets the pacing after a batch went through.
func (r *retrier) succeeded() {
	if r.same > 0 {
		r.log.Info("partition moving again", zap.Int("failed_attempts", r.same))
	}
	r.attempt, r.same, r.lastText = 0, 0, ""
}

// applier applies a partition's batches to the store: it retries through
// outages and isolates the events the store refuses as data, parking them
// on the dead-letter topic with the undecodable ones.
type applier struct {
	log   *zap.Logger
	store store
	dlq   deadLetters
	m     *metrics
}

// decode splits msgs into a batch of the events that decode and the dead
// letters of those that do not.
func decode(partition int, pos position, msgs []kafka.Message) (batch, []kafka.Message) {
	b := batch{partition: partition, expected: pos, next: msgs[len(msgs)-1].Offset + 1, last: broker.Fingerprint(msgs[len(msgs)-1])}
	var poison []kafka.Message
	for _, m := range msgs {
		e, err := rating.Unmarshal(m.Value)
		if err != nil {
			poison = append(poison, broker.DeadLetter(m, contract.DLQStageDecode, "", err))
			continue
		}
		b.events = append(b.events, e)
		b.msgs = append(b.msgs, m)
	}
	return b, poison
}

// parkUndecodable writes the dead letters of events that did not decode.
// They are parked before the offset moves past them: a crash in between
// can repeat a dead letter, never lose one.
func (p *applier) parkUndecodable(ctx context.Context, poison []kafka.Message, log *zap.Logger) error {
	if len(poison) == 0 {
		return nil
	}
	if err := p.dlq.WriteMessages(ctx, poison...); err != nil {
		return fmt.Errorf("write dead letters: %w", err)
	}
	p.m.dlq.WithLabelValues(contract.DLQStageDecode).Add(float64(len(poison)))
	log.Warn("parked undecodable events", zap.Int("count", len(poison)))
	return nil
}

// commit applies b, retrying and isolating as described above, and
// returns the partition's position after it.
func (p *applier) commit(ctx context.Context, b batch, r *retrier) (position, error) {
	for {
		res, err := p.apply(ctx, b)
		if err == nil {
			r.succeeded()
			return res.position, nil
		}
		if errors.Is(err, errFenced) || ctx.Err() != nil {
			return position{}, err
		}
		if classify(err) == inData {
			pos, err := p.isolate(ctx, b, r)
			if err == nil {
				r.succeeded()
			}
			return pos, err
		}
		r.failed(err)
		if err := r.wait(ctx); err != nil {
			return position{}, err
		}
	}
}

// apply runs one transaction and records its metrics.
func (p *applier) apply(ctx context.Context, b batch) (result, error) {
	began := time.Now()
	res, err := p.store.apply(ctx, b)
	if err == nil {
		p.m.observe(res, len(b.msgs), time.Since(began))
	}
	return res, err
}

// isolate applies b in halves, recursively, until each event that fails
// on its own is found; those go to the dead-letter topic with their error,
// every other event is applied, in offset order. Splitting a batch is the
// same as consuming with smaller batches, which gives identical state, so
// replay stays deterministic.
func (p *applier) isolate(ctx context.Context, b batch, r *retrier) (position, error) {
	pos := b.expected
	var walk func(part batch) error
	walk = func(part batch) error {
		part.expected = pos
		res, err := p.applyThroughOutages(ctx, part, r)
		if err == nil {
			pos = res.position
			return nil
		}
		if errors.Is(err, errFenced) || ctx.Err() != nil {
			return err
		}
		if len(part.events) > 1 {
			mid := len(part.events) / 2
			// The first half ends before msgs[mid]; what lies just before
			// it may be a message that did not decode: no fingerprint.
			first := batch{partition: part.partition, events: part.events[:mid], msgs: part.msgs[:mid], next: part.msgs[mid].Offset}
			second := batch{partition: part.partition, events: part.events[mid:], msgs: part.msgs[mid:], next: part.next, last: part.last}
			if err := walk(first); err != nil {
				return err
			}
			return walk(second)
		}
		return p.park(ctx, part, err, &pos, r)
	}
	return pos, walk(b)
}

// park sends the one event of part to the dead-letter topic with the
// error that refused it, then moves the stored offset past it.
func (p *applier) park(ctx context.Context, part batch, cause error, pos *position, r *retrier) error {
	m := part.msgs[0]
	dead := broker.DeadLetter(m, contract.DLQStageStore, sqlState(cause), cause)
	if err := p.dlq.WriteMessages(ctx, dead); err != nil {
		return err
	}
	p.m.dlq.WithLabelValues(contract.DLQStageStore).Inc()
	p.log.Warn("parked an event the store refused",
		zap.Int("partition", part.partition), zap.Int64("offset", m.Offset),
		zap.String("sqlstate", sqlState(cause)), zap.Error(cause))
	skip := batch{partition: part.partition, expected: *pos, next: part.next, last: part.last}
	res, err := p.applyThroughOutages(ctx, skip, r)
	if err != nil {
		return err
	}
	*pos = res.position
	return nil
}

// applyThroughOutages applies b, retrying through outages; an error in
// the data is returned for the caller to isolate.
func (p *applier) applyThroughOutages(ctx context.Context, b batch, r *retrier) (result, error) {
	for {
		res, err := p.apply(ctx, b)
		if err == nil || errors.Is(err, errFenced) || ctx.Err() != nil || classify(err) == inData {
			return res, err
		}
		r.failed(err)
		if err := r.wait(ctx); err != nil {
			return result{}, err
		}
	}
}
