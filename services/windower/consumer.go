package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"
)

// processor consumes ratings.v1 as a member of a consumer group. Each
// partition it is assigned is read from the offset stored in PostgreSQL
// (not the group's committed offset), in batches applied one transaction
// each, so that a crash, a restart or a rebalance neither loses nor
// double-counts an event. An event that cannot become state goes to the
// dead-letter topic and the partition moves on (the applier, poison.go);
// the monitor (monitor.go) watches every partition, owned or not, through
// the membership interface.
type processor struct {
	log      *zap.Logger
	kafka    broker.Config
	group    string
	store    store
	applier  *applier // applies batches, isolating what cannot become state (poison.go)
	open     func(partition int, offset int64, skipped func(report string)) (source, error)
	bounds   func(ctx context.Context, partition int) (broker.Bounds, error) // nil: not checked (tests without a broker)
	readAt   func(ctx context.Context, partition int, offset int64) (kafka.Message, error)
	until    map[int]int64 // replay: stop each partition before this offset
	m        *metrics
	maxBatch int
	maxWait  time.Duration
	session  time.Duration

	mu       sync.Mutex
	memberID string                     // ours in the current generation
	owned    map[int]bool               // partitions with a running worker
	rejoin   context.CancelFunc         // ends the current membership
	restart  map[int]context.CancelFunc // ends a partition's current worker
	// outsideLog are the partitions stopped because their stored offset
	// is outside their log, with why (outoflog.go).
	outsideLog map[int]string
	// othersSaid is when the last line about another writer was logged.
	othersSaid time.Time
}

// run joins the group and processes generation after generation until ctx
// ends. A forced rejoin (the monitor's remedy for an orphaned partition)
// leaves the group and joins it again as a new member.
func (p *processor) run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := p.member(ctx); err != nil {
			return err
		}
	}
	return nil
}

// member is one membership: from joining the group to leaving it.
func (p *processor) member(ctx context.Context) error {
	d, err := p.kafka.Dialer(5 * time.Second)
	if err != nil {
		return err
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		Dialer:  d,
		ID:      p.group,
		Brokers: p.kafka.Brokers,
		Topics:  []string{p.kafka.Topic},
		// Three heartbeats per session, at most one a second: a member
		// learns of a rebalance within a third of the session.
		HeartbeatInterval: min(time.Second, p.session/3),
		SessionTimeout:    p.session,
		// Half the session: the dev broker (kfake) lets a member's
		// session run out while its JoinGroup waits, so a rebalance that
		// waits for a member that is gone (as long as the longest
		// rebalance timeout after the last join) must end before the
		// session of a live member that heartbeated just before joining.
		// With the whole session, such a rebalance would drop a live
		// member and start again, leaving partitions unconsumed for
		// several sessions (tools/cmd/devbroker/kfake_test.go).
		RebalanceTimeout:      p.session / 2,
		JoinGroupBackoff:      time.Second,
		Timeout:               5 * time.Second,
		WatchPartitionChanges: true,
		StartOffset:           kafka.FirstOffset,
	})
	if err != nil {
		return fmt.Errorf("consumer group: %w", err)
	}
	mctx, leave := context.WithCancel(ctx)
	p.mu.Lock()
	p.rejoin = leave
	p.mu.Unlock()
	defer func() {
		leave()
		cg.Close() // leaves the group; waits for the partition workers
		p.mu.Lock()
		p.memberID = ""
		p.mu.Unlock()
	}()
	for {
		gen, err := cg.Next(mctx)
		if mctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.log.Warn("joining consumer group failed; retrying", zap.Error(err))
			select {
			case <-mctx.Done():
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
		p.log.Info("assigned partitions", zap.Int32("generation", gen.ID), zap.String("member", gen.MemberID), zap.Ints("partitions", ids))
		p.m.assigned.Set(float64(len(ids)))
		p.mu.Lock()
		p.memberID = gen.MemberID
		p.mu.Unlock()
		for _, id := range ids {
			gen.Start(func(gctx context.Context) { p.partition(gctx, id, groupCommitter(gen, p.kafka.Topic, id, p.log)) })
		}
	}
}

// groupName is the consumer group this instance is a member of.
func (p *processor) groupName() string { return p.group }

// forceRejoin makes this instance leave the group and join it again. The
// coordinator then runs a rebalance in which every member must rejoin
// within the rebalance timeout; a member that is gone is dropped.
func (p *processor) forceRejoin() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rejoin != nil {
		p.rejoin()
	}
}

// ownership says which member id we have and which partitions we work on.
func (p *processor) ownership() (string, map[int]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	owned := make(map[int]bool, len(p.owned))
	for k := range p.owned {
		owned[k] = true
	}
	return p.memberID, owned
}

func (p *processor) setOwned(id int, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owned == nil {
		p.owned = map[int]bool{}
	}
	if on {
		p.owned[id] = true
	} else {
		delete(p.owned, id)
	}
}

