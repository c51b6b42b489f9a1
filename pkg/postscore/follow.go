package postscore

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"
)

// ErrBehind is a Follower's Ready answer until it has read every partition
// to the end it had when the follower started.
var ErrBehind = errors.New("score topic not read to its end yet")

// Follower builds the table of every post's newest record from the score
// topic: it reads each partition from its first offset, then follows it.
// It is ready once every partition has been read up to where it ended when
// Run started, so a reader restarted between two reads of a client never
// serves an older score than it served before. A record that comes twice
// or late (not newer than the version the follower has seen for its post)
// is not handed on: what Apply sees of a post only ever grows in version.
type Follower struct {
	Kafka broker.Config // ScoreTopic is what is read
	Log   *zap.Logger
	// Apply gets, from one goroutine, the records that replaced what the
	// table held for their posts, in batches.
	Apply func([]Record)
	// Malformed, when set, counts messages that are not score records
	// (skipped, and logged at most once a minute).
	Malformed prometheus.Counter
	// Lag, when set, is labelled by partition and set every LagEvery (10 s
	// when zero) to the records between what the follower has handed on
	// and the partition's end, which the broker is asked for: a reader
	// that stopped fetching shows its lag growing, not the last it saw.
	Lag      *prometheus.GaugeVec
	LagEvery time.Duration

	ready    atomic.Bool
	versions map[int64]int64 // the newest version handed on, per post
	lastBad  time.Time

	mu   sync.Mutex
	done map[int]int64 // per partition, the offset after the last message applied
}

// Ready fails until the topic has been read to the end it had at start.
func (f *Follower) Ready(context.Context) error {
	if !f.ready.Load() {
		return ErrBehind
	}
	return nil
}

// Run reads and follows the topic until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	topic := f.Kafka.ScoreTopic
	var ends map[int]broker.Bounds
	for {
		var err error
		if ends, err = broker.LogBounds(ctx, f.Kafka, topic); err == nil && len(ends) > 0 {
			break
		}
		if ctx.Err() != nil {
			return
		}
		f.Log.Warn("cannot read the score topic's bounds yet; retrying", zap.String("topic", topic), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	f.versions = map[int64]int64{}
	// behind holds, per partition, the end it had at start while the
	// follower has not read up to it.
	behind := map[int]int64{}
	for p, b := range ends {
		if b.End > b.First {
			behind[p] = b.End
		}
	}
	f.ready.Store(len(behind) == 0)
	f.mu.Lock()
	f.done = map[int]int64{}
	f.mu.Unlock()
	msgs := make(chan kafka.Message, 8192)
	var wg sync.WaitGroup
	defer wg.Wait()
	if f.Lag != nil {
		wg.Go(func() { f.watchLag(ctx) })
	}
	for p := range ends {
		wg.Go(func() { f.read(ctx, p, msgs) })
	}
	batch := make([]kafka.Message, 0, 4096)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case m := <-msgs:
			batch = append(batch, m)
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case m := <-msgs:
				batch = append(batch, m)
			default:
				break more
			}
		}
		f.apply(batch, behind)
	}
}

// apply decodes a batch, hands the newer records to Apply, and notes how
// far each partition has been read.
func (f *Follower) apply(batch []kafka.Message, behind map[int]int64) {
	var newer []Record
	for _, m := range batch {
		if end, ok := behind[m.Partition]; ok && m.Offset+1 >= end {
			delete(behind, m.Partition)
		}
		r, err := Unmarshal(m.Value)
		if err == nil && string(m.Key) != strconv.FormatInt(r.PostID, 10) {
			err = errors.New("its key is not its post_id")
		}
		if err != nil {
			f.malformed(m, err)
			continue
		}
		if v, ok := f.versions[r.PostID]; !ok || r.Version > v {
			f.versions[r.PostID] = r.Version
			newer = append(newer, r)
		}
	}
	if len(newer) > 0 {
		f.Apply(newer)
	}
	f.mu.Lock()
	for _, m := range batch {
		f.done[m.Partition] = m.Offset + 1
	}
	f.mu.Unlock()
	if len(behind) == 0 && !f.ready.Load() {
		f.ready.Store(true)
		f.Log.Info("score topic read to its end", zap.Int("posts", len(f.versions)))
	}
}

// watchLag sets Lag every LagEvery until ctx ends. The offsets are those
// of records handed on, so a batch that Apply holds up counts as lag too.
func (f *Follower) watchLag(ctx context.Context) {
	every := cmp.Or(f.LagEvery, 10*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	var lastErr time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ends, err := broker.LogBounds(ctx, f.Kafka, f.Kafka.ScoreTopic)
		if err != nil {
			if ctx.Err() == nil && time.Since(lastErr) >= time.Minute {
				lastErr = time.Now()
				f.Log.Warn("cannot read the score topic's ends for the lag", zap.Error(err))
			}
			continue
		}
		f.mu.Lock()
		for p, b := range ends {
			f.Lag.WithLabelValues(strconv.Itoa(p)).Set(float64(b.End - max(f.done[p], b.First)))
		}
		f.mu.Unlock()
	}
}

func (f *Follower) malformed(m kafka.Message, err error) {
	if f.Malformed != nil {
		f.Malformed.Inc()
	}
	if time.Since(f.lastBad) >= time.Minute {
		f.lastBad = time.Now()
		f.Log.Warn("skipping a message of the score topic that is not a score record",
			zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset), zap.Error(err))
	}
}

// fetch is how each partition is read: a fetch waits for 64 KB or 100 ms,
// so that a partition under load costs the broker and the reader about
// ten fetches a second, not one per record, and a score reaches the
// reader at most 100 ms later for it.
var fetch = broker.Fetch{MinBytes: 64 << 10, MaxWait: 100 * time.Millisecond}

// read follows one partition from its first offset, reopening the reader
// after an error where it left off.
func (f *Follower) read(ctx context.Context, partition int, out chan<- kafka.Message) {
	next := kafka.FirstOffset
	for ctx.Err() == nil {
		r, err := broker.NewPartitionReader(f.Kafka, f.Kafka.ScoreTopic, partition, next, fetch)
		for err == nil {
			var m kafka.Message
			if m, err = r.FetchMessage(ctx); err == nil {
				next = m.Offset + 1
				select {
				case out <- m:
				case <-ctx.Done():
					err = ctx.Err()
				}
			}
		}
		if r != nil {
			r.Close()
		}
		if ctx.Err() != nil {
			return
		}
		f.Log.Warn("reading the score topic failed; reading again", zap.Int("partition", partition), zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
