package tally

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
	// Last fingerprints the message at Next-1 (broker.Fingerprint); nil
	// when not known.
	Last []byte
	// Others is when another consumer key last stored a position in the
	// same database (a replay or a second windower group pointed at it):
	// another writer of the derived tables. Zero: there is none.
	Others time.Time
	// Erased holds the pseudonyms whose erase event the partition read
	// recently, with its time: their later events are dropped (see
	// pkg/pseudonym). Shared: copy before changing.
	Erased map[string]time.Time
}

// ReadPosition reads where a partition stands. With lock it holds the
// row until the transaction db ends, so that two instances cannot both
// apply, and it takes the table's ROW EXCLUSIVE lock (it is an UPDATE
// that changes nothing), so that Register waits for every batch in
// flight: a batch either ends before another writer registers or sees it
// in Others.
func ReadPosition(ctx context.Context, db DB, k Key, partition int, lock bool) (Position, error) {
	const others = `(SELECT max(o.updated_at) FROM consumer_offsets o WHERE o.consumer <> $1 OR o.topic <> $2)`
	q := `SELECT next_offset, max_event_time, foreign_writes, last_message, erased, ` + others + `
		FROM consumer_offsets WHERE consumer = $1 AND topic = $2 AND partition = $3`
	if lock {
		q = `UPDATE consumer_offsets SET next_offset = next_offset
		WHERE consumer = $1 AND topic = $2 AND partition = $3
		RETURNING next_offset, max_event_time, foreign_writes, last_message, erased, ` + others
	}
	var p Position
	var met, oth *time.Time
	err := db.QueryRow(ctx, q, k.Consumer, k.Topic, partition).Scan(&p.Next, &met, &p.Foreign, &p.Last, &p.Erased, &oth)
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
	if oth != nil {
		p.Others = oth.UTC()
	}
	return p, nil
}

// Register makes a windower group's key known to every other writer of
// the database before it writes anything: each partition without a
// position gets one at first (the log start: where it would begin
// anyway). It waits for the batches in flight of every group (SHARE
// against their ROW EXCLUSIVE), so that none of them began before the key
// existed and ends after it writes: every later batch of another group
// sees the key (Position.Others) and reads its rows afresh.
func Register(ctx context.Context, db interface {
	Begin(context.Context) (pgx.Tx, error)
}, k Key, first map[int]int64) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE consumer_offsets IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("register %s: %w", k.Consumer, err)
		}
		for _, part := range slices.Sorted(maps.Keys(first)) {
			if _, err := tx.Exec(ctx, `
				INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, updated_at)
				VALUES ($1, $2, $3, $4, now()) ON CONFLICT (consumer, topic, partition) DO NOTHING`,
				k.Consumer, k.Topic, part, first[part]); err != nil {
				return fmt.Errorf("register %s: %w", k.Consumer, err)
			}
		}
		return nil
	})
}

// QueuePosition stores where a partition stands after a batch, with its
// watermark (the newest event time less grace).
func QueuePosition(b *pgx.Batch, k Key, partition int, to Position, grace time.Duration) {
	var met, wm any
	if !to.MaxEventTime.IsZero() {
		met, wm = to.MaxEventTime, to.MaxEventTime.Add(-grace)
	}
	var erased any // NULL, not {}, when there is none
	if len(to.Erased) > 0 {
		erased = to.Erased
	}
	b.Queue(`
		INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, max_event_time, watermark, last_message, erased, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
		ON CONFLICT (consumer, topic, partition) DO UPDATE SET
		  next_offset = excluded.next_offset, max_event_time = excluded.max_event_time,
		  watermark = excluded.watermark, last_message = excluded.last_message, erased = excluded.erased, updated_at = now()`,
		k.Consumer, k.Topic, partition, to.Next, met, wm, to.Last, erased)
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

// SetOffsets moves stored positions: the next offset of each partition
// given, as an operator's reset does. Each row is locked first, so a
// windower's batch in flight commits before (and then finds its position
// moved, and reads again from the new one) or after (and starts there).
// A partition without a row gets one, with no event time yet.
func SetOffsets(ctx context.Context, db interface {
	Begin(context.Context) (pgx.Tx, error)
}, k Key, next map[int]int64) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		for _, part := range slices.Sorted(maps.Keys(next)) {
			off := next[part]
			if _, err := ReadPosition(ctx, tx, k, part, true); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO consumer_offsets (consumer, topic, partition, next_offset, updated_at)
				VALUES ($1, $2, $3, $4, now())
				ON CONFLICT (consumer, topic, partition) DO UPDATE SET next_offset = excluded.next_offset, last_message = NULL, updated_at = now()`,
				k.Consumer, k.Topic, part, off); err != nil {
				return fmt.Errorf("set offset of partition %d: %w", part, err)
			}
		}
		return nil
	})
}
