package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"
)

// A stored offset outside the partition's log means events were lost or
// the log is not the one the tables were built from: the topic was
// deleted and created again (its log starts over at 0, behind the stored
// offset), or retention removed events not yet applied (the log starts
// after it). kafka-go would go on without a word (it jumps to the first
// offset, or waits until the new log passes the stored one), so the
// windower checks: such a partition stops, readiness fails, the
// windower_offset_outside_log gauge and an error log line say which, and
// an operator chooses where it resumes (`ratestream reset-offsets`). The
// worker checks when it starts and whenever a batch does not begin at the
// stored offset; the monitor checks every partition on every round, and
// restarts a worker of ours that waits past the end of its log.

// errOutsideLog ends a worker whose stored offset left the log.
var errOutsideLog = errors.New("stored offset outside the partition's log")

// outside describes a stored offset outside the log bounds, or is empty.
func outside(next int64, b broker.Bounds) string {
	switch {
	case next > b.End:
		return fmt.Sprintf("stored offset %d is beyond the log end %d (the topic was created again?)", next, b.End)
	case next < b.First:
		return fmt.Sprintf("stored offset %d is before the log start %d: events %d..%d were removed before they were applied", next, b.First, next, b.First-1)
	}
	return ""
}

// markOutside records what the partition's check found ("" clears it).
func (p *processor) markOutside(id int, why string) {
	p.mu.Lock()
	if p.outsideLog == nil {
		p.outsideLog = map[int]string{}
	}
	before, had := p.outsideLog[id]
	if why == "" {
		delete(p.outsideLog, id)
	} else {
		p.outsideLog[id] = why
	}
	p.mu.Unlock()
	label := strconv.Itoa(id)
	switch {
	case why != "" && before != why:
		p.m.outsideLog.WithLabelValues(label).Set(1)
		p.log.Error("partition stopped: its stored offset is outside its log; choose where it resumes with ratestream reset-offsets",
			zap.Int("partition", id), zap.String("why", why))
	case why == "" && had:
		p.m.outsideLog.WithLabelValues(label).Set(0)
		p.log.Info("partition's stored offset is inside its log again", zap.Int("partition", id))
	}
}

// outsideReady fails while a partition's stored offset is outside its log.
func (p *processor) outsideReady(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.outsideLog) == 0 {
		return nil
	}
	ids := make([]int, 0, len(p.outsideLog))
	for id := range p.outsideLog {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return fmt.Errorf("partitions %v: stored offset outside the log (%s); see ratestream reset-offsets", ids, p.outsideLog[ids[0]])
}

// waitInsideLog returns once the partition's stored offset lies within
// its log, checking every outsideRecheck; until then the partition is
// marked. It returns the stored position it last read.
func (p *processor) waitInsideLog(ctx context.Context, id int) (position, error) {
	for {
		pos, err := p.store.position(ctx, id)
		if err != nil {
			return pos, err
		}
		if !pos.Exists && p.bounds != nil {
			// Known to every other writer before the first batch.
			b, err := p.bounds(ctx, id)
			if err != nil {
				return pos, err
			}
			if err := p.store.register(ctx, id, b.First); err != nil {
				return pos, err
			}
			if pos, err = p.store.position(ctx, id); err != nil {
				return pos, err
			}
		}
		if !pos.Exists || p.bounds == nil {
			return pos, nil
		}
		why, err := p.checkLog(ctx, id, pos)
		if err != nil {
			return pos, err
		}
		p.markOutside(id, why)
		if why == "" {
			return pos, nil
		}
		select {
		case <-ctx.Done():
			return pos, ctx.Err()
		case <-time.After(outsideRecheck):
		}
	}
}

// checkLog says why the stored position does not follow the partition's
// log, or "": its offset must lie within the log's bounds and, when the
// position remembers it, the message just before it must be the one it
// followed when stored.
func (p *processor) checkLog(ctx context.Context, id int, pos position) (string, error) {
	if !pos.Exists || p.bounds == nil {
		return "", nil
	}
	b, err := p.bounds(ctx, id)
	if err != nil {
		return "", err
	}
	if why := outside(pos.Next, b); why != "" {
		return why, nil
	}
	if pos.Last == nil || p.readAt == nil || pos.Next-1 < b.First {
		return "", nil
	}
	m, err := p.readAt(ctx, id, pos.Next-1)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(broker.Fingerprint(m), pos.Last) {
		return fmt.Sprintf("the log holds another message at offset %d than the one applied there (the topic was created again?)", pos.Next-1), nil
	}
	return "", nil
}

// outsideRecheck is how often a stopped partition looks again.
const outsideRecheck = 2 * time.Second

// restartIfOutside is the monitor's check of one partition: a worker of
// ours that waits past the end of a new log is restarted, and its start
// stops it.
func (p *processor) restartIfOutside(id int, next int64, b broker.Bounds) {
	why := outside(next, b)
	p.mu.Lock()
	restart, marked := p.restart[id], p.outsideLog[id] != ""
	p.mu.Unlock()
	switch {
	case restart == nil:
		p.markOutside(id, why) // another instance's: readiness says so here too
	case why == "" || marked:
		// Ours, inside its log or already stopped: its worker checks.
	default:
		restart()
	}
}