// partition processes one partition until the generation ends.
func (p *processor) partition(ctx context.Context, id int, committed func(next int64)) {
	p.setOwned(id, true)
	defer p.setOwned(id, false)
	defer p.store.forget(id)
	log := p.log.With(zap.Int("partition", id))
	for ctx.Err() == nil {
		cctx, cancel := context.WithCancel(ctx)
		p.setRestart(id, cancel)
		err := p.consume(cctx, id, log, committed)
		cancel()
		p.setRestart(id, nil)
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

func (p *processor) setRestart(id int, cancel context.CancelFunc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.restart == nil {
		p.restart = map[int]context.CancelFunc{}
	}
	if cancel == nil {
		delete(p.restart, id)
	} else {
		p.restart[id] = cancel
	}
}

func (p *processor) consume(ctx context.Context, id int, log *zap.Logger, committed func(next int64)) error {
	pos, err := p.waitInsideLog(ctx, id)
	if err != nil {
		return err
	}
	start := kafka.FirstOffset
	if pos.Exists {
		start = pos.Next
	}
	var skipped atomic.Bool
	r, err := p.open(id, start, func(report string) {
		skipped.Store(true)
		log.Warn("the reader reports an offset outside the log", zap.String("report", report))
	})
	if err != nil {
		return err
	}
	defer r.Close()
	log.Info("resuming partition", zap.Int64("offset", start))
	retry := newRetrier(log)
	stop, bounded := p.until[id]
	for {
		if bounded && pos.Exists && pos.Next >= stop {
			log.Info("partition replayed to its end offset", zap.Int64("offset", stop))
			<-ctx.Done()
			return ctx.Err()
		}
		msgs, err := fetch(ctx, r, p.maxBatch, p.maxWait)
		if err != nil {
			return err
		}
		if pos.Exists && (msgs[0].Offset != pos.Next || skipped.Load()) {
			// Not where the stored offset said (a gap a transactional
			// producer's markers leave, or a reader that jumped over
			// events retention removed), or the reader reported an
			// offset outside the log: check before applying.
			if why, err := p.checkLog(ctx, id, pos); err != nil || why != "" {
				p.markOutside(id, why)
				return cmp.Or(err, errOutsideLog)
			}
			skipped.Store(false)
		}
		if bounded {
			msgs = slices.DeleteFunc(msgs, func(m kafka.Message) bool { return m.Offset >= stop })
			if len(msgs) == 0 { // nothing before the end offset is left
				log.Info("partition replayed to its end offset", zap.Int64("offset", stop))
				<-ctx.Done()
				return ctx.Err()
			}
		}
		b, poison := decode(id, pos, msgs)
		if err := p.applier.parkUndecodable(ctx, poison, log); err != nil {
			return err
		}
		if pos, err = p.applier.commit(ctx, b, retry); err != nil {
			return err // fenced (another instance moved on) or stopping
		}
		if committed != nil {
			committed(pos.Next)
		}
		p.noticeOthers(pos.Others)
	}
}

// noticeOthers says, once a minute at most, that another consumer key
// stores positions in this database (when, from the last batch): another
// writer of the same tables, against which the row cache is off.
func (p *processor) noticeOthers(at time.Time) {
	p.mu.Lock()
	say := !at.IsZero() && time.Since(p.othersSaid) >= time.Minute
	if say {
		p.othersSaid = time.Now()
	}
	p.mu.Unlock()
	if at.IsZero() {
		p.m.otherWriters.Set(0)
		return
	}
	p.m.otherWriters.Set(1)
	if say {
		p.log.Warn("another consumer stores positions in this database (a replay or a second windower group pointed at it): the row cache is off and every batch reads its rows",
			zap.Time("last_stored", at))
	}
}

// fetch waits for at least one message, then takes what arrives within
// maxWait, up to max messages.
func fetch(ctx context.Context, r source, max int, maxWait time.Duration) ([]kafka.Message, error) {
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

// groupCommitter copies a partition's stored offset to the consumer
// group, at most once a second, so that Kafka's own tools (kcat,
// kafka-consumer-groups, Burrow, KEDA) see the windower's position and
// lag. PostgreSQL stays the source of truth: the windower resumes from
// its stored offsets, never from the group's.
func groupCommitter(gen *kafka.Generation, topic string, partition int, log *zap.Logger) func(next int64) {
	var (
		mu      sync.Mutex
		pending int64 = -1
		timer   *time.Timer
	)
	flush := func() {
		mu.Lock()
		next := pending
		pending, timer = -1, nil
		mu.Unlock()
		if next < 0 {
			return
		}
		if err := gen.CommitOffsets(map[string]map[int]int64{topic: {partition: next}}); err != nil {
			log.Debug("copying the offset to the consumer group failed", zap.Int("partition", partition), zap.Error(err))
		}
	}
	return func(next int64) {
		mu.Lock()
		defer mu.Unlock()
		pending = next
		if timer == nil { // the newest offset goes out within a second
			timer = time.AfterFunc(time.Second, flush)
		}
	}
}

// source is one partition's messages from an offset on: a kafka.Reader
// (broker.NewPartitionReader) in production.
type source interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	Close() error
}

// deadLetters is where messages that cannot become state go: a
// kafka.Writer to the dead-letter topic in production.
type deadLetters interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// errStopping is returned when the context ends during a retry.
var errStopping = errors.New("stopping")
