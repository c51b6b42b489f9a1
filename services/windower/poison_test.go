package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/contract"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/pkg/scoring"
	"github.com/ratestream/ratestream/pkg/tally"
	"github.com/ratestream/ratestream/tools/testenv"
)

// partitionOf is where the producers put a post.
func partitionOf(post int64, partitions int) int { return broker.PartitionOf(post, partitions) }

// metric reads one sample of a windower's /metrics.
func metric(t testing.TB, addr, name, partition string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	prefix := fmt.Sprintf(`%s{partition="%s"} `, name, partition)
	if partition == "" { // a metric without labels
		prefix = name + " "
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func status(addr, path string) int {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func dlqMessages(t testing.TB, b *testenv.Broker) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, m := range b.Messages(t, b.Config.DLQTopic()) {
		h := map[string]string{"value": string(m.Value)}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		out = append(out, h)
	}
	return out
}

// A rating that decodes but that PostgreSQL refuses (a NUL in the user id,
// SQLSTATE 22021) goes to the dead-letter topic with the error, and the
// ratings behind it on the same partition are applied.
func TestStoreRefusedEventIsParkedAndThePartitionMovesOn(t *testing.T) {
	b := testenv.NewBroker(t, 12)
	db := testenv.NewDatabase(t)
	cfg := testConfig(t, db, b)
	start(t, cfg)

	// In the middle of a batch: isolation must apply everything around it.
	evs := events(11, 2000, 20, 200)
	bad := evs[0]
	bad.UserID, bad.EventID = "a\x00b", evs[1].EventID
	bad.EventID[15] ^= 0xff
	mixed := append(append(append([]rating.Event{}, evs[:1000]...), bad), evs[1000:]...)
	b.Produce(t, mixed)
	waitConsumed(t, db, int64(len(mixed)), 30*time.Second)
	checkAgainstDefinition(t, db, evs, time.Second)

	// Alone, with a valid rating right behind it on the same partition.
	behind := events(12, 1, 1, 1)[0]
	behind.PostID, behind.UserID = bad.PostID, "right-behind"
	began := time.Now()
	b.Produce(t, []rating.Event{bad, behind})
	testenv.Eventually(t, 5*time.Second, func() error {
		var n int
		err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ratings WHERE user_id = 'right-behind'`).Scan(&n)
		if err == nil && n != 1 {
			err = errors.New("the rating behind the poison is not applied")
		}
		return err
	})
	t.Logf("rating behind a refused event applied %s after producing both", time.Since(began).Round(time.Millisecond))

	dead := dlqMessages(t, b)
	if len(dead) != 2 {
		t.Fatalf("%d dead letters, want the two NUL events", len(dead))
	}
	for _, h := range dead {
		if h[contract.HeaderDLQStage] != contract.DLQStageStore || h[contract.HeaderDLQSQLState] != "22021" ||
			!strings.Contains(h[contract.HeaderDLQError], "22021") || h[contract.HeaderDLQOffset] == "" ||
			h[contract.HeaderDLQPartition] != strconv.Itoa(partitionOf(bad.PostID, 12)) {
			t.Errorf("dead letter without the PostgreSQL error and its origin: %v", h)
		}
		if e, err := rating.Unmarshal([]byte(h["value"])); err != nil || e.UserID != "a\x00b" {
			t.Errorf("dead letter is not the original event: %v %v", e, err)
		}
	}
}

// A content rule of the operator's own (a trigger refusing one user with
// a data-class code, check_violation) parks that one rating at once.
func TestRefusedContentOfOneEventIsIsolated(t *testing.T) {
	b := testenv.NewBroker(t, 3)
	db := testenv.NewDatabase(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `
		CREATE FUNCTION refuse_mallory() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		  IF NEW.user_id = 'mallory' THEN RAISE EXCEPTION 'mallory may not rate' USING ERRCODE = 'check_violation'; END IF;
		  RETURN NEW;
		END $$;
		CREATE TRIGGER refuse_mallory BEFORE INSERT OR UPDATE ON ratings FOR EACH ROW EXECUTE FUNCTION refuse_mallory();`); err != nil {
		t.Fatal(err)
	}
	start(t, testConfig(t, db, b))
	evs := events(13, 500, 5, 50)
	bad := evs[7]
	bad.UserID = "mallory"
	bad.EventID[15] ^= 0xff
	all := append(append([]rating.Event{}, evs[:300]...), append([]rating.Event{bad}, evs[300:]...)...)
	b.Produce(t, all)
	waitConsumed(t, db, int64(len(all)), 60*time.Second)
	checkAgainstDefinition(t, db, evs, time.Second)
	dead := dlqMessages(t, b)
	if len(dead) != 1 || dead[0][contract.HeaderDLQSQLState] != "23514" {
		t.Fatalf("dead letters %v, want mallory's rating with 23514", dead)
	}
}

// Errors that are not about an event's content are outages, whatever
// their code and whichever table they hit: a table renamed away under
// load (42P01 on rescore_queue, after ratings and windows were written in
// the same transaction), a trigger raising P0001 for every row, then the
// same undone. Nothing goes to the dead-letter topic, and every rating
// counts.
func TestOutagesDeadLetterNothing(t *testing.T) {
	b := testenv.NewBroker(t, 3)
	db := testenv.NewDatabase(t)
	ctx := context.Background()
	cfg := testConfig(t, db, b)
	start(t, cfg)
	testenv.WaitHTTP(t, "http://"+cfg.Addr+"/readyz", 30*time.Second)
	evs := events(17, 3000, 40, 300)
	b.Produce(t, evs[:500])
	waitConsumed(t, db, 500, 30*time.Second)
	faults := []struct{ name, on, off string }{
		{"rescore_queue renamed (42P01)", `ALTER TABLE rescore_queue RENAME TO rescore_queue_away`, `ALTER TABLE rescore_queue_away RENAME TO rescore_queue`},
		{"a trigger raising P0001 on every window", `
			CREATE FUNCTION broken() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'broken'; END $$;
			CREATE TRIGGER broken BEFORE INSERT OR UPDATE ON rating_averages FOR EACH ROW EXECUTE FUNCTION broken();`,
			`DROP TRIGGER broken ON rating_averages; DROP FUNCTION broken()`},
	}
	sent := 500
	for _, f := range faults {
		if _, err := db.Pool.Exec(ctx, f.on); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		b.Produce(t, evs[sent:sent+1000])
		sent += 1000
		time.Sleep(4 * time.Second) // the windower retries through the fault
		if n := len(dlqMessages(t, b)); n != 0 {
			t.Fatalf("%s: %d dead letters during the outage", f.name, n)
		}
		if _, err := db.Pool.Exec(ctx, f.off); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		waitConsumed(t, db, int64(sent), 60*time.Second)
	}
	b.Produce(t, evs[sent:])
	waitConsumed(t, db, int64(len(evs)), 60*time.Second)
	checkAgainstDefinition(t, db, evs, time.Second)
	if n := len(dlqMessages(t, b)); n != 0 {
		t.Errorf("%d dead letters from outages", n)
	}
}

// A partition whose store keeps failing (transiently, so the windower
// retries for as long as it takes) shows a growing lag and stalled gauge
// within 10 s, fails readiness after the bound, and catches up once the
// store works again.
func TestStalledPartitionIsVisibleAndRecovers(t *testing.T) {
	b := testenv.NewBroker(t, 12)
	db := testenv.NewDatabase(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `
		CREATE FUNCTION flaky() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		  IF NEW.post_id = 13 THEN RAISE EXCEPTION 'busy' USING ERRCODE = 'serialization_failure'; END IF;
		  RETURN NEW;
		END $$;
		CREATE TRIGGER flaky BEFORE INSERT OR UPDATE ON ratings FOR EACH ROW EXECUTE FUNCTION flaky();`); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, db, b)
	cfg.Stall, cfg.Monitor = 6*time.Second, 500*time.Millisecond
	start(t, cfg)
	testenv.WaitHTTP(t, "http://"+cfg.Addr+"/readyz", 30*time.Second)
	evs := events(14, 600, 20, 100)
	for i := range evs[:50] {
		evs[i].PostID = 13
	}
	part := strconv.Itoa(partitionOf(13, 12))
	began := time.Now()
	b.Produce(t, evs)

	var first float64
	testenv.Eventually(t, 10*time.Second, func() error {
		lag, stalled := metric(t, cfg.Addr, "windower_consumer_lag", part), metric(t, cfg.Addr, "windower_partition_stalled_seconds", part)
		if lag <= 0 || stalled <= 0 {
			return fmt.Errorf("partition %s: lag %v, stalled %v", part, lag, stalled)
		}
		first = stalled
		return nil
	})
	t.Logf("stall visible %s after producing", time.Since(began).Round(time.Millisecond))
	testenv.Eventually(t, 10*time.Second, func() error {
		if s := metric(t, cfg.Addr, "windower_partition_stalled_seconds", part); s <= first {
			return fmt.Errorf("stalled gauge not growing: %v then %v", first, s)
		}
		if s := status(cfg.Addr, "/readyz"); s != http.StatusServiceUnavailable {
			return fmt.Errorf("readyz %d, want 503 beyond the bound", s)
		}
		return nil
	})
	if lag := metric(t, cfg.Addr, "windower_consumer_lag", "0"); part != "0" && lag != 0 {
		t.Errorf("a healthy partition shows lag %v", lag)
	}

	if _, err := db.Pool.Exec(ctx, `DROP TRIGGER flaky ON ratings`); err != nil {
		t.Fatal(err)
	}
	waitConsumed(t, db, int64(len(evs)), 30*time.Second)
	checkAgainstDefinition(t, db, evs, time.Second)
	testenv.Eventually(t, 10*time.Second, func() error {
		if s := metric(t, cfg.Addr, "windower_partition_stalled_seconds", part); s != 0 {
			return fmt.Errorf("stalled %v after recovery", s)
		}
		if s := status(cfg.Addr, "/readyz"); s != http.StatusOK {
			return fmt.Errorf("readyz %d after recovery", s)
		}
		return nil
	})
	if n := len(dlqMessages(t, b)); n != 0 {
		t.Errorf("%d dead letters from a transient failure", n)
	}
}

// userIDs draws strings over the whole Unicode range, with the edge cases
// that broke the first version in every draw.
func userIDs(rng *rand.Rand, n int) []string {
	out := []string{"a\x00b", "\u0000", "a\r\nb", "\u0085", "\u200b", "\u202e", "e\u0301", "\u00e9", "\ufeff",
		"\ufffd", "\uffff", "\U0010ffff", "\U0001F600", " x", "x ", "\t", "ǅ", "\u2028", strings.Repeat("\U0010FFFD", 32)}
	for len(out) < n {
		var sb strings.Builder
		for range 1 + rng.IntN(12) {
			var r rune
			switch rng.IntN(4) {
			case 0:
				r = rune(rng.IntN(0x80))
			case 1:
				r = rune(rng.IntN(0x800))
			case 2:
				r = rune(rng.IntN(0x10000))
			default:
				r = rune(rng.IntN(0x110000))
			}
			if utf8.ValidRune(r) {
				sb.WriteRune(r)
			}
		}
		out = append(out, sb.String())
	}
	return out
}

// Every user id that the door accepts can be stored by the windower, and
// comes back byte for byte.
func TestEveryAcceptedUserIDCanBeStored(t *testing.T) {
	db := testenv.NewDatabase(t)
	s := &pgStore{pool: db.Pool, key: tally.Key{Consumer: "prop", Topic: "ratings.v1"}, params: scoring.DefaultParams(time.Second), grace: time.Second}
	rng := rand.New(rand.NewPCG(5, 5))
	ids := userIDs(rng, 20000)
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var accepted []rating.Event
	for i, id := range ids {
		if rating.ValidateUserID(id) != nil {
			continue
		}
		e, err := rating.New(int64(1+i%7), id, i%6, at.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		accepted = append(accepted, e)
	}
	if len(accepted) < 1000 {
		t.Fatalf("only %d of %d generated ids accepted: the generator is off", len(accepted), len(ids))
	}
	pos := position{}
	for i := 0; i < len(accepted); i += 500 {
		part := accepted[i:min(i+500, len(accepted))]
		res, err := s.apply(context.Background(), batch{partition: 0, expected: pos, next: int64(i + len(part)), events: part})
		if err != nil {
			for _, e := range part {
				if _, err1 := s.apply(context.Background(), batch{partition: 0, expected: pos, next: pos.Next, events: []rating.Event{e}}); err1 != nil {
					t.Fatalf("accepted user id %q cannot be stored: %v", e.UserID, err1)
				}
			}
			t.Fatalf("batch refused: %v", err)
		}
		pos = res.position
	}
	checkAgainstDefinition(t, db, accepted, time.Second)
	t.Logf("%d of %d generated ids accepted and stored", len(accepted), len(ids))
}

func TestClassify(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want failure
	}{
		{&pgconn.PgError{Code: "22021"}, inData},
		{&pgconn.PgError{Code: "23514"}, inData},
		{fmt.Errorf("write: %w", &pgconn.PgError{Code: "22P02"}), inData},
		{&pgconn.PgError{Code: "40001"}, outage},
		{&pgconn.PgError{Code: "40P01"}, outage},
		{&pgconn.PgError{Code: "57P01"}, outage},
		{&pgconn.PgError{Code: "53300"}, outage},
		{&pgconn.PgError{Code: "08006"}, outage},
		{&pgconn.PgError{Code: "P0001"}, outage},
		{&pgconn.PgError{Code: "42501"}, outage},
		{&pgconn.PgError{Code: "42P01"}, outage},
		{&pgconn.PgError{Code: "25006"}, outage},
		{&pgconn.PgError{Code: "54000"}, outage},
		{&pgconn.PgError{Code: "XX000"}, outage},
		{&pgconn.PgError{Code: "2"}, outage},
		{io.ErrUnexpectedEOF, outage},
		{errors.New("something else"), outage},
	}
	for _, c := range cases {
		if got := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// The retrier's waits double from backoffMin, stop at backoffMax, are
// jittered within [d/2, d), and start again after a success.
func TestRetrierBacksOffWithJitter(t *testing.T) {
	t.Parallel()
	r := newRetrier(zap.NewNop())
	seen := map[time.Duration]bool{}
	for i := 0; i < 40; i++ {
		cap := min(backoffMax, backoffMin<<min(i, 16))
		d := r.next()
		if d < cap/2 || d >= cap {
			t.Fatalf("attempt %d: waited %s, want [%s, %s)", i, d, cap/2, cap)
		}
		seen[d] = true
	}
	if len(seen) < 30 {
		t.Errorf("only %d distinct waits in 40: no jitter", len(seen))
	}
	r.succeeded()
	if d := r.next(); d >= backoffMin {
		t.Errorf("after a success the first wait is %s, want < %s", d, backoffMin)
	}
}
