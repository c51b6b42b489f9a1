package pseudonym

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/tally"
)

// Report says what an erasure did.
type Report struct {
	// Mapped: the user had a pseudonym; its mapping is deleted.
	Mapped bool `json:"mapped"`
	// InClear: votes stored under the user's id itself were found (a user
	// who rated before pseudonyms, or events another producer wrote with
	// the id in clear): they are erased too, but the topic's events that
	// carry the id stay readable until the topic is rewritten.
	InClear bool `json:"in_clear"`
	// Erasures is how many erase events were written (one per partition
	// for each pseudonym erased, those of unfinished earlier erasures
	// included).
	Erasures int `json:"erase_events"`
	// Partitions is how many partitions each went to.
	Partitions int `json:"partitions"`
}

// Eraser erases users: it deletes the mapping and writes the erase events.
type Eraser struct {
	Pool   *pgxpool.Pool
	Kafka  broker.Config
	Writer *kafka.Writer // writes to the rating topic by Message.Partition (NewEraseWriter)
}

// NewEraseWriter returns a writer to the rating topic that writes each
// message to its Partition, waiting for every in-sync replica.
func NewEraseWriter(cfg broker.Config, t broker.WriterTuning) (*kafka.Writer, error) {
	w, err := broker.NewWriter(cfg, cfg.Topic, t)
	if err != nil {
		return nil, err
	}
	w.Balancer = toPartition{}
	return w, nil
}

type toPartition struct{}

func (toPartition) Balance(m kafka.Message, _ ...int) int { return m.Partition }

// Erase erases user: it deletes the user's mapping and queues the
// pseudonym in the erasures table, in one transaction; then it writes an erase event to every partition for each
// queued pseudonym and dequeues it. A failure after the commit leaves the
// pseudonym queued: the next Erase (of anyone) or Finish writes it. An
// unknown user is no error: there is nothing to erase but what another
// producer may have written under the id in clear.
func (e *Eraser) Erase(ctx context.Context, user string) (Report, error) {
	var r Report
	err := pgx.BeginFunc(ctx, e.Pool, func(tx pgx.Tx) error {
		var p string
		switch err := tx.QueryRow(ctx, `DELETE FROM user_pseudonyms WHERE user_id = $1 RETURNING pseudonym`, user).Scan(&p); {
		case err == nil:
			r.Mapped = true
			if err := queue(ctx, tx, p); err != nil {
				return err
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		clear, err := tally.HasVotesBy(ctx, tx, user)
		if err != nil {
			return err
		}
		if clear || p == user {
			r.InClear = true
			if p != user {
				return queue(ctx, tx, user)
			}
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("erase: %w", err)
	}
	n, parts, err := e.Finish(ctx)
	r.Erasures, r.Partitions = n, parts
	return r, err
}

func queue(ctx context.Context, tx pgx.Tx, pseudonym string) error {
	_, err := tx.Exec(ctx, `INSERT INTO erasures (pseudonym) VALUES ($1) ON CONFLICT DO NOTHING`, pseudonym)
	return err
}

// Finish writes the erase events of every queued erasure to every
// partition of the rating topic and dequeues each once the broker has
// them all. It returns how many pseudonyms it finished and to how many
// partitions.
func (e *Eraser) Finish(ctx context.Context) (int, int, error) {
	rows, err := e.Pool.Query(ctx, `SELECT pseudonym FROM erasures ORDER BY requested_at`)
	if err != nil {
		return 0, 0, fmt.Errorf("erasures: %w", err)
	}
	queued, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(queued) == 0 {
		return 0, 0, err
	}
	parts, err := broker.Partitions(ctx, e.Kafka, e.Kafka.Topic)
	if err != nil {
		return 0, 0, err
	}
	for i, p := range queued {
		ev, err := rating.NewErasure(p, time.Now())
		if err != nil {
			return i, len(parts), err
		}
		value, _ := ev.Marshal()
		msgs := make([]kafka.Message, len(parts))
		for j, part := range parts {
			msgs[j] = kafka.Message{Partition: part, Value: value, Time: ev.RatedAt}
		}
		if err := e.Writer.WriteMessages(ctx, msgs...); err != nil {
			return i, len(parts), fmt.Errorf("write erase events: %w", err)
		}
		if _, err := e.Pool.Exec(ctx, `DELETE FROM erasures WHERE pseudonym = $1`, p); err != nil {
			return i, len(parts), fmt.Errorf("dequeue erasure: %w", err)
		}
	}
	return len(queued), len(parts), nil
}
