// Package mirror keeps an in-memory copy of rows keyed by id, current
// within milliseconds: it loads every row when it connects and every
// Resync, and re-reads the rows that a PostgreSQL notification names. The
// ingest service mirrors the post ids (to refuse ratings of unknown posts
// without a round trip), the query service the posts with their scores
// (to serve pages from memory).
package mirror

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/database"
)

// ErrNotLoaded is Ready's answer until the first full load finished.
var ErrNotLoaded = errors.New("not loaded yet")

// Table mirrors rows of type V by id. Set the fields, then Run it.
type Table[V any] struct {
	Pool *pgxpool.Pool
	Log  *zap.Logger
	// Channels carry the ids of changed rows, comma-separated.
	Channels []string
	// Resync is how often everything is loaded again, as a safety net
	// for notifications lost while disconnected.
	Resync time.Duration
	// Query selects every row; with " WHERE <IDColumn> = ANY($1)"
	// appended it selects the rows a notification names. Scan reads one
	// row of it.
	Query    string
	IDColumn string
	Scan     func(pgx.Rows) (int64, V, error)
	// Changed, when set, is called with the rows each load or
	// notification read (every row after a load), after the table holds
	// them: what a reader that derives something from the rows follows.
	Changed func(rows map[int64]V)

	mu      sync.RWMutex
	rows    map[int64]V
	ids     []int64 // sorted ascending
	loaded  atomic.Bool
	version atomic.Uint64 // counts changes: loads and Puts
	pending chan []int64
}

// Ready fails until the first full load finished.
func (t *Table[V]) Ready(context.Context) error {
	if !t.loaded.Load() {
		return ErrNotLoaded
	}
	return nil
}

// Run keeps the table current until ctx ends.
func (t *Table[V]) Run(ctx context.Context) {
	t.init()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { t.refresher(ctx) })
	f := &database.Follower{
		Pool: t.Pool, Log: t.Log, Channels: t.Channels, Every: t.Resync,
		Resync: t.reload,
		Notify: func(_, payload string) {
			var ids []int64
			for _, s := range strings.Split(payload, ",") {
				if id, err := strconv.ParseInt(s, 10, 64); err == nil {
					ids = append(ids, id)
				}
			}
			select {
			case t.pending <- ids:
			case <-ctx.Done():
			}
		},
	}
	f.Run(ctx)
}

func (t *Table[V]) init() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rows == nil {
		t.rows = map[int64]V{}
	}
	if t.pending == nil {
		t.pending = make(chan []int64, 1024)
	}
}

// refresher re-reads the rows named by notifications, coalescing bursts
// into one query.
func (t *Table[V]) refresher(ctx context.Context) {
	for {
		var ids []int64
		select {
		case <-ctx.Done():
			return
		case ids = <-t.pending:
		}
	more:
		for len(ids) < 5000 {
			select {
			case more := <-t.pending:
				ids = append(ids, more...)
			default:
				break more
			}
		}
		rows, err := t.read(ctx, " WHERE "+t.IDColumn+" = ANY($1)", ids)
		if err != nil {
			if ctx.Err() == nil {
				t.Log.Warn("re-reading notified rows failed; the next resync will catch up", zap.Error(err))
			}
			continue
		}
		t.PutMany(rows)
		if t.Changed != nil {
			t.Changed(rows)
		}
	}
}

// read runs Query with where appended.
func (t *Table[V]) read(ctx context.Context, where string, args ...any) (map[int64]V, error) {
	rows, err := t.Pool.Query(ctx, t.Query+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]V{}
	for rows.Next() {
		id, v, err := t.Scan(rows)
		if err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rows.Err()
}

func (t *Table[V]) reload(ctx context.Context) error {
	rows, err := t.read(ctx, "")
	if err != nil {
		return fmt.Errorf("load %v: %w", t.Channels, err)
	}
	ids := make([]int64, 0, len(rows))
	for id := range rows {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	t.mu.Lock()
	t.rows, t.ids = rows, ids
	t.mu.Unlock()
	t.version.Add(1)
	if t.Changed != nil {
		t.Changed(rows)
	}
	t.loaded.Store(true)
	return nil
}

// Put inserts or replaces a row (for a write this process made itself).
func (t *Table[V]) Put(id int64, v V) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rows == nil {
		t.rows = map[int64]V{}
	}
	if _, ok := t.rows[id]; !ok {
		i, _ := slices.BinarySearch(t.ids, id)
		t.ids = slices.Insert(t.ids, i, id)
	}
	t.rows[id] = v
	t.version.Add(1)
}

// PutMany inserts or replaces rows: one sort for many new ids, where Put
// would shift the ids once per row.
func (t *Table[V]) PutMany(rows map[int64]V) {
	if len(rows) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rows == nil {
		t.rows = map[int64]V{}
	}
	grew := false
	for id, v := range rows {
		if _, ok := t.rows[id]; !ok {
			t.ids = append(t.ids, id)
			grew = true
		}
		t.rows[id] = v
	}
	if grew {
		slices.Sort(t.ids)
	}
	t.version.Add(1)
}

// Version changes whenever the table does: a reader that kept something
// computed from the rows knows whether it is still current.
func (t *Table[V]) Version() uint64 { return t.version.Load() }

// Each calls fn for every row, in id order, under the table's read lock:
// fn must not call the table.
func (t *Table[V]) Each(fn func(id int64, v V)) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, id := range t.ids {
		fn(id, t.rows[id])
	}
}

// GetMany returns the rows of ids that exist, in the order of ids.
func (t *Table[V]) GetMany(ids []int64) []V {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]V, 0, len(ids))
	for _, id := range ids {
		if v, ok := t.rows[id]; ok {
			out = append(out, v)
		}
	}
	return out
}

// Get returns the row with id.
func (t *Table[V]) Get(id int64) (V, bool) {
	t.mu.RLock()
	v, ok := t.rows[id]
	t.mu.RUnlock()
	return v, ok
}

// Has reports whether a row with id exists.
func (t *Table[V]) Has(id int64) bool {
	_, ok := t.Get(id)
	return ok
}

// Len is the number of rows.
func (t *Table[V]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.ids)
}

// After returns up to limit rows with ids above after, in id order, and
// whether more follow.
func (t *Table[V]) After(after int64, limit int) ([]V, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	i, found := slices.BinarySearch(t.ids, after)
	if found {
		i++
	}
	return t.slice(i, limit)
}

// Page returns up to limit rows from position offset in id order, and
// how many rows there are.
func (t *Table[V]) Page(offset, limit int) ([]V, int) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out, _ := t.slice(min(offset, len(t.ids)), limit)
	return out, len(t.ids)
}

func (t *Table[V]) slice(i, limit int) ([]V, bool) {
	j := min(i+limit, len(t.ids))
	out := make([]V, 0, j-i)
	for _, id := range t.ids[i:j] {
		out = append(out, t.rows[id])
	}
	return out, j < len(t.ids)
}
