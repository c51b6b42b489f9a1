package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"
)

// monitor watches every partition of the topic, owned by this instance or
// not, from the two facts that do not depend on the group being healthy:
// the offsets stored in PostgreSQL and the log ends on the broker. It
// exports the lag and how long a partition with messages to consume has
// not moved, and when one has not moved for longer than bound it logs the
// partition and its owner, turns readiness to 503 and, if another member
// owns it (or none does) in a group that has settled, forces a rebalance
// by leaving and rejoining the group, so that a member that is gone but
// was never evicted (a broker that does not expire its session) loses its
// partitions.
type monitor struct {
	group  membership
	stored interface {
		offsets(context.Context) (map[int]int64, error)
	}
	kafka    broker.Config
	until    map[int]int64 // a replay stops each partition there
	metrics  *metrics
	log      *zap.Logger
	interval time.Duration
	bound    time.Duration
	settle   time.Duration // how long the group must have been Stable before a force

	watches   map[int]*watch
	lastForce time.Time
	lastLog   time.Time
	unsettled time.Time // the last check that saw the group rebalancing, or our last force

	mu    sync.Mutex
	stuck []int // partitions stalled beyond bound at the last check
}

// membership is what the monitor needs of this instance's consumer:
// which partitions it holds, a way to make it leave and rejoin the group,
// and a way to stop a worker whose stored offset is outside its log.
type membership interface {
	ownership() (member string, owned map[int]bool)
	forceRejoin()
	restartIfOutside(partition int, next int64, b broker.Bounds)
	groupName() string
}

// watch is what the monitor remembers of one partition.
type watch struct {
	next  int64     // stored offset at the last check
	since time.Time // when it was first seen behind at that offset; zero when keeping up
}

func (m *monitor) run(ctx context.Context) error {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, m.interval+5*time.Second)
		err := m.check(cctx, time.Now())
		cancel()
		if err != nil && ctx.Err() == nil {
			m.log.Warn("partition monitor could not check the partitions", zap.Error(err))
		}
	}
}

// check reads log ends and stored offsets once and acts on what it sees.
func (m *monitor) check(ctx context.Context, now time.Time) error {
	// Stored offsets first: an offset stored after the log ends were read
	// could pass them, and look outside the log.
	stored, err := m.stored.offsets(ctx)
	if err != nil {
		return err
	}
	ends, err := broker.LogBounds(ctx, m.kafka, m.kafka.Topic)
	if err != nil {
		return err
	}
	if m.watches == nil {
		m.watches = map[int]*watch{}
	}
	var stuck []int
	anyStalled := false
	for part, b := range ends {
		next, ok := stored[part]
		if !ok {
			next = b.First
		}
		end := b.End
		if stop, bounded := m.until[part]; bounded {
			end = min(end, stop) // a replay stops there
		}
		if ok {
			m.group.restartIfOutside(part, next, b)
		}
		lag := max(0, end-next)
		label := strconv.Itoa(part)
		m.metrics.lag.WithLabelValues(label).Set(float64(lag))
		w := m.watches[part]
		switch {
		case w == nil || w.next != next || lag == 0:
			w = &watch{next: next}
			m.watches[part] = w
			if lag > 0 {
				w.since = now
			}
		case w.since.IsZero():
			w.since = now
		}
		var stalled time.Duration
		if !w.since.IsZero() {
			stalled = now.Sub(w.since)
		}
		m.metrics.stalled.WithLabelValues(label).Set(stalled.Seconds())
		anyStalled = anyStalled || stalled > 0
		if stalled >= m.bound {
			stuck = append(stuck, part)
		}
	}
	slices.Sort(stuck)
	m.mu.Lock()
	m.stuck = stuck
	m.mu.Unlock()
	if !anyStalled {
		return nil
	}
	// Something has not moved since the last check: follow the group's
	// state from now on, so that a force waits until it has settled.
	owners, state, err := broker.Owners(ctx, m.kafka, m.group.groupName(), m.kafka.Topic)
	if err != nil {
		return err
	}
	m.observe(state, now)
	if len(stuck) > 0 {
		m.remedy(stuck, owners, state, ends, stored, now)
	}
	return nil
}

// remedy names the owners of the stuck partitions and, unless this
// instance owns them all (then its own retries are what stalls, and a
// rebalance would not help), forces a rebalance at most once per bound
// and only in a group that has settled (mayForce).
func (m *monitor) remedy(stuck []int, owners map[int]broker.Member, state string, ends map[int]broker.Bounds, stored map[int]int64, now time.Time) {
	me, mine := m.group.ownership()
	foreign := false
	logNow := now.Sub(m.lastLog) >= logEvery
	for _, part := range stuck {
		o, assigned := owners[part]
		ours := assigned && o.ID == me && mine[part]
		foreign = foreign || !ours
		if logNow {
			m.lastLog = now
			m.log.Error("partition is not being consumed",
				zap.Int("partition", part), zap.Int64("stored_offset", stored[part]), zap.Int64("log_end", ends[part].End),
				zap.Duration("stalled_for", now.Sub(m.watches[part].since).Round(time.Second)),
				zap.Bool("owned_by_this_instance", ours), zap.String("owner_member", o.ID),
				zap.String("owner_client", o.ClientID), zap.String("owner_host", o.Host), zap.String("group_state", state))
		}
	}
	if foreign && m.mayForce(now) {
		m.log.Error("forcing a rebalance: leaving and rejoining the consumer group so that a member that is gone loses its partitions",
			zap.Ints("stalled_partitions", stuck))
		m.group.forceRejoin()
	}
}

// observe notes a check's view of the group: any state but Stable means
// a rebalance is under way.
func (m *monitor) observe(state string, now time.Time) {
	if state != groupStable {
		m.unsettled = now
	}
}

// mayForce says whether a forced rebalance can help now, and if so counts
// it as done: the group has been seen Stable at every check for at least
// settle (its live members have their partitions and have had a session's
// time to move them) and this instance has not forced one within bound.
//
// A group that is rebalancing is left alone. Each leave and join restarts
// the dev broker's rebalance deadline (a real Kafka keeps the first one),
// so two instances forcing a few seconds apart, once per bound each, would
// keep a group rebalancing: every rebalance would wait for a member that
// is gone, and start again before its deadline could drop it.
func (m *monitor) mayForce(now time.Time) bool {
	if now.Sub(m.unsettled) < m.settle || now.Sub(m.lastForce) < m.bound {
		return false
	}
	m.lastForce, m.unsettled = now, now // the force starts a rebalance
	return true
}

// groupStable is the state DescribeGroups gives a group whose members all
// have their assignments.
const groupStable = "Stable"

// ready fails while a partition is stalled beyond the bound.
func (m *monitor) ready(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.stuck) == 0 {
		return nil
	}
	ids := make([]string, len(m.stuck))
	for i, p := range m.stuck {
		ids[i] = strconv.Itoa(p)
	}
	return fmt.Errorf("partitions %s not consumed for more than %s", strings.Join(ids, ","), m.bound)
}
