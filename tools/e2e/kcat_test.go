package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ratestream/ratestream/pkg/broker"
	"github.com/ratestream/ratestream/pkg/rating"
	"github.com/ratestream/ratestream/tools/testenv"
	"github.com/ratestream/ratestream/tools/testenv/eventschema"
)

// kcat runs kcat (librdkafka, a Kafka client no one here wrote) against
// the stack's broker; `make test` installs it (scripts/need.sh).
func kcat(t *testing.T, s *stack, stdin string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed: scripts/need.sh kcat=kcat installs it (make test does)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-b", s.broker(), "-q"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func (s *stack) broker() string {
	for _, e := range s.env {
		if v, ok := strings.CutPrefix(e, "KAFKA_BROKERS="); ok {
			return v
		}
	}
	panic("no KAFKA_BROKERS")
}

// kcatMessage is one line of kcat -J.
type kcatMessage struct {
	Partition int     `json:"partition"`
	Offset    int64   `json:"offset"`
	Key       *string `json:"key"`
	Payload   *string `json:"payload"`
}

func readAll(t *testing.T, s *stack) []kcatMessage {
	t.Helper()
	return readTopic(t, s, "ratings.v1")
}

// readTopic reads a topic from the beginning to its end with kcat.
func readTopic(t *testing.T, s *stack, topic string) []kcatMessage {
	t.Helper()
	var msgs []kcatMessage
	for line := range strings.Lines(kcat(t, s, "", "-C", "-t", topic, "-o", "beginning", "-e", "-J")) {
		var m kcatMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("kcat -J line %q: %v", line, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// ingestPartition is the partition ingest's writer chooses for a post
// among n partitions.
func ingestPartition(post int64, n int) int { return broker.PartitionOf(post, n) }

// Every event on the topic, read by kcat, is valid against the published
// JSON Schema and keyed by its post id; an event produced by kcat with
// librdkafka's murmur2_random partitioner lands where ingest would put it
// and is applied.
func TestKcatReadsAndWritesTheTopic(t *testing.T) {
	s := startStack(t)
	const posts = 6
	for i := range posts {
		if st, _ := call(t, "POST", s.query+"/v1/posts", fmt.Sprintf(`{"title":"kcat %d"}`, i)); st != 201 {
			t.Fatalf("create: %d", st)
		}
	}
	users := []string{"ascii", "é-nfc", "日本語", "emoji 🎉", `quote " and \ backslash`}
	sent := 0
	waitPostsKnown(t, s, posts)
	sent += posts
	for post := 1; post <= posts; post++ {
		for i, u := range users {
			body, _ := json.Marshal(map[string]any{"user_id": u, "score": (post + i) % 6})
			if st, p := call(t, "POST", fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, post), string(body)); st != 202 {
				t.Fatalf("rating %s: %d %v", body, st, p)
			}
			sent++
		}
	}

	schema := eventschema.Compile(t)
	msgs := readAll(t, s)
	if len(msgs) != sent {
		t.Fatalf("kcat read %d events, ingest accepted %d", len(msgs), sent)
	}
	partitions := 0
	for line := range strings.Lines(kcat(t, s, "", "-L", "-t", "ratings.v1", "-J")) {
		var md struct {
			Topics []struct {
				Partitions []struct{} `json:"partitions"`
			} `json:"topics"`
		}
		if err := json.Unmarshal([]byte(line), &md); err != nil || len(md.Topics) != 1 {
			t.Fatalf("kcat -L -J: %v %s", err, line)
		}
		partitions = len(md.Topics[0].Partitions)
	}
	for _, m := range msgs {
		if err := schema.Check([]byte(*m.Payload)); err != nil {
			t.Errorf("event at %d/%d is not valid against the schema: %v\n%s", m.Partition, m.Offset, err, *m.Payload)
		}
		var e struct {
			PostID int64 `json:"post_id"`
		}
		_ = json.Unmarshal([]byte(*m.Payload), &e)
		if m.Key == nil || *m.Key != strconv.FormatInt(e.PostID, 10) || m.Partition != ingestPartition(e.PostID, partitions) {
			t.Errorf("event of post %d has key %v on partition %d (ingest's murmur2: %d)", e.PostID, m.Key, m.Partition, ingestPartition(e.PostID, partitions))
		}
	}

	// Produce with kcat, keyed, with librdkafka's murmur2_random (the Java
	// client's default partitioner).
	e, err := rating.New(3, "written-by-kcat", 5, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	v, _ := e.Marshal()
	kcat(t, s, "3|"+string(v)+"\n", "-P", "-t", "ratings.v1", "-K", "|", "-X", "topic.partitioner=murmur2_random")
	var found *kcatMessage
	for _, m := range readAll(t, s) {
		if m.Payload != nil && strings.Contains(*m.Payload, "written-by-kcat") {
			found = &m
		}
	}
	if found == nil || found.Partition != ingestPartition(3, partitions) {
		t.Fatalf("kcat's event: %+v, want partition %d (ingest's choice)", found, ingestPartition(3, partitions))
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		st, p := call(t, "GET", s.query+"/v1/posts/3", "", "X-User-ID", "written-by-kcat")
		if st != 200 || p["my_score"] != float64(5) {
			return fmt.Errorf("post 3 for the kcat user: %d %v", st, p)
		}
		return nil
	})
}

// The windower's consumer group, as librdkafka sees it (kcat joining the
// group reads from its committed offsets), agrees with `ratestream lag`.
func TestKcatSeesTheWindowerGroup(t *testing.T) {
	s := startStack(t, "WINDOWER_SESSION_TIMEOUT=6s", "WINDOWER_STALL_TIMEOUT=1h")
	const posts = 24
	for i := range posts {
		if st, _ := call(t, "POST", s.query+"/v1/posts", fmt.Sprintf(`{"title":"group %d"}`, i)); st != 201 {
			t.Fatalf("create: %d", st)
		}
	}
	rate := func(post int, user string) {
		t.Helper()
		if st, _ := call(t, "POST", fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, post), fmt.Sprintf(`{"user_id":%q,"score":3}`, user)); st != 202 {
			t.Fatalf("rating: %d", st)
		}
	}
	waitPostsKnown(t, s, posts)
	for post := 1; post <= posts; post++ {
		rate(post, "before")
	}
	lag := func() []lagJSON {
		rows, err := ratestreamLag(t, s)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	// Consumed and copied to the group (a partition with no event yet has
	// nothing committed: -1).
	caughtUp := func() error {
		for _, r := range lag() {
			if r.Stored != r.LogEnd || r.Group != r.Stored && (r.LogEnd != 0 || r.Group != -1) {
				return fmt.Errorf("partition %d: log end %d, stored %d, group %d", r.Partition, r.LogEnd, r.Stored, r.Group)
			}
		}
		return nil
	}
	testenv.Eventually(t, 20*time.Second, caughtUp)

	// Stop the windower (not kill: it keeps its place in the supervisor),
	// add ratings, and let its group session expire.
	resume := s.pause(t, "windower")
	for post := 1; post <= posts; post += 2 {
		rate(post, "while-stopped")
	}
	rows := lag()
	// kcat joins the group without committing and reads from its
	// committed offsets to the end of every partition.
	first := map[int]int64{}
	count := map[int]int64{}
	out := kcat(t, s, "", "-G", "ratestream-windower", "-X", "enable.auto.commit=false", "-X", "auto.offset.reset=earliest",
		"-X", "session.timeout.ms=6000", "-e", "-f", "%p %o\n", "ratings.v1")
	for line := range strings.Lines(out) {
		var p int
		var o int64
		if _, err := fmt.Sscanf(line, "%d %d", &p, &o); err != nil {
			t.Fatalf("kcat line %q: %v", line, err)
		}
		if _, ok := first[p]; !ok {
			first[p] = o
		}
		count[p]++
	}
	var lagged int64
	for _, r := range rows {
		committed := max(r.Group, 0) // none yet: kcat starts at the earliest offset, 0
		lagged += r.LogEnd - committed
		if n := count[r.Partition]; n != r.LogEnd-committed {
			t.Errorf("partition %d: ratestream lag says group %d, log end %d; kcat read %d events from the group's offsets", r.Partition, r.Group, r.LogEnd, n)
		}
		if n := count[r.Partition]; n > 0 && first[r.Partition] != committed {
			t.Errorf("partition %d: kcat started at %d, ratestream lag says the group committed %d", r.Partition, first[r.Partition], r.Group)
		}
	}
	if lagged != posts/2 {
		t.Errorf("ratestream lag: %d events behind, want %d", lagged, posts/2)
	}
	resume()
	// The windower rejoins and catches up; the group follows.
	testenv.Eventually(t, 30*time.Second, caughtUp)
}

// waitPostsKnown waits until ingest has accepted one rating ("warm", 1) of
// each of posts 1..n, exactly one each: it learns of new posts through a
// notification.
func waitPostsKnown(t *testing.T, s *stack, n int) {
	t.Helper()
	accepted := map[int]bool{}
	testenv.Eventually(t, 5*time.Second, func() error {
		for post := 1; post <= n; post++ {
			if accepted[post] {
				continue
			}
			if st, _ := call(t, "POST", fmt.Sprintf("%s/v1/posts/%d/ratings", s.ingest, post), `{"user_id":"warm","score":1}`); st != 202 {
				return fmt.Errorf("ingest answers %d for post %d", st, post)
			}
			accepted[post] = true
		}
		return nil
	})
}
