package tally

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Position is where a partition stands, as stored: the offset after the
// last event applied, the newest event time seen, and how many times
// batches of other partitions wrote this partition's posts (events a
// producer put on the wrong partition).
type Position struct {
	Exists       bool
	Next         int64
	MaxEventTime time.Time
	Foreign      int64
}

// ReadPosition reads where a partition stands; lock holds the row until
// the transaction db ends, so that two instances cannot both apply.
func ReadPosition(ctx context.Context, db DB, k Key, partition int, lock bool) (Position, error) {
	q := `SELECT next_offset, max_event_time, foreign_writes FROM consumer_offsets
		WHERE consumer = $1 AND topic = $2 AND partition = $3`
	if lock {
		q += ` FOR UPDATE`
	}
	var p Position
	var met *time.Time
	err := db.QueryRow(ctx, q, k.Consumer, k.Topic, partition).Scan(&p.Next, &met, &p.Foreign)
	if errors.Is(err, pgx.ErrNoRows) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("read offset of partition %d: %w", partition, err)
	}
	p.Exists = true
	if met != nil {
		p.MaxEventTime = met.UTC()
	}
	return p, nil
}

// QueuePosition stores where a partition stands after a batch, with its
// watermark (the newest event time less grace).
func QueuePosition(b *pgx.Batch, k Key, partition int, to Position, grace time.Duration) {
	var met, wm any
	if !to.MaxEventTime.IsZero() {
		met, wm = to.MaxEventTime, to.MaxEventTime.Add(-grace)
	}
	b.Queue(`
		INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, max_event_time, watermark, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, now())
		ON CONFLICT (consumer, topic, partition) DO UPDATE SET
		  next_offset = excluded.next_offset, max_event_time = excluded.max_event_time,
		  watermark = excluded.watermark, updated_at = now()`,
		k.Consumer, k.Topic, partition, to.Next, met, wm)
}

// QueueForeignWrites records that a batch wrote posts of the given
// partitions: the instances holding those partitions must read them again.
func QueueForeignWrites(b *pgx.Batch, k Key, partitions []int32) {
	b.Queue(`UPDATE consumer_offsets SET foreign_writes = foreign_writes + 1
		WHERE consumer = $1 AND topic = $2 AND partition = ANY($3)`, k.Consumer, k.Topic, partitions)
}

// Stored is one partition's stored position as readers see it.
type Stored struct {
	Next      int64
	Watermark time.Time // zero: no event yet
	Updated   time.Time
}

// Positions reads every stored partition of a group.
func Positions(ctx context.Context, db DB, k Key) (map[int]Stored, error) {
	rows, err := db.Query(ctx, `SELECT partition, next_offset, watermark, updated_at FROM consumer_offsets
		WHERE consumer = $1 AND topic = $2`, k.Consumer, k.Topic)
	if err != nil {
		return nil, fmt.Errorf("read stored offsets: %w", err)
	}
	out := map[int]Stored{}
	var p int
	var s Stored
	var wm *time.Time
	_, err = pgx.ForEachRow(rows, []any{&p, &s.Next, &wm, &s.Updated}, func() error {
		x := s
		if wm != nil {
			x.Watermark = wm.UTC()
		}
		out[p] = x
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read stored offsets: %w", err)
	}
	return out, nil
}

// Offsets reads the stored next offset of every partition of a group.
func Offsets(ctx context.Context, db DB, k Key) (map[int]int64, error) {
	pos, err := Positions(ctx, db, k)
	if err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(pos))
	for p, s := range pos {
		out[p] = s.Next
	}
	return out, nil
}

// Consumed is the sum of every group's stored next offsets: how many
// events were applied, with no group named (a fresh database).
func Consumed(ctx context.Context, db DB) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, `SELECT COALESCE(sum(next_offset), 0) FROM consumer_offsets`).Scan(&n)
	return n, err
}

// Consumers lists the groups with stored positions, and the topics they
// consumed.
func Consumers(ctx context.Context, db DB) ([]Key, error) {
	rows, err := db.Query(ctx, `SELECT DISTINCT consumer, topic FROM consumer_offsets ORDER BY 1, 2`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) {
		var k Key
		err := r.Scan(&k.Consumer, &k.Topic)
		return k, err
	})
}
